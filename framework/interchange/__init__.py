"""Models in and out of fw: ONNX export and import (the formats the rest of the field reads).

``onnx`` is an optional dependency: it is imported only here, only when a
command needs it, through ``optional_import``, which says how to install it.
"""

import importlib

from ..errors import FwError

#: What ``fw export`` writes unless ``--opset`` says otherwise.
DEFAULT_OPSET = 17


def optional_import(module, extra, purpose):
    """``import module``, or a one-line FwError saying how to install it (``extra``: fw's extra that has it)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        package = module.split(".")[0]
        raise FwError(
            f"{purpose} needs the {package} package, which is not installed: pip install {package} "
            f"(or, in a clone of fw, pip install -e '.[{extra}]')"
        ) from e
