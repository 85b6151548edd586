"""netmod.sweep: partitions at many k from one eigensolve, the eigengap, nulls per k; `netmod sweep`."""

import json

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp

import netmod
from netmod.synthetic import glorot_weights


def planted(sizes, p_in, p_out, seed):
    """Symmetric weighted stochastic block model: weights uniform(0.5, 1.5) on the drawn edges."""
    rng = np.random.default_rng(seed)
    lab = np.repeat(np.arange(len(sizes)), sizes)
    prob = np.where(lab[:, None] == lab[None, :], p_in, p_out)
    a = (rng.random(prob.shape) < prob) * rng.uniform(0.5, 1.5, prob.shape)
    a = np.triu(a, 1)
    return a + a.T, lab


def normalised_laplacian_eigenvalues(a):
    """scipy twin: eigenvalues of I - D^-1/2 A D^-1/2 on the non-isolated nodes, ascending."""
    d = a.sum(axis=1)
    keep = d > 0
    a, d = a[np.ix_(keep, keep)], d[keep]
    s = 1 / np.sqrt(d)
    return scipy.linalg.eigvalsh(np.eye(len(d)) - s[:, None] * a * s[None, :])


def graphs():
    a, _ = planted([40, 30, 30, 20], 0.3, 0.03, seed=1)
    two, _ = planted([25, 25], 0.4, 0.0, seed=2)  # two components
    three = sp.block_diag([two, planted([15], 0.5, 0.0, seed=3)[0]]).toarray()  # three components
    mlp = glorot_weights([60, 30, 30, 8], seed=0)
    rng = np.random.default_rng(4)
    blocks = netmod.from_blocks([rng.random((6, 10)), rng.random((10, 12)), rng.random((6, 12))],
                                sizes=[6, 10, 12], pairs=[(0, 1), (1, 2), (0, 2)])
    return {"planted": a, "two components": two, "three components": three, "mlp": mlp,
            "blocks": blocks, "igraph": netmod.to_igraph(sp.csr_matrix(a))}


