"""Learning curves for ``fw train --plot`` (matplotlib, imported only here)."""

from pathlib import Path

from ..errors import FwError


def check_plot_available(path, overwrite=False, used=None):
    """Fail before training, not after it, when the plot could not be written (or would replace a file
    in ``used``, the config and data in use: ``user_files.in_use``)."""
    from ..safeio.files import check_writable
    from ..training.user_files import check

    if Path(path).suffix.lower() != ".png":
        raise FwError(f"--plot {path}: the learning curves are written as PNG; give a file name ending in .png")
    check_writable(Path(path), "--plot", overwrite)
    check(Path(path), "--plot", used=used, force=True)  # even --force never replaces the data
    try:
        import matplotlib  # noqa: F401 - only whether it is installed
    except ImportError as e:
        raise FwError(
            "--plot needs matplotlib; install it with `pip install matplotlib` "
            "(or `pip install -e '.[plot]'` in a clone of fw)"
        ) from e


def plot_history(history, path, title=""):
    """Loss, and train (validation) and test accuracy, per epoch; written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..safeio.files import write_output

    epochs = [e.epoch for e in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [e.train_loss for e in history], marker="o", label="train loss")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.plot(epochs, [e.train_accuracy for e in history], marker="o", label="train")
    if history and history[0].val_accuracy is not None:
        ax_loss.plot(epochs, [e.val_loss for e in history], marker="^", label="validation loss")
        ax_acc.plot(epochs, [e.val_accuracy for e in history], marker="^", label="validation")
    ax_acc.plot(epochs, [e.test_accuracy for e in history], marker="s", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    write_output(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return path
