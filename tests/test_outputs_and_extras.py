"""Tidy outputs and honest install hints: no mkdir -p behind --out, extras named as a clone installs them."""

import re
import sys
import tomllib
from pathlib import Path

import pytest

from test_cli import BOOK, fw, one_line_error

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


def test_show_into_a_missing_folder_is_an_error_and_creates_nothing(capsys, fashion_dir, tmp_path):
    pytest.importorskip("PIL.Image", reason="Pillow is in the test extra: pip install -e '.[test]'")
    out = tmp_path / "no" / "such" / "dir" / "x.png"
    code, stdout, err = fw(
        capsys,
        "show",
        BOOK.replace("mnist_infer", "fashion_infer"),
        f"dataset.root={fashion_dir}",
        "--count",
        2,
        "--out",
        out,
    )
    one_line_error(code, stdout, err, f"cannot write {out}: folder {out.parent} does not exist", "choose another --out")
    assert list(tmp_path.iterdir()) == []


def test_missing_matplotlib_names_pip_not_the_unrelated_fw_on_pypi(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    from framework.cli.plot import check_plot_available

    with pytest.raises(Exception) as e:
        check_plot_available(tmp_path / "curve.png")
    msg = str(e.value)
    assert "pip install matplotlib" in msg and "pip install -e '.[plot]'" in msg
    assert "fw with" not in msg and "fw[" not in msg


def _messages():
    """Every string literal in fw's code and the benchmarks that tells people what to pip install."""
    for path in [*REPO.glob("framework/**/*.py"), *REPO.glob("plugins/*.py"), *REPO.glob("benchmarks/*.py")]:
        for line in path.read_text().splitlines():
            if "pip install" in line or "extra" in line.lower() and ("'" in line or '"' in line):
                yield path.relative_to(REPO), line


def test_every_extra_named_in_a_message_exists_and_is_installed_from_the_clone():
    named = []
    for where, line in _messages():
        assert not re.search(r"\bfw\[|install fw with|pip install fw\b", line), f"{where}: {line.strip()}"
        for extra in re.findall(r"""pip install -e '\.\[(\w+)\]'""", line):
            assert extra in EXTRAS, f"{where} names an extra pyproject.toml lacks: {extra}"
            named.append(extra)
    assert {"show", "plot", "bench"} <= set(named)


def test_the_bench_extra_pulls_no_cuda_torch_and_the_benchmarks_say_how_to_get_the_cpu_wheel():
    assert not any(req.lower().startswith(("torch", "nvidia")) for reqs in EXTRAS.values() for req in reqs)
    cpu = "pip install torch --index-url https://download.pytorch.org/whl/cpu"
    for text in (REPO / "benchmarks" / "train.py").read_text(), (REPO / "benchmarks" / "forward.py").read_text():
        assert cpu in text