@pytest.mark.parametrize("name", list(graphs()))
def test_sweep_equals_separate_spectral_clusterings(name):
    graph = graphs()[name]
    ks = [2, 3, 4, 5, 6, 8, 10]
    s = netmod.sweep(graph, ks=ks, seed=3)
    assert s.ks.tolist() == ks
    for j, k in enumerate(ks):
        p = netmod.spectral_clustering(graph, n_clusters=k, seed=3)
        assert np.array_equal(s.labels[j], p.labels), k
        assert s.ncut[j] == pytest.approx(p.ncut, rel=1e-12, abs=1e-12)
        assert s.inertia[j] == pytest.approx(p.info["inertia"], rel=1e-6)  # embeddings agree to ~tol
        assert netmod.ncut(graph, s.labels[j]) == pytest.approx(s.ncut[j], rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(s.eigenvalues[:k], p.eigenvalues, atol=1e-7)


def test_sweep_equals_separate_calls_on_the_full_size_mlp():
    w = glorot_weights([784, 256, 256, 256, 256, 10], seed=0)
    ks = list(range(2, 21, 3))
    s = netmod.sweep(w, ks=ks, seed=0)
    for j, k in enumerate(ks):
        p = netmod.spectral_clustering(w, n_clusters=k, seed=0)
        assert np.array_equal(s.labels[j], p.labels), k
        assert s.ncut[j] == p.ncut


@pytest.mark.parametrize("sizes", [[50, 50, 50], [30, 40, 50, 35, 45], [25] * 8])
def test_eigengap_finds_the_planted_number_of_clusters(sizes):
    a, lab = planted(sizes, 0.35, 0.01, seed=len(sizes))
    s = netmod.sweep(a, ks=range(2, 13))
    assert s.best_k_eigengap == len(sizes)
    ref = normalised_laplacian_eigenvalues(a)
    np.testing.assert_allclose(s.eigenvalues, ref[:13], atol=1e-8)
    np.testing.assert_allclose(s.eigengap, ref[2:13] - ref[1:12], atol=1e-8)
    # At the planted k the partition is the planted one.
    j = s.ks.tolist().index(len(sizes))
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(lab, s.labels[j]) == 1.0


def test_eigengap_with_the_largest_k_at_the_node_count():
    a, _ = planted([4, 4], 0.9, 0.1, seed=0)
    s = netmod.sweep(a, ks=[2, 8])
    assert s.eigenvalues.size == 8  # no ninth eigenvalue exists
    assert np.isnan(s.eigengap[1]) and np.isfinite(s.eigengap[0])
    assert s.best_k_eigengap == 2


def test_null_per_k_equals_shuffle_null_at_each_k():
    w = glorot_weights([40, 20, 20, 6], seed=1)
    ks = [3, 5]
    s = netmod.sweep(w, ks=ks, n_shuffles=6, shuffle="nonzero", seed=2, n_threads=2, progress=False)
    assert s.null_samples.shape == (6, 2) and s.shuffle == "nonzero"
    for j, k in enumerate(ks):
        null = netmod.shuffle_null(w, n_clusters=k, n_shuffles=6, shuffle="nonzero", seed=2, progress=False)
        assert s.ncut[j] == null.observed
        np.testing.assert_array_equal(s.null_samples[:, j], null.samples)
        assert s.null_mean[j] == null.mean and s.null_std[j] == null.std
        assert s.z[j] == null.zscore and s.percentile[j] == null.percentile
    one = netmod.sweep(w, ks=ks, n_shuffles=6, shuffle="nonzero", seed=2, n_threads=1, progress=False)
    np.testing.assert_array_equal(one.null_samples, s.null_samples)


def test_edges_null_per_k_equals_shuffle_null():
    a, _ = planted([20, 20, 20], 0.4, 0.05, seed=5)
    s = netmod.sweep(a, ks=[3, 4], n_shuffles=4, shuffle="edges", progress=False)
    null = netmod.shuffle_null(a, n_clusters=4, n_shuffles=4, shuffle="edges", progress=False)
    np.testing.assert_array_equal(s.null_samples[:, 1], null.samples)


def test_without_a_null_the_null_fields_are_empty_or_nan():
    s = netmod.sweep(glorot_weights([10, 8, 4], seed=0), ks=[2, 3])
    assert s.n_shuffles == 0 and s.shuffle is None and s.null_samples.shape == (0, 2)
    assert np.isnan(s.z).all() and np.isnan(s.null_mean).all()
    d = s.to_dict()
    json.dumps(d)
    assert d["ks"] == [2, 3] and "versions" in d
    with pytest.raises(ValueError):
        s.labels[0, 0] = 5
    assert "| 2 |" in s.to_markdown() and "null" not in s.to_markdown()


@pytest.mark.parametrize("kwargs,error,message", [
    ({"ks": []}, ValueError, "at least one"),
    ({"ks": [1, 3]}, ValueError, "ks must be >= 2"),
    ({"ks": [2, 2]}, ValueError, "must not repeat"),
    ({"ks": [2, 40]}, ValueError, "non-isolated nodes (22)"),
    ({"ks": 5}, TypeError, "sequence of ints"),
    ({"ks": [2.5]}, TypeError, "ks"),
    ({"n_shuffles": -1}, ValueError, "n_shuffles"),
    ({"shuffle": "rows"}, ValueError, "shuffle"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        netmod.sweep(glorot_weights([10, 8, 4], seed=0), **kwargs)


def test_layer_null_of_a_plain_adjacency_is_refused():
    a, _ = planted([10, 10], 0.5, 0.1, seed=0)
    with pytest.raises(ValueError, match="layer structure"):
        netmod.sweep(a, ks=[2], n_shuffles=2, shuffle="layer")


def test_cli_sweep_matches_the_library(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from netmod.cli import main
    from netmod.torch_models import keras_like_mlp

    model = keras_like_mlp([30, 16, 16, 6], seed=0)
    torch.save(model.state_dict(), tmp_path / "mlp.pt")
    assert main(["sweep", str(tmp_path / "mlp.pt"), "--ks", "2:5,7", "--shuffles", "3", "--threads", "1",
                 "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    ref = netmod.sweep(model, ks=[2, 3, 4, 7], n_shuffles=3, progress=False)
    assert record["ks"] == [2, 3, 4, 7] and record["ncut"] == ref.ncut.tolist()
    assert record["null_samples"] == ref.null_samples.tolist()
    out = tmp_path / "out"
    assert main(["sweep", str(tmp_path / "mlp.pt"), "--ks", "2:6", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "largest eigengap" in text and "| 5 |" in text
    assert (out / "sweep.png").stat().st_size > 1000
    assert np.array_equal(np.load(out / "labels.npy"), netmod.sweep(model, ks=range(2, 6)).labels)
    assert main(["sweep", str(tmp_path / "mlp.pt"), "--ks", "two"]) == 2
    assert "--ks must be" in capsys.readouterr().err
