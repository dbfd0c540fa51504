"""The documentation site and the short README: pictures drawn by the one script,
links that land, the Quick start kept."""

import importlib.util
import re

import pytest
import yaml

from conftest import REPO
from test_cli import fw as run_cli

DOCS = REPO / "docs"
PIL = pytest.importorskip("PIL.Image", reason="Pillow is in the test extra: pip install -e '.[test]'")


def pictures_script():
    spec = importlib.util.spec_from_file_location("pictures", DOCS / "pictures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nav_pages():
    """The pages mkdocs.yml's nav lists, as paths under docs/."""

    def walk(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)
        elif isinstance(node, dict):
            for value in node.values():
                yield from walk(value)

    return set(walk(yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"]))


def test_every_picture_a_page_embeds_is_drawn_by_the_script_and_committed_small():
    pictures = pictures_script()
    drawn = set(pictures.PICTURES) | set(pictures.TRAINED)
    embedded = {}
    for page in DOCS.rglob("*.md"):
        for name in re.findall(r"!\[[^\]]*\]\((?:\.\./)*images/([^)]+)\)", page.read_text()):
            embedded.setdefault(name, page.relative_to(DOCS).as_posix())
    assert set(embedded) == drawn, "pages embed exactly what docs/pictures.py draws"
    assert sorted(p.name for p in (DOCS / "images").iterdir()) == sorted(drawn), "no stray or missing picture"
    for name in drawn:
        png = DOCS / "images" / name
        assert PIL.open(png).format == "PNG"
        assert png.stat().st_size < 200_000, f"{name}: keep the repository small"
    for chapter in range(3, 9):
        assert any(page == f"book/ch{chapter}.md" for page in embedded.values()), f"chapter {chapter} has a picture"


def test_the_pictures_that_train_name_configs_and_keys_fw_accepts(capsys):
    """Their commands take minutes to run, so each train command's config is at least resolved by fw config."""
    pictures = pictures_script()
    trains = [argv for steps in pictures.TRAINED.values() for argv in steps if argv[0] == "train"]
    assert len(trains) == 14
    for argv in trains:
        config = [a for a in argv[1:] if a not in ("--force", "--plot", "{out}") and "{runs}" not in a]
        code, _, err = run_cli(capsys, "config", *config)
        assert code == 0, (argv, err)


def test_the_readme_is_short_keeps_the_quick_start_and_links_into_the_site():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    install = "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && fw run configs/mnist_infer.yaml"
    tests = "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]' && pytest"
    assert f"```sh\n{install}\n```" in readme and f"```sh\n{tests}\n```" in readme
    assert "pip install -e '.[test]' && pytest" in (REPO / ".ci" / "run").read_text(), ".ci/run runs the README's"
    pages = nav_pages()
    links = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", readme)
    assert len(links) > 20
    for link in links:
        target = link.removeprefix("docs/")
        assert target in pages, f"README links to {link}, which is not a page of the site"
    assert {"book/ch3.md", "book/ch8.md", "guides/plugins.md", "safety.md", "performance.md"} <= set(
        link.removeprefix("docs/") for link in links
    )


def test_every_nav_page_but_the_generated_reference_is_written():
    missing = sorted(p for p in nav_pages() if not p.startswith("reference/") and not (DOCS / p).is_file())
    assert missing == []
