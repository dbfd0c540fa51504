"""The architecture the folders show is the one the imports keep: floors, no arrow up, no cycle.

Every import of a framework module is read from the source, those inside
functions too (fw imports much lazily), and held against the floors below.
"""

import ast
from pathlib import Path

FRAMEWORK = Path(__file__).resolve().parents[1] / "framework"

#: package (or top-level module) -> floor; a module may import its own package and lower floors only.
FLOORS = {
    "errors": 0,
    "safeio": 1,
    "core": 2,
    "data": 2,
    "__init__": 3,  # the public API: re-exports core's and data's base classes
    "plugin_system": 4,
    "interchange": 4,  # ONNX in and out: reads core's layers and safeio, below config (the CLI assembles)
    "config": 5,
    "training": 6,
    "api": 7,
    "testing": 7,
    "cli": 8,
}


def _module_name(path):
    """``core.layer``; a package by its own name (``config``); the top-level ``__init__.py`` as ``__init__``."""
    parts = list(path.relative_to(FRAMEWORK).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _exists(parts):
    return FRAMEWORK.joinpath(*parts).with_suffix(".py").is_file() or FRAMEWORK.joinpath(*parts).is_dir()


def _imports(path):
    """The framework modules ``path`` imports, as dotted names relative to ``framework``."""
    name = _module_name(path)
    parts = list(path.relative_to(FRAMEWORK).with_suffix("").parts)
    package = parts[:-1]  # what a relative import starts from
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.split(".")[0] == "framework":
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:  # `from . import checkpoint` imports a module, `from .x import f` a name
                sub = [*target, alias.name]
                found.add(".".join(sub) if _exists(sub) else ".".join(target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "framework":
                    found.add(".".join(alias.name.split(".")[1:]))
    return {m or "__init__" for m in found} - {name}


def _floor(module):
    """A module's floor; the built-in plugins (framework.plugins) import the public API, so they stand above it."""
    return FLOORS.get(module.split(".")[0], FLOORS["cli"] + 1)


def _graph():
    return {_module_name(p): _imports(p) for p in FRAMEWORK.rglob("*.py")}


def test_every_package_has_a_floor():
    tops = {_module_name(p).split(".")[0] for p in FRAMEWORK.rglob("*.py")}
    assert tops <= set(FLOORS), f"give these a floor in FLOORS: {sorted(tops - set(FLOORS))}"


def test_no_import_points_up_or_sideways():
    upward = [
        f"{module} (floor {_floor(module)}) imports {target} (floor {_floor(target)})"
        for module, targets in _graph().items()
        for target in targets
        if target.split(".")[0] != module.split(".")[0] and _floor(target) >= _floor(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = _graph()
    cycles, index, low, stack, on_stack = [], {}, {}, [], set()

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"
