"""What the ONNX tests share: an ONNX Runtime session that leaves the cores alone between runs."""

import numpy as np
import onnxruntime as ort


def ort_session(model):
    """A CPU session for a path or a ModelProto; its threads do not spin after a run (which slows fw's next step)."""
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    data = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def ort_predict(model, x, rows=1000):
    """The model's ``probabilities`` for ``x``, a chunk of rows at a time."""
    session = ort_session(model)
    return np.concatenate(
        [session.run(None, {session.get_inputs()[0].name: x[a : a + rows]})[0] for a in range(0, len(x), rows)]
    )
