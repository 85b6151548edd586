"""netmod.shuffle_null and shuffled_weights against numpy/scipy/sklearn re-implementations.

REFERENCE.md 4: per-layer shuffles of the signed weights after dead-unit
removal, re-clustered with the observed network's settings; population std,
z-score, a percentile where ties count against the network, below-every-shuffle significance,
Fisher-combined percentiles.
"""

import dataclasses
import json
import os
import signal
import threading
import time
import warnings

import igraph as ig
import numpy as np
import pytest
import scipy.sparse
import scipy.stats
import torch
from sklearn.cluster import SpectralClustering

import netmod
from netmod.synthetic import clusterable_weights, glorot_weights, prune_by_magnitude
from netmod.torch_models import keras_like_mlp

METHODS = ("layer", "nonzero")
MLP_SIZES = [784, 256, 256, 256, 256, 10]


@pytest.fixture(scope="module")
def small_weights(pruned_mlp_weights):
    """60-40-40-10, 70% pruned, dead units in every layer and a half-dead hidden unit."""
    return pruned_mlp_weights(0)


@pytest.fixture(scope="module")
def small_graph(small_weights):
    return netmod.from_layers(small_weights)


@pytest.fixture(scope="module")
def sparse_weights(pruned_mlp_weights):
    """90% pruned: most `layer` shuffles of it leave some unit with no weight at all."""
    return pruned_mlp_weights(1, sparsity=0.9)


def as_arrays(weights):
    return [np.asarray(w) for w in weights]


@pytest.mark.parametrize("method", METHODS)
def test_shuffle_keeps_each_layer_multiset_after_dead_unit_removal(method, small_weights,
                                                                   small_graph, remove_dead_units):
    observed = remove_dead_units(small_weights).weights
    assert [w.shape for w in observed] == [(57, 39), (39, 39), (39, 9)]
    for index in range(5):
        shuffled = as_arrays(netmod.shuffled_weights(small_graph, shuffle=method, seed=3,
                                                     index=index))
        assert len(shuffled) == len(observed)
        for s, w in zip(shuffled, observed):
            assert s.dtype == np.float64
            assert s.shape == w.shape
            np.testing.assert_array_equal(np.sort(s, axis=None), np.sort(w, axis=None))
            if method == "nonzero":
                np.testing.assert_array_equal(s != 0, w != 0)


@pytest.mark.parametrize("method", METHODS)
def test_shuffle_moves_values_across_rows_and_columns(method, small_weights, small_graph,
                                                      remove_dead_units):
    # Permuting whole rows or columns would also keep the multiset (and, for
    # rows and columns together, the mask's shape); a shuffle of the entries
    # changes the strength of the units.
    observed = remove_dead_units(small_weights).weights
    for index in range(3):
        shuffled = as_arrays(netmod.shuffled_weights(small_graph, shuffle=method, seed=0,
                                                     index=index))
        for s, w in zip(shuffled, observed):
            for axis in (0, 1):
                strength_s = np.sort(np.abs(s).sum(axis=axis))
                strength_w = np.sort(np.abs(w).sum(axis=axis))
                assert not np.allclose(strength_s, strength_w, rtol=1e-9, atol=0)
            if method == "layer":
                assert not np.array_equal(s != 0, w != 0)


@pytest.mark.parametrize("method", METHODS)
def test_replicates_differ_from_observed_and_from_each_other(method, small_weights, small_graph,
                                                             remove_dead_units):
    observed = remove_dead_units(small_weights).weights
    n = 20
    replicates = [as_arrays(netmod.shuffled_weights(small_graph, shuffle=method, seed=0, index=i))
                  for i in range(n)]
    # Layer by layer, so that a permutation reused across replicates in any
    # one layer (the original code's shared-RNG defect) is caught too.
    for l, w in enumerate(observed):
        layer = [r[l] for r in replicates]
        for i in range(n):
            assert not np.array_equal(layer[i], w), (l, i)
            for j in range(i + 1, n):
                assert not np.array_equal(layer[i], layer[j]), (l, i, j)


