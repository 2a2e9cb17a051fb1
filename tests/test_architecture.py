"""The package's imports point one way (keras_superattn/ARCHITECTURE.md), inside functions too."""

import ast
import os

import pytest

from tests.helpers import ROOT

PACKAGE = "keras_superattn"
# Each part imports only parts of a lower rank (and itself).
RANKS = {
    "_files": 0, "_validation": 0, "_keras_compat": 0,
    "layers": 1,
    "costs": 2, "models": 2, "quantization": 2, "text": 2, "datasets": 2, "distribution": 2,
    "generation": 3,
    "deploy": 4,
    "training": 5,
    "__main__": 6, "__init__": 6,
}
# The one module of the package that may hold private TensorFlow calls.
TENSORFLOW_PRIVATE = ("_experimental_calibrate_only", "mlir_quantize")
CONVERTER_MODULE = f"{PACKAGE}.deploy.tensorflow_converter"


def modules():
    """`{module name: path}` of every module of the package."""
    found = {}
    for folder, _, files in os.walk(os.path.join(ROOT, PACKAGE)):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
                found[module.removesuffix(".__init__")] = path
    return found


def imports(path, known):
    """The package's modules that the file imports anywhere, functions included."""
    with open(path) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                names.add(child if child in known else node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith(PACKAGE))
    return names & set(known)


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return {module: imports(path, known) - {module} for module, path in known.items()}


def part(module):
    return module.split(".")[1] if "." in module else "__init__"


def test_no_import_cycle(graph):
    state = {}

    def visit(module, trail):
        if state.get(module) == "done":
            return
        if state.get(module) == "open":
            cycle = trail[trail.index(module):] + [module]
            pytest.fail(f"import cycle: {' -> '.join(cycle)}")
        state[module] = "open"
        for imported in sorted(graph[module]):
            visit(imported, trail + [module])
        state[module] = "done"

    for module in sorted(graph):
        visit(module, [])


def test_parts_import_only_lower_ranks(graph):
    assert {part(m) for m in graph} <= set(RANKS), "a new part of the package needs a rank here"
    upward = [
        f"{module} imports {imported}"
        for module, imported_modules in graph.items()
        for imported in imported_modules
        if part(module) != part(imported) and RANKS[part(module)] <= RANKS[part(imported)]
    ]
    assert not upward, upward


def test_private_tensorflow_calls_live_in_the_converter_module():
    holders = set()
    for module, path in modules().items():
        with open(path) as f:
            source = f.read()
        if any(name in source for name in TENSORFLOW_PRIVATE):
            holders.add(module)
    assert holders == {CONVERTER_MODULE}
