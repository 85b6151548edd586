"""The package's shape: imports only point down, no module reaches into another's privates,
one seed rule, and reports never touch the user's matplotlib state."""

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import netmod

PACKAGE = Path(netmod.__file__).resolve().parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))


def _imports(name):
    """(imported netmod module, names taken from it) for every import in module ``name``, nested ones too."""
    tree = ast.parse((PACKAGE / f"{name}.py").read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module is None:  # from . import x
                out += [(alias.name, []) for alias in node.names]
            else:
                out.append((node.module.split(".")[0], [alias.name for alias in node.names]))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("netmod."):
            out.append((node.module.split(".")[1], [alias.name for alias in node.names]))
    return [(m, names) for m, names in out if m in MODULES or m in ("_core", "_core_avx2")]


def test_import_graph_has_no_cycles():
    graph = {m: sorted({dep for dep, _ in _imports(m) if dep in MODULES and dep != m}) for m in MODULES}
    state = {}

    def visit(m, path):
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", f"import cycle: {' -> '.join(path + [m])}"
        state[m] = "open"
        for dep in graph[m]:
            visit(dep, path + [m])
        state[m] = "done"

    for m in MODULES:
        visit(m, [])
    # The argument checks sit at the bottom: they import nothing from netmod.
    assert graph["_validate"] == []


def test_no_module_imports_another_modules_private_names():
    offences = [f"{m} imports {name} from {dep}" for m in MODULES for dep, names in _imports(m)
                for name in names if name.startswith("_") and dep != m]
    assert offences == []


def test_torch_is_imported_only_by_the_torch_modules():
    code = ("import netmod, sys, numpy as np; g = netmod.from_layers([np.ones((3, 2))]); "
            "netmod.ncut(g, [0, 0, 0, 1, 1]); netmod.compare(g, n_clusters=2); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


SEEDED = {
    "spectral_clustering": lambda g, seed: netmod.spectral_clustering(g, n_clusters=2, seed=seed),
    "spectral_embedding": lambda g, seed: netmod.spectral_embedding(g, n_components=2, seed=seed),
    "shuffle_null": lambda g, seed: netmod.shuffle_null(g, n_shuffles=2, n_clusters=2, seed=seed, progress=False),
    "leiden": lambda g, seed: netmod.leiden(g, seed=seed),
    "louvain": lambda g, seed: netmod.louvain(g, seed=seed),
    "compare": lambda g, seed: netmod.compare(g, n_clusters=2, seed=seed),
}


@pytest.fixture(scope="module")
def graph():
    rng = np.random.default_rng(0)
    return netmod.from_layers([rng.normal(size=(8, 6)), rng.normal(size=(6, 4))])


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_one_seed_rule(name, graph):
    run = SEEDED[name]
    drawn = run(graph, None)
    assert 0 <= drawn.seed < 2**64  # None draws a seed, and the result records it
    assert run(graph, 2**64 - 1).seed == 2**64 - 1
    for bad, error in ((-1, ValueError), (2**64, ValueError), (1.5, TypeError), ("0", TypeError), (True, TypeError)):
        with pytest.raises(error, match="seed"):
            run(graph, bad)


def test_every_public_seed_parameter_defaults_to_zero_and_takes_none():
    functions = [getattr(netmod, n) for n in netmod.__all__ if inspect.isfunction(getattr(netmod, n))]
    functions += [netmod.synthetic.glorot_weights, netmod.synthetic.clusterable_weights]
    checked = 0
    for fn in functions:
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            continue
        if "seed" in params and fn.__name__ not in ("replicate_seed",):
            assert params["seed"].default == 0, fn.__name__
            assert params["seed"].kind is inspect.Parameter.KEYWORD_ONLY, fn.__name__
            assert "None" in str(params["seed"].annotation), fn.__name__
            checked += 1
    assert checked >= 10


def test_no_module_uses_pyplot_or_sets_a_backend():
    for m in MODULES:
        tree = ast.parse((PACKAGE / f"{m}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [getattr(node, "module", None) or ""] + [a.name for a in node.names]
                assert not any("pyplot" in n for n in names), m
            if isinstance(node, ast.Attribute) and node.attr == "use":
                assert not (isinstance(node.value, ast.Name) and node.value.id == "matplotlib"), m


def test_reports_leave_the_matplotlib_backend_alone(tmp_path):
    code = f"""
import matplotlib
matplotlib.use("svg")
import numpy as np, netmod
from netmod import report
null = netmod.shuffle_null([np.abs(np.random.default_rng(0).normal(size=(8, 6)))], n_shuffles=4, n_clusters=2,
                           progress=False)
report.null_histogram({str(tmp_path / 'null.png')!r}, {{"layer": null}}, title="t")
assert matplotlib.get_backend().lower() == "svg", matplotlib.get_backend()
"""
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "null.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