@pytest.mark.parametrize("method", METHODS)
def test_shuffled_weights_are_a_function_of_seed_and_index(method, small_graph):
    first = as_arrays(netmod.shuffled_weights(small_graph, shuffle=method, seed=5, index=3))
    again = as_arrays(netmod.shuffled_weights(small_graph, shuffle=method, seed=5, index=3))
    other_seed = as_arrays(netmod.shuffled_weights(small_graph, shuffle=method, seed=6, index=3))
    other_index = as_arrays(netmod.shuffled_weights(small_graph, shuffle=method, seed=5, index=4))
    for a, b, c, d in zip(first, again, other_seed, other_index):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
        assert not np.array_equal(a, d)


def test_replicate_seed():
    seeds = {s: [netmod.replicate_seed(s, i) for i in range(200)] for s in (0, 1)}
    for values in seeds.values():
        assert all(isinstance(v, int) and v >= 0 for v in values)
    assert seeds[0] == [netmod.replicate_seed(0, i) for i in range(200)]
    assert len(set(seeds[0]) | set(seeds[1])) == 400


@pytest.mark.parametrize("network", ["small", "mlp-pruned"])
@pytest.mark.parametrize("method", METHODS)
def test_same_samples_for_any_thread_count(method, network, small_graph, mlp_pruned_weights):
    graph, k = (small_graph, 4) if network == "small" else (mlp_pruned_weights, 12)
    runs = [netmod.shuffle_null(graph, n_shuffles=12, shuffle=method, n_clusters=k, seed=7,
                                n_threads=t, progress=False) for t in (1, 2, 4)]
    for run in runs[1:]:
        np.testing.assert_array_equal(run.samples, runs[0].samples)
        assert run.observed == runs[0].observed


@pytest.mark.parametrize("method", METHODS)
def test_samples_do_not_depend_on_n_shuffles(method, small_graph):
    short = netmod.shuffle_null(small_graph, n_shuffles=6, shuffle=method, n_clusters=4, seed=2,
                                n_threads=2, progress=False)
    long = netmod.shuffle_null(small_graph, n_shuffles=15, shuffle=method, n_clusters=4, seed=2,
                               n_threads=2, progress=False)
    np.testing.assert_array_equal(long.samples[:6], short.samples)
    assert long.observed == short.observed


@pytest.mark.parametrize("settings", [{}, {"n_init": 3, "tol": 1e-9}],
                         ids=["defaults", "n_init3-tol1e-9"])
@pytest.mark.parametrize("method", METHODS)
def test_samples_are_exactly_the_documented_replicates(method, settings, sparse_weights,
                                                       remove_dead_units):
    g = netmod.from_layers(sparse_weights)
    k, seed, n = 4, 11, 20
    null = netmod.shuffle_null(g, n_shuffles=n, shuffle=method, n_clusters=k, seed=seed,
                               progress=False, **settings)
    assert null.samples.shape == (n,)
    assert null.observed == netmod.spectral_clustering(g, n_clusters=k, seed=seed, **settings).ncut
    compacted = netmod.from_layers(remove_dead_units(sparse_weights).weights)
    assert null.observed == netmod.spectral_clustering(compacted, n_clusters=k, seed=seed,
                                                       **settings).ncut
    newly_isolated = []
    for i in range(n):
        shuffled = as_arrays(netmod.shuffled_weights(g, shuffle=method, seed=seed, index=i))
        newly_isolated.append(int(np.sum(~np.concatenate(remove_dead_units(shuffled).alive))))
        expected = netmod.spectral_clustering(netmod.from_layers(shuffled), n_clusters=k,
                                              seed=netmod.replicate_seed(seed, i), **settings)
        assert null.samples[i] == expected.ncut, i
    if method == "layer":
        # The isolated-again path is exercised, not just assumed.
        assert sum(c > 0 for c in newly_isolated) >= 2, newly_isolated
    else:
        assert not any(newly_isolated)


