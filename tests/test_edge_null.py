"""shuffle_null(shuffle="edges"): the upper-triangle permutation null of any graph (the activation-graph null)."""

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.stats

import netmod
from netmod import _core
from netmod.graphs import as_native
from netmod.nulls import edge_replicate
from netmod.synthetic import glorot_weights


def dense_graph(n=40, seed=0, dead=(5,), missing=0.3):
    """Symmetric weighted graph with some zero entries and zero-degree nodes."""
    rng = np.random.default_rng(seed)
    a = rng.random((n, n)) * (rng.random((n, n)) > missing)
    a = np.triu(a, 1)
    a = a + a.T
    for d in dead:
        a[d, :] = a[:, d] = 0
    return a


def triangle(a):
    keep = a.sum(axis=1) > 0
    b = a[np.ix_(keep, keep)]
    return keep, b[np.triu_indices(b.shape[0], 1)]


def replicate_matrix(a, seed, i):
    r = edge_replicate(a, seed, i)
    return sp.csr_matrix((r.data, r.indices, r.indptr), shape=(r.n_nodes,) * 2).toarray()


def test_replicate_permutes_the_upper_triangle_of_the_live_nodes():
    a = dense_graph()
    keep, values = triangle(a)
    csr = as_native(a)
    kept, original, shuffled = _core.edge_shuffled(csr.indptr, csr.indices, csr.data, seed=3, index=7)
    assert np.array_equal(kept, np.flatnonzero(keep))
    np.testing.assert_array_equal(original, values)
    np.testing.assert_array_equal(np.sort(shuffled), np.sort(values))  # zeros included
    assert not np.array_equal(shuffled, values)
    m = replicate_matrix(a, 3, 7)
    assert m.shape == (keep.sum(),) * 2 and np.array_equal(m, m.T) and not np.diag(m).any()
    np.testing.assert_array_equal(m[np.triu_indices(m.shape[0], 1)], shuffled)
    # A pure function of (seed, index).
    np.testing.assert_array_equal(replicate_matrix(a, 3, 7), m)
    assert not np.array_equal(replicate_matrix(a, 3, 8), m)


def test_every_value_is_equally_likely_at_a_position():
    values = np.arange(1.0, 11.0)  # a 5-node graph has 10 upper-triangle pairs
    a = np.zeros((5, 5))
    a[np.triu_indices(5, 1)] = values
    a = a + a.T
    csr = as_native(a)
    first = [_core.edge_shuffled(csr.indptr, csr.indices, csr.data, seed=1, index=i)[2][0] for i in range(3000)]
    counts = np.bincount(np.asarray(first, dtype=int), minlength=11)[1:]
    assert scipy.stats.chisquare(counts).pvalue > 1e-4


def test_samples_are_the_spectral_ncuts_of_the_replicates():
    a = dense_graph()
    null = netmod.shuffle_null(a, shuffle="edges", n_shuffles=6, n_clusters=4, seed=2, progress=False)
    assert null.shuffle == "edges" and null.samples.shape == (6,)
    assert null.observed == netmod.spectral_clustering(a, n_clusters=4, seed=2).ncut
    for i in range(6):
        ref = netmod.spectral_clustering(replicate_matrix(a, 2, i), n_clusters=4, seed=netmod.replicate_seed(2, i))
        assert null.samples[i] == ref.ncut
    # A shuffled complete graph is far less modular than a planted one.
    assert null.samples.min() > 0


def test_planted_modules_are_significant_against_the_edges_null():
    rng = np.random.default_rng(0)
    lab = np.repeat(np.arange(4), 15)
    a = np.where(lab[:, None] == lab[None, :], 0.8, 0.05) * rng.uniform(0.5, 1.5, (60, 60))
    a = np.triu(a, 1)
    a = a + a.T
    null = netmod.shuffle_null(a, shuffle="edges", n_shuffles=20, n_clusters=4, progress=False)
    assert null.significant and null.zscore < -10


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_samples_do_not_depend_on_threads_or_executors(threads):
    a = dense_graph(seed=1)
    ref = netmod.shuffle_null(a, shuffle="edges", n_shuffles=7, n_clusters=3, n_threads=1, progress=False)
    got = netmod.shuffle_null(a, shuffle="edges", n_shuffles=7, n_clusters=3, n_threads=threads, progress=False)
    np.testing.assert_array_equal(got.samples, ref.samples)
    with ThreadPoolExecutor(threads) as ex:
        got = netmod.shuffle_null(a, shuffle="edges", n_shuffles=7, n_clusters=3, executor=ex, chunk_size=threads,
                                  progress=False)
    np.testing.assert_array_equal(got.samples, ref.samples)
    assert got.observed == ref.observed


def test_process_pool_executor():
    a = dense_graph(seed=2)
    ref = netmod.shuffle_null(a, shuffle="edges", n_shuffles=4, n_clusters=3, progress=False)
    with ProcessPoolExecutor(2) as ex:
        got = netmod.shuffle_null(a, shuffle="edges", n_shuffles=4, n_clusters=3, executor=ex, progress=False)
    np.testing.assert_array_equal(got.samples, ref.samples)


def test_graph_forms_give_the_same_null():
    a = dense_graph(seed=3)
    ref = netmod.shuffle_null(a, shuffle="edges", n_shuffles=3, n_clusters=3, progress=False).samples
    for form in (sp.csr_matrix(a), sp.coo_array(a), netmod.to_igraph(sp.csr_matrix(a))):
        got = netmod.shuffle_null(form, shuffle="edges", n_shuffles=3, n_clusters=3, progress=False).samples
        np.testing.assert_array_equal(got, ref)


def test_layered_graph_is_permuted_over_all_its_node_pairs():
    w = glorot_weights([8, 6, 4], seed=0)
    adjacency = netmod.to_igraph(netmod.from_layers(w)).get_adjacency_sparse(attribute="weight").toarray()
    got = netmod.shuffle_null(w, shuffle="edges", n_shuffles=3, n_clusters=3, progress=False)
    ref = netmod.shuffle_null(adjacency, shuffle="edges", n_shuffles=3, n_clusters=3, progress=False)
    np.testing.assert_array_equal(got.samples, ref.samples)


def test_python_methods_use_the_same_replicates():
    a = dense_graph(seed=4)
    null = netmod.shuffle_null(a, shuffle="edges", method="leiden", statistic="modularity", n_shuffles=3,
                               progress=False)
    for i in range(3):
        m = replicate_matrix(a, 0, i)
        p = netmod.leiden(m, objective="modularity", seed=netmod.replicate_seed(0, i))
        assert null.samples[i] == pytest.approx(netmod.modularity(m, p.labels), abs=1e-12)


def test_shuffled_weights_refuses_the_edges_scheme():
    with pytest.raises(ValueError, match="shuffle"):
        netmod.shuffled_weights(glorot_weights([4, 3], seed=0), shuffle="edges")


def test_too_many_clusters_for_the_live_nodes():
    a = dense_graph(n=6, dead=(0, 1, 2))
    with pytest.raises(ValueError, match="n_clusters"):
        netmod.shuffle_null(a, shuffle="edges", n_shuffles=2, n_clusters=5, progress=False)
