"""Nulls of other statistics and clusterings (Leiden/Louvain, modularity), on the kernel's shuffles."""

import json

import numpy as np
import pytest

import netmod
from netmod import nulls
from netmod.synthetic import clusterable_weights, glorot_weights, prune_by_magnitude

SIZES = [60, 40, 40, 40, 10]


@pytest.fixture(scope="module")
def planted():
    return prune_by_magnitude(clusterable_weights(SIZES, n_modules=4, seed=1), 0.8)


def test_python_path_reproduces_native_spectral_samples(planted):
    native = netmod.shuffle_null(planted, n_shuffles=6, n_clusters=4, seed=3, progress=False)
    layered = netmod.graphs.as_layered(planted)
    observed, samples = nulls._python_null(
        layered, n_shuffles=6, shuffle="layer", n_clusters=4, seed=3, n_init=10, tol=1e-8, threads=1,
        progress=False, statistic="ncut", method="spectral",
    )
    np.testing.assert_array_equal(native.samples, samples)
    assert native.observed == observed


@pytest.mark.parametrize("clustering", ["leiden", "louvain"])
def test_modularity_samples_are_the_documented_replicates(planted, clustering):
    null = netmod.shuffle_null(planted, n_shuffles=5, shuffle="nonzero", seed=2, statistic="modularity",
                               method=clustering, progress=False)
    fn = netmod.leiden if clustering == "leiden" else netmod.louvain
    for i in (0, 4):
        g = netmod.from_layers(netmod.shuffled_weights(planted, shuffle="nonzero", seed=2, index=i))
        p = fn(g, seed=netmod.replicate_seed(2, i))
        assert null.samples[i] == netmod.modularity(g, p.labels)
    assert null.statistic == "modularity" and null.method == clustering
    data = json.loads(json.dumps(null.to_dict()))
    assert data["statistic"] == "modularity" and data["method"] == clustering


def test_modularity_direction_planted_is_above_its_shuffles(planted):
    null = netmod.shuffle_null(planted, n_shuffles=10, statistic="modularity", method="leiden", progress=False)
    assert null.observed > null.samples.max()
    assert null.significant and null.percentile == pytest.approx(1 / 11)
    assert null.zscore > 3


def test_statistics_direction_for_modularity():
    s = netmod.null_statistics(0.5, [0.1, 0.5, 0.7, 0.2], higher_is_modular=True)
    assert s["percentile"] == pytest.approx((2 + 1) / 5)  # the tie at 0.5 counts against
    assert not s["significant"]
    s = netmod.null_statistics(0.9, [0.1, 0.5, 0.7, 0.2], higher_is_modular=True)
    assert s["significant"] and s["percentile"] == pytest.approx(1 / 5)


def test_random_network_not_significant_for_leiden_modularity_under_nonzero():
    w = glorot_weights(SIZES, seed=4)
    null = netmod.shuffle_null(w, n_shuffles=12, shuffle="nonzero", statistic="modularity",
                               method="louvain", progress=False)
    assert abs(null.zscore) < 4
    assert null.percentile > 1 / 13


@pytest.mark.parametrize("kw,match", [({"statistic": "q"}, "statistic"), ({"method": "kmeans"}, "method")])
def test_bad_statistic_or_clustering(planted, kw, match):
    with pytest.raises(ValueError, match=match):
        netmod.shuffle_null(planted, n_shuffles=2, progress=False, **kw)