STATISTICS_CASES = {
    # name: (observed, samples, percentile worked out by hand, significant)
    "below-all": (0.5, [1.0, 2.0, 1.5, 3.0], 1 / 5, True),
    "ties": (2.0, [3.0, 1.0, 2.0, 2.0, 5.0, 2.0, 4.0], 5 / 8, False),
    "equal-to-min": (1.0, [1.0, 1.0, 3.0, 2.5], 3 / 5, False),
    "above-all": (9.0, [1.0, 2.0, 3.0], 4 / 4, False),
    "constant-samples": (4.0, [5.0, 5.0, 5.0], 1 / 4, True),
}


def statistics_of(null):
    keys = ("mean", "std", "zscore", "percentile", "significant")
    return {key: getattr(null, key) for key in keys}


def check_statistics(got, expected):
    for key in ("mean", "std", "zscore"):
        assert got[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-15, nan_ok=True), key
    assert got["percentile"] == expected["percentile"]
    assert bool(got["significant"]) is expected["significant"]


@pytest.mark.parametrize("case", sorted(STATISTICS_CASES))
def test_null_statistics_match_numpy(case, null_statistics_reference):
    observed, samples, percentile, significant = STATISTICS_CASES[case]
    expected = null_statistics_reference(observed, samples)
    assert expected["percentile"] == percentile
    assert expected["significant"] is significant
    got = netmod.null_statistics(observed, np.array(samples))
    check_statistics(got, expected)
    if case == "constant-samples":
        assert np.isnan(got["zscore"])


def test_null_statistics_random_samples(null_statistics_reference):
    rng = np.random.default_rng(0)
    samples = rng.normal(10.0, 0.05, size=50)
    for observed in (9.8, float(np.sort(samples)[17]), 10.0, 10.3):
        check_statistics(netmod.null_statistics(observed, samples),
                         null_statistics_reference(observed, samples))


def test_null_distribution_statistics(small_graph, null_statistics_reference):
    null = netmod.shuffle_null(small_graph, n_shuffles=30, shuffle="layer", n_clusters=4, seed=1,
                               progress=False)
    check_statistics(statistics_of(null), null_statistics_reference(null.observed, null.samples))
    check_statistics(netmod.null_statistics(null.observed, null.samples),
                     null_statistics_reference(null.observed, null.samples))
    # Ties with the samples, and a degenerate null, through the result object.
    ordered = np.sort(null.samples)
    for observed in (ordered[0], ordered[12], ordered[-1]):
        tied = dataclasses.replace(null, observed=float(observed))
        check_statistics(statistics_of(tied),
                         null_statistics_reference(float(observed), null.samples))
    flat = dataclasses.replace(null, samples=np.full(30, null.observed))
    check_statistics(statistics_of(flat), null_statistics_reference(null.observed, flat.samples))
    assert np.isnan(flat.zscore)
    assert flat.percentile == 1.0  # every tie counts against the network
    assert not flat.significant


@pytest.mark.parametrize("percentiles, n_shuffles", [
    ([1 / 51] * 5, 50),
    ([1 / 51, 3 / 51, 10 / 51, 26 / 51, 51 / 51], 50),
    ([0.01, 0.2, 0.6], 99),
])
def test_combine_percentiles_is_fisher_on_shifted_percentiles(percentiles, n_shuffles):
    shifted = np.asarray(percentiles) - 0.5 / (n_shuffles + 1)
    expected = scipy.stats.combine_pvalues(shifted, method="fisher").pvalue
    # The same number from the chi-square law, so that the scipy call above is checked too.
    chi2 = scipy.stats.chi2.sf(-2.0 * np.log(shifted).sum(), 2 * len(shifted))
    assert expected == pytest.approx(chi2, rel=1e-10)
    got = netmod.combine_percentiles(percentiles, n_shuffles=n_shuffles)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, rel=1e-12)


