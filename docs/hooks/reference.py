"""The reference pages, written when the site is built so they cannot drift from the code.

An mkdocs hook (mkdocs.yml's ``hooks:``): a page's marker ``<!-- fw-reference: cli -->`` becomes
``cli_markdown()``, read from fw's own argument parser, and ``<!-- fw-reference: config -->``
becomes ``config_markdown()``, read from the config schema (``framework.config.schema``) and the
``__init__`` signatures of the built-in plugins, as the registry lists them. A new option, key or
plugin parameter shows up with no edit here; tests/test_docs_reference.py checks that each does.
"""

import argparse
import dataclasses
import html
import inspect
import re
import typing

MARKER = "<!-- fw-reference: {} -->"


def on_page_markdown(markdown, page, **kwargs):
    """mkdocs' hook: replace each marker on the page with its generated Markdown."""
    for name, make in GENERATORS.items():
        marker = MARKER.format(name)
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown


# --- text ------------------------------------------------------------------------------------

_CODE = re.compile(r"(`+).+?\1")


def text(s) -> str:
    """Plain text as Markdown: code spans (``x``) kept, and outside them what Markdown would read as markup escaped."""
    out, at = [], 0
    for m in _CODE.finditer(s):
        out += [_escape(s[at : m.start()]), m.group(0)]
        at = m.end()
    return "".join(out + [_escape(s[at:])])


def _escape(s):
    s = re.sub(r"([\\*_\[\]|])", r"\\\1", s)
    return s.replace("<", "&lt;").replace(">", "&gt;")


def code(s) -> str:
    """``s`` as an inline code span, whatever backticks it holds."""
    s = str(s)
    fence = "``" if "`" in s else "`"
    return f"{fence}{s}{fence}" if fence == "`" else f"{fence} {s} {fence}"


def unbroken(s) -> str:
    """``s`` as code that a narrow table column does not break mid-word (``model.output_activation``)."""
    return f'<code style="white-space: nowrap">{html.escape(str(s))}</code>'


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("\n", " ") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def prose(block) -> str:
    """A help text as argparse prints it: unindented lines are paragraphs, indented ones (examples) code."""
    out, para, example = [], [], []

    def flush():
        if para:
            out.append(text(" ".join(para)))
            para.clear()
        if example:
            indent = min(len(line) - len(line.lstrip()) for line in example if line.strip())
            lines = [line[indent:] for line in example]
            language = "sh" if lines[0].startswith("fw ") else "yaml" if lines[0].rstrip().endswith(":") else "text"
            out.append(f"```{language}\n" + "\n".join(lines).rstrip() + "\n```")
            example.clear()

    for line in (block or "").splitlines():
        if not line.strip():
            flush()
        elif line[0].isspace():
            if para:
                flush()
            example.append(line)
        else:
            if example:
                flush()
            para.append(line.strip())
    flush()
    return "\n\n".join(out)


def first_paragraph(doc) -> str:
    return " ".join(inspect.cleandoc(doc or "").split("\n\n")[0].split())


