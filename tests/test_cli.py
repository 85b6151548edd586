"""The netmod command line."""

import json
import subprocess
import sys

import numpy as np

import netmod
from netmod.cli import main


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"netmod {netmod.__version__}"


def test_demo_json_matches_library(capsys):
    assert main(["demo", "--sizes", "30,20,20,5", "--n-clusters", "3", "--seed", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["network"] for r in rows] == ["untrained", "untrained, 90% magnitude-pruned"]
    from netmod.torch_models import keras_like_mlp

    g = netmod.from_torch(keras_like_mlp([30, 20, 20, 5], seed=1))
    expected = netmod.spectral_clustering(g, n_clusters=3, seed=1)
    assert rows[0]["ncut"] == expected.ncut
    assert rows[0]["partition"]["labels"] == expected.labels.tolist()
    assert rows[1]["n_edges"] < rows[0]["n_edges"]
    assert sum(rows[0]["cluster_sizes"]) == 75


def test_keras_like_init_is_glorot_uniform_with_zero_bias():
    from netmod.torch_models import keras_like_mlp

    m = keras_like_mlp([200, 100, 10], seed=3)
    w = m[0].weight.detach().numpy()
    bound = np.sqrt(6.0 / 300)
    assert np.abs(w).max() <= bound
    # Uniform on [-b, b] has variance b^2 / 3.
    assert abs(w.var() - bound**2 / 3) < 0.05 * bound**2 / 3
    assert float(m[0].bias.detach().abs().sum()) == 0.0
    same = keras_like_mlp([200, 100, 10], seed=3)
    assert np.array_equal(w, same[0].weight.detach().numpy())


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "netmod", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("netmod ")