def sklearn_replicate_ncut(shuffled, k, layered_adjacency, ncut_reference):
    """One replicate the straightforward way: dense |W| graph, isolated nodes dropped, sklearn."""
    A = layered_adjacency(as_arrays(shuffled))
    kept = A.sum(axis=1) > 0
    A = A[np.ix_(kept, kept)]
    model = SpectralClustering(n_clusters=k, affinity="precomputed", eigen_solver="arpack",
                               assign_labels="kmeans", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        labels = model.fit_predict(A)
    return ncut_reference(A, labels)


def test_replicates_match_sklearn_on_planted_modules(planted_layered_weights, layered_adjacency,
                                                     ncut_reference):
    # The `nonzero` null keeps the planted mask, so the shuffled networks still
    # have one clear 4-module partition: sklearn must find the same n-cut.
    g = netmod.from_layers(planted_layered_weights(0).weights)
    null = netmod.shuffle_null(g, n_shuffles=4, shuffle="nonzero", n_clusters=4, seed=0,
                               progress=False)
    for i in range(4):
        shuffled = netmod.shuffled_weights(g, shuffle="nonzero", seed=0, index=i)
        expected = sklearn_replicate_ncut(shuffled, 4, layered_adjacency, ncut_reference)
        assert null.samples[i] == pytest.approx(expected, rel=1e-9), i


@pytest.mark.parametrize("method", METHODS)
def test_replicates_match_sklearn_on_random_mlp(method, small_graph, layered_adjacency,
                                                ncut_reference):
    # Shuffles of an unstructured net: two different k-means runs on the same
    # embedding. Measured over 400 such replicates, the relative difference had
    # sd 0.6% and max 3.5% and exceeded 2% in 5 of them, so a per-replicate 2%
    # bound would fail by chance; its mean over 8 replicates never passed 0.7%.
    n, k = 8, 4
    null = netmod.shuffle_null(small_graph, n_shuffles=n, shuffle=method, n_clusters=k, seed=0,
                               progress=False)
    differences = []
    for i in range(n):
        shuffled = netmod.shuffled_weights(small_graph, shuffle=method, seed=0, index=i)
        expected = sklearn_replicate_ncut(shuffled, k, layered_adjacency, ncut_reference)
        differences.append((null.samples[i] - expected) / expected)
    differences = np.array(differences)
    assert np.abs(differences).max() <= 0.05, differences
    assert abs(differences.mean()) <= 0.01, differences


@pytest.fixture(scope="module")
def planted_pruned_mlp():
    """REFERENCE.md 5 clusterable init on the full MLP, 90% per-layer magnitude pruning."""
    weights = clusterable_weights(MLP_SIZES, n_modules=10, within=4.6, across=0.6, seed=0)
    return prune_by_magnitude(weights, 0.9)


@pytest.mark.parametrize("method", METHODS)
def test_planted_modules_are_significant_under_both_nulls(method, planted_pruned_mlp):
    null = netmod.shuffle_null(planted_pruned_mlp, n_shuffles=50, shuffle=method, n_clusters=12,
                               seed=0, progress=False)
    assert null.samples.shape == (50,)
    assert null.observed < null.samples.min()
    assert null.significant
    assert null.percentile == 1 / 51


def test_random_mlp_is_not_significant():
    null = netmod.shuffle_null(glorot_weights(MLP_SIZES, seed=0), n_shuffles=50, shuffle="layer",
                               n_clusters=12, seed=0, progress=False)
    assert abs(null.zscore) < 3, null.zscore
    assert null.percentile > 0.05, null.percentile
    assert not null.significant


def test_result_is_frozen_and_json_ready(small_graph):
    null = netmod.shuffle_null(small_graph, n_shuffles=12, shuffle="nonzero", n_clusters=4, seed=5,
                               n_init=3, tol=1e-9, progress=False)
    assert isinstance(null, netmod.NullDistribution)
    assert dataclasses.is_dataclass(null)
    assert isinstance(null.observed, float)
    assert isinstance(null.samples, np.ndarray)
    assert null.samples.dtype == np.float64
    assert null.samples.shape == (12,)
    assert not null.samples.flags.writeable
    with pytest.raises(ValueError):
        null.samples[0] = 0.0
    for name, value in [("observed", 0.0), ("shuffle", "layer"), ("samples", np.zeros(12))]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(null, name, value)
    record = json.loads(json.dumps(null.to_dict()))
    assert record["samples"] == null.samples.tolist()
    assert record["observed"] == null.observed
    expected = {"shuffle": "nonzero", "method": "spectral", "statistic": "ncut", "seed": 5, "n_clusters": 4,
                "n_shuffles": 12, "n_init": 3, "tol": 1e-9}
    assert {key: record[key] for key in expected} == expected
    assert record["versions"] == json.loads(json.dumps(null.versions))
    assert "netmod" in record["versions"]
    for key in ("mean", "std", "zscore", "percentile"):
        assert record[key] == pytest.approx(getattr(null, key), rel=1e-15), key
    assert record["significant"] is bool(null.significant)


def test_torch_model_graphs_and_weight_lists_give_identical_nulls():
    model = keras_like_mlp([20, 15, 10], seed=0)
    weights = [m.weight.detach().numpy().astype(np.float64).T
               for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [w.shape for w in weights] == [(20, 15), (15, 10)]
    inputs = {
        "torch": model,
        "from_torch": netmod.from_torch(model),
        "from_layers": netmod.from_layers(weights),
        "list": weights,
        "tuple": tuple(weights),
    }
    nulls = {name: netmod.shuffle_null(graph, n_shuffles=10, shuffle="layer", n_clusters=4,
                                       seed=2, progress=False) for name, graph in inputs.items()}
    shuffles = {name: as_arrays(netmod.shuffled_weights(graph, shuffle="layer", seed=2, index=3))
                for name, graph in inputs.items()}
    for name in inputs:
        np.testing.assert_array_equal(nulls[name].samples, nulls["list"].samples, err_msg=name)
        assert nulls[name].observed == nulls["list"].observed, name
        for a, b in zip(shuffles[name], shuffles["list"]):
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_progress_bar_can_be_forced_on_and_off(small_graph, capsys):
    def run(progress):
        return netmod.shuffle_null(small_graph, n_shuffles=10, n_clusters=4, seed=1,
                                   progress=progress)

    off = run(False)
    assert capsys.readouterr().err == ""
    default = run(None)  # stderr is not a terminal under capsys
    assert capsys.readouterr().err == ""
    on = run(True)
    assert "/10" in capsys.readouterr().err  # a bar counting to n_shuffles
    np.testing.assert_array_equal(on.samples, off.samples)
    np.testing.assert_array_equal(default.samples, off.samples)


@pytest.mark.parametrize("shuffle", ["bogus", "Layer", ""])
def test_unknown_shuffle_rejected(shuffle, small_graph):
    with pytest.raises(ValueError, match="shuffle must be one of 'layer', 'nonzero'"):
        netmod.shuffle_null(small_graph, n_shuffles=2, shuffle=shuffle, n_clusters=4)
    with pytest.raises(ValueError, match="shuffle must be one of"):
        netmod.shuffled_weights(small_graph, shuffle=shuffle)


@pytest.mark.parametrize("method", ["kmeans", "Leiden", "cut"])
def test_unknown_method_rejected(method, small_graph):
    with pytest.raises(ValueError, match="method must be one of 'spectral', 'leiden', 'louvain'"):
        netmod.shuffle_null(small_graph, n_shuffles=2, method=method, n_clusters=4)
    with pytest.raises(ValueError, match="statistic must be one of 'ncut', 'modularity'"):
        netmod.shuffle_null(small_graph, n_shuffles=2, statistic=method, n_clusters=4)


@pytest.mark.parametrize("n_shuffles", [0, -3])
def test_n_shuffles_below_one_rejected(n_shuffles, small_graph):
    with pytest.raises(ValueError, match="n_shuffles"):
        netmod.shuffle_null(small_graph, n_shuffles=n_shuffles, n_clusters=4)


@pytest.mark.parametrize("n_clusters", [1, 0])
def test_n_clusters_below_two_rejected(n_clusters, small_graph):
    with pytest.raises(ValueError, match="n_clusters"):
        netmod.shuffle_null(small_graph, n_shuffles=2, n_clusters=n_clusters)


def test_bad_n_threads_and_seed_rejected(small_graph):
    with pytest.raises(ValueError, match="n_threads"):
        netmod.shuffle_null(small_graph, n_shuffles=2, n_clusters=4, n_threads=0)
    with pytest.raises(ValueError, match="seed"):
        netmod.shuffle_null(small_graph, n_shuffles=2, n_clusters=4, seed=-1)


def graph_without_layers(kind, weights, layered_adjacency):
    if kind == "dense-adjacency":
        return layered_adjacency(weights)
    if kind == "csr-adjacency":
        return scipy.sparse.csr_matrix(layered_adjacency(weights))
    if kind == "zachary":
        return ig.Graph.Famous("Zachary")
    if kind == "edge-within-a-layer":
        g = netmod.from_layers(weights)
        g.add_edge(0, 1, weight=1.0)
        return g
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["dense-adjacency", "csr-adjacency", "zachary",
                                  "edge-within-a-layer"])
def test_graph_without_layer_structure_rejected(kind, small_weights, layered_adjacency):
    graph = graph_without_layers(kind, small_weights, layered_adjacency)
    with pytest.raises(ValueError, match="graph"):
        netmod.shuffle_null(graph, n_shuffles=2, n_clusters=4)
    with pytest.raises(ValueError, match="graph"):
        netmod.shuffled_weights(graph)


def test_ctrl_c_stops_a_long_run_quickly(mlp_dense_weights, small_graph):
    # A functional bound (seconds, not a benchmark): 1000 shuffles of the
    # dense 1818-node MLP run far longer than the 3 s allowed after the signal.
    # A runner that starts the suite in the background has SIGINT ignored
    # (inherited SIG_IGN); install Python's handler, as an interactive session has.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_long_run(mlp_dense_weights, small_graph)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_long_run(mlp_dense_weights, small_graph):
    before = netmod.shuffle_null(small_graph, n_shuffles=5, n_clusters=4, seed=9, progress=False)
    sent = []

    def interrupt():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.5, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            netmod.shuffle_null(mlp_dense_weights, n_shuffles=1000, shuffle="layer", n_clusters=12,
                                seed=0, n_threads=2, progress=False)
        stopped = time.monotonic()
    finally:
        timer.cancel()
    assert sent
    assert stopped - sent[0] < 3.0, stopped - sent[0]
    after = netmod.shuffle_null(small_graph, n_shuffles=5, n_clusters=4, seed=9, progress=False)
    np.testing.assert_array_equal(after.samples, before.samples)


def test_values_equal_up_to_round_off_are_ties_not_significance():
    from netmod.nulls import empirical_p, null_statistics

    base = 1.0064042722380637
    samples = [base * (1 + d) for d in (-1e-15, 2e-16, 0.0, 6e-16)]
    below = base * (1 - 3e-15)  # "more modular" than every sample only in its last bits
    stats = null_statistics(below, samples)
    assert not stats["significant"] and stats["percentile"] == 1.0 and np.isnan(stats["zscore"])
    assert empirical_p(below, samples, alternative="less") == 1.0
    assert empirical_p(base * (1 + 3e-15), samples, alternative="greater") == 1.0
    # A real difference still counts, however small the spread.
    stats = null_statistics(base - 1e-6, samples)
    assert stats["significant"] and stats["percentile"] == 0.2


def test_a_null_whose_shuffles_keep_the_partition_is_not_significant(cnn_models):
    torch = pytest.importorskip("torch")
    # With k=4 this VGG's conv graph is cut into runs of whole layers, whose n-cut a layer shuffle
    # (every block's total kept) leaves unchanged but for round-off.
    torch.manual_seed(1)
    model = cnn_models.vgg16_cifar(width=0.125).eval()
    g = netmod.from_torch(model, example_input=torch.zeros(1, 3, 32, 32), include="conv", kernel_norm="induced-l1")
    null = netmod.shuffle_null(g, n_shuffles=6, n_clusters=4, seed=3, progress=False)
    assert np.allclose(null.samples, null.observed, rtol=1e-12, atol=0)
    assert not null.significant and null.percentile == 1.0 and np.isnan(null.zscore)