def value(v) -> str:
    """A default as YAML writes it: null, true, [784, 50], {name: adam}."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(map(value, v)) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {value(x)}" for k, x in v.items()) + "}"
    return str(v)


# --- the command line ------------------------------------------------------------------------


def cli_markdown(parser=None) -> str:
    """Every ``fw`` subcommand: its usage, description, arguments and options, from the real parser."""
    if parser is None:
        from framework.cli.parser import build_parser

        parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    summary = {choice.dest: choice.help for choice in sub._choices_actions}
    commands = [[f"[{code('fw ' + n)}](#fw-{n})", text(summary.get(n) or "")] for n in sub.choices]
    parts = [table(["Command", "What it does"], commands), _command("fw", parser, None)]
    parts += [_command(f"fw {name}", cmd, summary.get(name)) for name, cmd in sub.choices.items()]
    return "\n\n".join(parts) + "\n"


def _command(title, parser, summary):
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        if action.option_strings:
            what = formatter._format_action_invocation(action)
        else:
            what = formatter._format_args(action, action.dest)
        rows.append([unbroken(what), text(formatter._expand_help(action) if action.help else "")])
    # argparse indents the usage's continuation lines under "usage: fw ...": shifted left as the prefix is dropped
    first, *rest = parser.format_usage().rstrip().removeprefix("usage: ").split("\n")
    usage = "\n".join([first, *(line[len("usage: ") :] for line in rest)])
    parts = [f"## {title}"]
    if summary:
        parts.append(text(summary[0].upper() + summary[1:]) + ".")
    parts += [f"```text\n{usage}\n```", prose(parser.description)]
    if rows:
        parts.append(table(["Argument", "What it is"], rows))
    return "\n\n".join(p for p in parts if p)


# --- the config ------------------------------------------------------------------------------

#: Where a config names a plugin of each kind, and so where its parameters go.
WHERE = {
    "activations": "``model.activation``, ``model.output_activation`` or an entry of ``model.layers``: "
    "``{name: NAME, PARAMETER: VALUE}``",
    "layers": "an entry of ``model.layers``: ``{name: dense, units: 100}``",
    "datasets": "``dataset.name``; its parameters are more keys of ``dataset:``, beside ``name`` and ``split``",
    "weight_importers": "``weights.importer``",
    "weight_writers": "``weights.format``",
    "optimizers": "``train.optimizer``: ``{name: adam, lr: 0.001}``",
    "losses": "``train.loss``",
    "initializers": "``model.init``, or a layer's own ``init:``: ``{name: normal, std: 0.01}``",
    "callbacks": "an entry of ``train.callbacks``: ``{name: early_stopping, patience: 3}``",
}


def _section(f):
    return next((a for a in (f.type, *typing.get_args(f.type)) if dataclasses.is_dataclass(a)), None)


def config_markdown(registry=None) -> str:
    """Every config key fw declares, and every built-in plugin's parameters."""
    from framework.config.schema import Config
    from framework.plugin_system.registry import KINDS

    parts = [
        "## The keys",
        text(
            "Every key fw itself reads, with its default. A key that is not here is an error "
            "that names the closest one; a section's key is written `section.key` on the command line (KEY=VALUE)."
        ),
    ]
    parts += ["### Top-level keys", _keys_table(Config)]
    for f in dataclasses.fields(Config):
        kind = _section(f)
        if kind is None:
            continue
        parts.append(f"### `{f.name}:`")
        parts.append(text(_sentence(_doc(f.name, f))))
        if kind.__doc__ and not kind.__doc__.startswith(kind.__name__ + "("):  # its own, not dataclass's generated one
            parts.append(text(first_paragraph(kind.__doc__)))
        parts.append(_keys_table(kind, f"{f.name}."))

    if registry is None:
        from framework.plugin_system.manager import get_registry

        registry = get_registry().load_all()
    parts += [
        "## The built-in plugins' parameters",
        text(
            "What each of fw's own plugins accepts, read from its class's `__init__`: a parameter's type is "
            "checked before the plugin starts, and one without a default must be given. "
            "`fw plugins` lists installed plugins too."
        ),
    ]
    for kind in KINDS:
        names = [n for n in registry.listed(kind) if registry.providers[kind][n].builtin]
        parts.append(f"### {kind.replace('_', ' ').capitalize()}")
        if kind in WHERE:
            parts.append("Named in " + WHERE[kind] + ".")
        classes = [(n, registry.entries[kind][n]) for n in names]
        rows = [[unbroken(n), _parameters(cls), text(first_paragraph(cls.__doc__))] for n, cls in classes]
        parts.append(table(["Name", "Parameters", "What it is"], rows) if rows else "None.")
    return "\n\n".join(parts) + "\n"


def _sentence(s):
    return (s if s.startswith("fw ") else s[0].upper() + s[1:]) + "."


def _doc(key, f):
    doc = f.metadata.get("doc")
    if not doc:
        raise ValueError(f"config key {key} has no doc=: say what it does in framework/config/schema.py")
    return doc


def _keys_table(cls, prefix=""):
    """The keys of the schema's section ``cls`` (a section inside it has its own table)."""
    rows = []
    for f in dataclasses.fields(cls):
        if _section(f) is not None:
            continue
        key, each = prefix + f.name, f.metadata.get("each")
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        kind = (f.metadata.get("want") or "") + (f"; each entry {each}" if each else "")
        said = text(_sentence(_doc(key, f)))
        rows.append([unbroken(key), f"{said}<br>*Default:* {code(value(default))}; *type:* {text(kind)}"])
    return table(["Key", "What it does"], rows)


def _parameters(cls) -> str:
    from framework.core.initializer import Initializer
    from framework.core.params import want

    if cls.__init__ is object.__init__:
        return "none"
    try:
        signature = inspect.signature(cls, eval_str=True)
    except Exception:  # noqa: BLE001 - an annotation its module cannot resolve: shown as written
        signature = inspect.signature(cls)
    out = []
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = p.annotation
        if annotation is p.empty:
            kind = "any value"
        elif Initializer in (annotation, *typing.get_args(annotation)):
            kind = "an initialiser's name or mapping (default: model.init)"
        else:
            kind = want(annotation)
        default = "required" if p.default is p.empty else f"default {code(value(p.default))}"
        out.append(f"{code(p.name)}: {text(kind)}, {default}")
    return "<br>".join(out) or "none"


GENERATORS = {"cli": cli_markdown, "config": config_markdown}
