"""The reference pages are generated from the code (docs/hooks/reference.py), so they cannot drift:
every subcommand and option of the parser, every config key of the schema and every built-in
plugin's parameters are on them, and a new one shows up with no edit to the docs."""

import argparse
import dataclasses
import html
import importlib.util
import inspect
import re
import typing
from pathlib import Path
from typing import Annotated

import pytest

import framework
import framework.testing
from framework.cli.parser import build_parser
from framework.config.schema import SCHEMA, Config, setting
from framework.core.initializer import Initializer
from framework.plugin_system.manager import get_registry
from framework.plugin_system.registry import KINDS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ref():
    spec = importlib.util.spec_from_file_location("fw_docs_reference", ROOT / "docs/hooks/reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _fresh_registry():
    """The config page loads every plugin into the shared registry: start from a fresh one, and leave one."""
    from framework.plugin_system import manager

    manager._build.cache_clear()
    yield
    manager._build.cache_clear()


def rows(markdown):
    """``{first cell's text: the rest of the row}`` of every table row (the first cell unmarked: ``dense``)."""
    found = re.findall(r"^\| (.+?) \| (.*) \|$", markdown, flags=re.M)
    return {html.unescape(re.sub(r"<[^>]+>|`", "", first)): rest for first, rest in found}


def sections(markdown, level):
    """heading -> its text, for the headings of one level (``## fw run`` -> ...)."""
    parts = re.split(rf"^{level} (.+)$", markdown, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_the_cli_page_names_every_command_and_each_of_its_arguments(ref):
    parser = build_parser()
    page = sections(ref.cli_markdown(parser), "##")
    assert set(page) == {"fw"} | {f"fw {name}" for name in parser.commands}
    table = {name: rows(body) for name, body in page.items()}
    for name, command in [("fw", parser), *((f"fw {n}", c) for n, c in parser.commands.items())]:
        for action in command._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
                continue
            row = next((r for r in table[name].items() if (action.option_strings or [action.metavar])[0] in r[0]), None)
            assert row, f"{name}: {action.option_strings or action.metavar} has no row on the page"
            assert all(o in row[0] for o in action.option_strings) and action.help[:20] in row[1]
        usage = " ".join(command.format_usage().removeprefix("usage: ").split())
        assert usage in " ".join(page[name].split()), f"{name}: usage is not on the page"


def test_a_new_option_shows_up_on_the_cli_page_with_no_edit_to_the_docs(ref):
    parser = build_parser()
    parser.commands["run"].add_argument("--brand-new", metavar="N", help="an option added after the docs were written")
    run = sections(ref.cli_markdown(parser), "##")["fw run"]
    assert rows(run)["--brand-new N"] == "an option added after the docs were written"


def schema_keys(cls=Config, prefix=""):
    """Every key the schema declares, a section's as section.key."""
    for f in dataclasses.fields(cls):
        inner = next((a for a in (f.type, *typing.get_args(f.type)) if dataclasses.is_dataclass(a)), None)
        if inner is None:
            yield prefix + f.name
        else:
            yield from schema_keys(inner, f"{prefix}{f.name}.")


def test_the_config_page_names_every_key_of_the_schema_and_what_it_does(ref):
    page = rows(ref.config_markdown())
    keys = list(schema_keys())
    assert {k.split(".")[0] for k in keys} == set(SCHEMA) and len(keys) >= 30
    for key in keys:
        assert key in page, f"config key {key} is not on the config reference"
        said, default, kind = re.fullmatch(r"(.+)<br>\*Default:\* `(.+)`; \*type:\* (.+)", page[key]).groups()
        assert len(said) > 10 and default and kind, f"config key {key}: said, default or type is missing: {page[key]}"


def test_a_config_key_without_a_description_stops_the_docs_build(ref, monkeypatch):
    @dataclasses.dataclass
    class Keys:
        documented: int = setting(1, "a whole number", doc="what it does")
        undocumented: int = dataclasses.field(default=2, metadata={"want": "a whole number"})

    with pytest.raises(ValueError, match="config key extra.undocumented has no doc="):
        ref._keys_table(Keys, "extra.")


def test_the_config_page_lists_every_built_in_plugin_with_its_parameters(ref):
    registry = get_registry().load_all()
    page = sections(ref.config_markdown(registry), "###")
    for kind in KINDS:
        body = page[kind.replace("_", " ").capitalize()]
        names = [n for n in registry.listed(kind) if registry.providers[kind][n].builtin]
        assert names, kind
        for name in names:
            assert name in rows(body), f"{kind} {name} is not on the config reference"
            parameters, what = rows(body)[name].rsplit(" | ", 1)
            for parameter in inspect.signature(registry.entries[kind][name]).parameters:
                assert f"`{parameter}`" in parameters, f"{kind} {name}: parameter {parameter} is not on the page"
            assert len(what) > 10, f"{kind} {name} does not say what it is: give its class a docstring"


def test_a_plugin_parameter_shows_its_type_in_words_and_its_default(ref):
    class Shift(framework.Layer):
        name = "shift"

        def __init__(
            self,
            units: Annotated[int, "a positive whole number"],
            rate: float = 0.5,
            init: Initializer | None = None,
            anything=None,
        ):
            pass

    shown = ref._parameters(Shift).split("<br>")
    assert shown == [
        "`units`: a positive whole number, required",
        "`rate`: a finite number, default `0.5`",
        "`init`: an initialiser's name or mapping (default: model.init), default `null`",
        "`anything`: any value, default `null`",
    ]


def test_the_api_page_documents_every_public_class_and_the_test_kit():
    page = (ROOT / "docs/reference/api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^::: (\S+)$", page, flags=re.M)
    public = [n for n in framework.__all__ if n != "hookimpl"] + list(framework.testing.__all__)
    for name in public:
        assert any(b.rsplit(".", 1)[-1] == name for b in blocks), f"{name} has no ::: block on docs/reference/api.md"
    assert "framework.Layer" in blocks


def test_the_reference_pages_get_their_generated_part_when_the_site_is_built(ref):
    cli = ref.on_page_markdown((ROOT / "docs/reference/cli.md").read_text(encoding="utf-8"), page=None)
    config = ref.on_page_markdown((ROOT / "docs/reference/config.md").read_text(encoding="utf-8"), page=None)
    assert "fw-reference" not in cli + config
    assert "\n## fw train\n" in cli and {"train.epochs", "dense"} <= rows(config).keys()
