"""Config files that are not what they seem: a scalar, a number too long to read, a FIFO, a device."""

import os
import subprocess
import sys

import pytest

from framework import FwError, load_config
from framework.data import bundled
from test_cli import BOOK, fw, one_line_error

pytestmark = pytest.mark.hostile

HUGE = "1" * 5000  # more digits than Python turns into an int (4300)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "just a string\n",
            "the top level must be a mapping of keys (dataset:, model:, ...), not a string ('just a string')",
        ),
        ("'quoted: text'\n", """not a string ("'quoted: text'")"""),
        ("42\n", "not a number ('42')"),
        ("true\n", "not true or false ('true')"),
        ("- a\n- b\n", "not a list"),
        (
            f"batch_size: 10\nmodel:\n  seed: {HUGE}\n",
            ":line 3: a number with 5000 digits; no setting needs one that long",
        ),
        (f"{HUGE}\n", f"not a number ('{HUGE[:37]}...')"),
    ],
)
def test_a_file_that_is_not_a_mapping_of_settings_says_so(capsys, tmp_path, text, expected):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(FwError) as e:
        load_config(path)
    assert str(e.value).startswith(str(path)) and expected in str(e.value) and len(str(e.value)) < 300
    one_line_error(*fw(capsys, "config", path), expected)


def test_a_key_that_only_looks_like_a_string_is_still_a_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("just a key:\n")
    with pytest.raises(FwError, match="unknown key 'just a key'"):
        load_config(path)


def test_a_huge_number_on_the_command_line_is_one_short_line(capsys):
    code, out, err = fw(capsys, "run", BOOK, f"batch_size={HUGE}")
    one_line_error(code, out, err, "override 'batch_size=111", "a number with 5000 digits")
    assert len(err) < 200


def test_a_fifo_or_a_device_is_refused_without_reading_it(tmp_path):
    """Opening a FIFO for reading blocks until a writer comes: run it in a child with a deadline."""
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    # Named like a bundled config: the path wins, and the error says where the bundled one is.
    (tmp_path / "mnist_infer").mkdir()
    os.mkfifo(tmp_path / "fashion_infer")
    code = (
        "import sys\n"
        "from framework import FwError, load_config\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        load_config(name)\n"
        "    except FwError as e:\n"
        "        print(e)\n"
    )
    args = [str(fifo), "fashion_infer", "/dev/null", "mnist_infer"]
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert len(lines) == 4, out.stderr
    assert lines[0].startswith(f"{fifo} is a FIFO, not a regular file; pass the path of a YAML file")
    assert lines[1].startswith("fashion_infer here is not a regular file, and what is at a path wins over the bundled")
    assert lines[2].startswith("/dev/null is a character device, not a regular file")
    assert lines[3].startswith("mnist_infer here is a folder, and what is at a path wins over the bundled config")
    assert lines[3].endswith(
        f"pass the bundled config's path, {bundled.config_path('mnist_infer')}, or run from another folder"
    )
