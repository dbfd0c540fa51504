"""A command builds only its own parser: the other commands' modules are not imported (or compiled) at start-up."""

import pytest

from framework.cli import main
from test_startup import REPO, modules_after

#: The modules that hold one command's help and code, and nothing another command needs.
OTHER_COMMANDS = {"framework.cli.compare", "framework.cli.export", "framework.cli.import_onnx",
                  "framework.cli.serve", "framework.cli.sweep"}  # fmt: skip

EVERY_COMMAND = ["run", "train", "predict", "plugins", "config", "configs", "show", "convert-weights",
                 "export", "serve", "import-onnx", "compare", "sweep"]  # fmt: skip


def test_fw_run_imports_no_other_commands_module(mnist_dir, book_weights):
    cfg = [REPO / "configs" / "mnist_infer.yaml", f"dataset.root={mnist_dir}", f"weights.path={book_weights}"]
    code, modules, out = modules_after("--debug", "run", *cfg)
    assert code == 0 and "Accuracy: 0.9352" in out.stdout
    assert not OTHER_COMMANDS & modules
    # Whether fw train left a checkpoint is all fw run asks of checkpoints: not their reader nor the callbacks.
    assert not {"framework.training.checkpoint", "framework.training.callbacks", "framework.safeio.npz"} & modules


@pytest.mark.parametrize("argv", [["--help"], ["-h", "run"]])
def test_fw_help_still_lists_every_command_in_its_order(argv, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    listed = [
        line.split()[0]
        for line in capsys.readouterr().out.split("COMMAND\n", 1)[1].split("\n\n")[0].splitlines()
        if line.startswith("    ") and not line.startswith("     ")
    ]
    assert listed == EVERY_COMMAND


@pytest.mark.parametrize(
    "argv, words",
    [
        (["compare", "--nope", "run1"], "usage: fw compare"),  # a lazily built command's own usage line
        (["--debug", "sweep", "--help"], "usage: fw sweep"),
        (["bogus"], "invalid choice: 'bogus' (choose from 'run', 'train'"),  # every command, for the error
    ],
)
def test_each_command_still_answers_in_its_own_words(argv, words, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    out = capsys.readouterr()
    assert words in out.out + out.err
