"""The size rules of the package, its scripts, benchmarks and tests: no
module over 300 lines, no function over 40 (docstring included) except the
functional graph builders, whose length is the network's layer list."""

import ast
import os

import pytest
from helpers import python_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 40
# (module, function): builders of functional graphs, one layer a line or two.
GRAPH_BUILDERS = {
    ("danet_tf/models/dilated_resnet.py", "DilatedResNet"),
    ("danet_tf/models/head.py", "DANetHead"),
}
pytestmark = pytest.mark.backend_independent


def _repository_modules():
    for path in python_files():
        yield os.path.relpath(path, ROOT).replace(os.sep, "/"), open(path).read()


def long_functions(source, limit=MAX_FUNCTION_LINES):
    """`(name, lines)` of each function (methods and nested ones too) longer than `limit`."""
    return [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > limit]


def test_long_functions_counts_a_function_from_its_def_to_its_last_line():
    body = "\n".join(f"    x{i} = {i}" for i in range(40))
    assert long_functions(f"def f():\n{body}\n") == [("f", 41)]
    assert long_functions(f"def f():\n{body}\n", limit=41) == []
    method = "\n".join("    " + line for line in body.splitlines())
    assert long_functions(f"class A:\n    def g(self):\n{method}\n") == [("g", 41)]


def test_no_module_over_300_lines():
    long = [f"{path}: {source.count(chr(10))} lines" for path, source in _repository_modules()
            if source.count("\n") > MAX_MODULE_LINES]
    assert not long, "\n".join(long)


def test_no_function_over_40_lines_outside_graph_builders():
    long, builders = [], set()
    for path, source in _repository_modules():
        for name, lines in long_functions(source):
            if (path, name) in GRAPH_BUILDERS:
                builders.add((path, name))
            else:
                long.append(f"{path}: {name} has {lines} lines")
    assert not long, "\n".join(long)
    assert builders == GRAPH_BUILDERS, "each listed graph builder exists and is long"
