"""What ships inside the package, so the book's chapter-3 job runs offline on a fresh machine.

- ``plugins/data/`` (installed as ``framework/plugins/data/``): the MNIST test
  split and the book's ``sample_weight.pkl``, 1.84 MB in all; credits in
  ``plugins/data/README.md``. Nothing larger ships: every other file is downloaded.
- ``configs/*.yaml`` (installed as ``framework.configs``): the example configs,
  which ``fw run NAME`` finds by name from any folder.
"""

from pathlib import Path

#: SHA-256 of the book's sample_weight.pkl, the one weights file fw ships.
BOOK_WEIGHTS_SHA256 = "b7f55a27988ba34c3777b0f1bbd464817c8a4db855723e6ff26f703501917a13"


def _package_dir(package: str) -> Path:
    """The folder of ``framework.<package>`` (plugins, configs), found without running its code."""
    import importlib.util

    return Path(importlib.util.find_spec(f"framework.{package}").submodule_search_locations[0])


def data_dir(name: str) -> Path:
    """The bundled data folder ``name`` (``mnist``, ``book``)."""
    return _package_dir("plugins") / "data" / name


def book_weights(sha256) -> Path | None:
    """The bundled copy of the weights file that ``sha256`` names, if fw ships it and it is intact."""
    if not isinstance(sha256, str) or sha256.lower() != BOOK_WEIGHTS_SHA256:
        return None
    from ..safeio.files import file_hash

    path = data_dir("book") / "sample_weight.pkl"
    return path if path.is_file() and file_hash(path) == BOOK_WEIGHTS_SHA256 else None


def configs_dir() -> Path:
    return _package_dir("configs")


def config_names() -> list[str]:
    """The bundled configs' names: what ``fw run NAME`` accepts."""
    return sorted(p.stem for p in configs_dir().glob("*.yaml"))


def config_path(name: str) -> Path | None:
    """The bundled config ``name`` (no ``.yaml``), or None."""
    path = configs_dir() / f"{name}.yaml"
    return path if name in config_names() else None


def config_description(name: str) -> str:
    """The bundled config's one-line description: its first comment line, and the next ones while it ends in ':'."""
    text = ""
    for line in (configs_dir() / f"{name}.yaml").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        part = line.lstrip("#").strip()
        if text and not text.endswith(":") or (text and not part):
            break
        text = f"{text} {part}".strip()
    return text
