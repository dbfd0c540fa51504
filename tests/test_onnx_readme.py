"""The export guide's ONNX Runtime script (docs/guides/export-import.md), as written there,
classifies a real test image from a file fw export wrote."""

import re
import subprocess
import sys

import numpy as np
import pytest

from test_cli import BOOK, REPO, fw

pytestmark = pytest.mark.slow


def readme_script():
    section = (REPO / "docs" / "guides" / "export-import.md").read_text()
    [script] = [block for block in re.findall(r"```python\n(.*?)```", section, re.S) if "onnxruntime as ort" in block]
    return script


def test_the_readme_script_classifies_a_digit(capsys, tmp_path, mnist_dir, book_weights):
    from PIL import Image

    import framework

    script = readme_script()
    assert len(script.strip().splitlines()) <= 11  # "a ten-line script", imports and all
    code, _, err = fw(
        capsys, "export", BOOK, tmp_path / "mnist.onnx", f"dataset.root={mnist_dir}", f"weights.path={book_weights}"
    )
    assert code == 0, err
    cfg = framework.load_config(BOOK, [f"dataset.root={mnist_dir}", "dataset.normalize=false", "dataset.flatten=false"])
    x, t = framework.load_dataset(cfg)
    for i in (0, 1):  # a 7 and a 2
        Image.fromarray(x[i, 0].astype(np.uint8)).save(tmp_path / "digit.png")
        ran = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stderr
        label, confidence = ran.stdout.split()
        assert label == str(t[i]) and 0.5 < float(confidence) <= 1
