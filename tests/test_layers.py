"""The package's layers import only downwards: base modules (config, files,
errors) < models < data < train, deploy < cli; train and deploy never import
each other; module-level imports form no cycle. The benchmarks and the tests
import one another without a cycle (imports inside functions included), and
no code edits sys.path, imports TensorFlow's private modules or loads a
module by its file path, except where listed with the reason."""

import ast
import os
import re

import pytest
from helpers import python_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "danet_tf")
RANK = {"base": 0, "models": 1, "testing": 1, "data": 2, "train": 3, "deploy": 3, "cli": 4}
# The trees whose every import (inside functions too) forms no cycle (the
# trees that follow the package's rules: helpers.SOURCE_TREES).
IMPORT_TREES = ("benchmarks", "tests")
FORBIDDEN = re.compile(  # sys.path edits, TensorFlow's private modules, loading by file path
    r"\bsys\.path\.(?:insert|append|extend)\b|\btensorflow\.python\b|\bspec_from_file_locatio[n]\b")
# (file, top-level name) holding exactly one forbidden line on purpose, and why.
ALLOWED = {
    # Runs each `training/<script>.py --help` in a child process the way
    # `python training/<script>.py` does: the script's folder first on sys.path.
    ("tests/cli/test_cli.py", "HELP_RUNNER"),
    # The official PyTorch model's process loads the reference by its path:
    # importing `danet_tf.testing.torch_danet` runs `danet_tf/__init__`, which
    # loads Keras and TensorFlow (about 0.7 GB) into the process whose peak
    # memory the official table compares with this project's.
    ("benchmarks/official.py", "_reference"),
}
pytestmark = pytest.mark.backend_independent


def _module_name(path):
    """The name `path` is imported by: dotted through the packages above it
    (`danet_tf.models.head`); a file in a folder without `__init__.py` (the
    tests: pytest puts that folder first on sys.path) by its own name."""
    directory, name = os.path.split(path[:-3])
    parts = [] if name == "__init__" else [name]
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
    return ".".join(parts)


def _modules(trees=("danet_tf",)):
    """`{module name: path}` of every `.py` file under `trees`."""
    return {_module_name(path): path for path in python_files(trees)}


def _imports(path, module, known, top_level_only=False):
    """The modules of `known` that `path` (module `module`) imports; `from
    package import name` counts as importing `package.name` where that is a
    module."""
    tree = ast.parse(open(path).read())
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = ".".join(filter(None, [anchor, base]))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in known:
                    yield submodule
                elif base in known:
                    yield base


def _first_cycle(graph):
    """An import cycle of `graph` (`{module: imported modules}`) as a list, or None."""
    state = {}

    def visit(module, stack):
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                return stack + [module, imported]
            if imported not in state:
                cycle = visit(imported, stack + [module])
                if cycle:
                    return cycle
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [])
            if cycle:
                return cycle
    return None


def _layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) >= 2 and parts[1] in RANK else "base"


def test_no_module_imports_a_higher_layer():
    modules = _modules()
    wrong = []
    for module, path in modules.items():
        if module == "danet_tf":
            continue  # the package root re-exports the model core
        for imported in _imports(path, module, modules):
            mine, theirs = _layer(module), _layer(imported)
            if RANK[theirs] > RANK[mine] or {mine, theirs} == {"train", "deploy"}:
                wrong.append(f"{module} ({mine}) imports {imported} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_module_level_imports_have_no_cycle():
    modules = _modules()
    graph = {module: set(_imports(path, module, modules, top_level_only=True))
             for module, path in modules.items()}
    cycle = _first_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_benchmarks_and_tests_imports_have_no_cycle():
    """Every import of benchmarks/ and tests/, those inside functions too; the
    package's modules are leaves of this graph, since it imports neither."""
    package, scripts = _modules(), _modules(IMPORT_TREES)
    known = set(package) | set(scripts)
    upwards = [f"{module} imports {imported}" for module, path in package.items()
               for imported in _imports(path, module, known) if imported in scripts]
    assert not upwards, "\n".join(upwards)
    graph = {module: set(_imports(path, module, known)) for module, path in scripts.items()}
    cycle = _first_cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def _top_level_name(tree, number):
    """The name of the top-level def, class or assignment holding line `number`."""
    for node in tree.body:
        if node.lineno <= number <= node.end_lineno:
            targets = node.targets if isinstance(node, ast.Assign) else [node]
            return next((getattr(t, "name", None) or getattr(t, "id", None) for t in targets),
                        None)
    return None


def test_no_sys_path_edits_private_tensorflow_or_loading_by_path():
    wrong, allowed = [], []
    for path in python_files():
        relative = os.path.relpath(path, ROOT).replace(os.sep, "/")
        source = open(path).read()
        tree = ast.parse(source)
        for number, line in enumerate(source.splitlines(), 1):
            if not FORBIDDEN.search(line):
                continue
            place = (relative, _top_level_name(tree, number))
            if place in ALLOWED:
                allowed.append(place)
            else:
                wrong.append(f"{relative}:{number}: {line.strip()}")
    assert not wrong, "\n".join(wrong)
    assert sorted(allowed) == sorted(ALLOWED), "each allowed place holds exactly one such line"
