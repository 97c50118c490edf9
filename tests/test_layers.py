"""The package's layers import only downwards: base modules (config, files,
errors) < models < data < train, deploy < cli; train and deploy never import
each other; module-level imports form no cycle."""

import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "danet_tf")
RANK = {"base": 0, "models": 1, "testing": 1, "data": 2, "train": 3, "deploy": 3, "cli": 4}
pytestmark = pytest.mark.backend_independent


def _modules():
    for directory, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                relative = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3]
                yield relative.replace(os.sep, ".").removesuffix(".__init__"), path


def _layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in RANK else "base"


def _imports(path, top_level_only=False):
    tree = ast.parse(open(path).read())
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("danet_tf"):
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("danet_tf"))


def test_no_module_imports_a_higher_layer():
    wrong = []
    for module, path in _modules():
        if module == "danet_tf":
            continue  # the package root re-exports the model core
        for imported in _imports(path):
            mine, theirs = _layer(module), _layer(imported)
            if RANK[theirs] > RANK[mine] or {mine, theirs} == {"train", "deploy"}:
                wrong.append(f"{module} ({mine}) imports {imported} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_module_level_imports_have_no_cycle():
    graph = {module: set(_imports(path, top_level_only=True)) for module, path in _modules()}
    state = {}

    def visit(module, stack):
        state[module] = "open"
        for imported in graph.get(module, ()):
            if state.get(imported) == "open":
                raise AssertionError(" -> ".join(stack + [module, imported]))
            if imported not in state:
                visit(imported, stack + [module])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [])
