"""netmod.ncut against the published golden values and the numpy oracle."""

import igraph as ig
import numpy as np
import pytest
import scipy.sparse
from scipy.sparse.csgraph import connected_components

import netmod

MATRIX_KINDS = ("dense", "csr", "csc", "coo", "csr_array", "igraph")

GOLDEN_SMALL = (
    [np.array([[12.0, -1.3], [0.0, 7.4]]), np.array([[-8.9, 0.15], [0.23, -5.7]])],
    np.array([0, 1, 0, 1, 0, 1]),
    0.09890,
)
GOLDEN_LARGE = (
    [
        np.array([[5.4, 0.03, 0, 0], [0, 0, -0.4, 5.5], [-12, 0, 4.8, -0.07], [0, 6.3, 0.001, 7]]),
        np.array([[-13.3, -0.4, 6, 0.1], [0.7, -8, 0, -5.8], [7.4, 0.3, -15, 0], [0, 0, 0, -12.3]]),
    ],
    np.array([1, 0] * 6),
    0.03721,
)


def random_partition(rng, n_nodes, kept, n_clusters):
    labels = rng.integers(0, n_clusters, size=n_nodes)
    labels[~kept] = -1
    return labels


@pytest.mark.parametrize("golden", [GOLDEN_SMALL, GOLDEN_LARGE], ids=["6-node", "12-node"])
def test_golden_values_from_layers(golden):
    weights, labels, expected = golden
    g = netmod.from_layers(weights)
    assert netmod.ncut(g, labels) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("golden", [GOLDEN_SMALL, GOLDEN_LARGE], ids=["6-node", "12-node"])
@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_golden_values_adjacency(golden, kind, layered_adjacency, ncut_reference, as_input):
    weights, labels, expected = golden
    A = layered_adjacency(weights)
    assert A.shape == (labels.size, labels.size)
    assert ncut_reference(A, labels) == pytest.approx(expected, abs=1e-4)
    assert netmod.ncut(as_input(A, kind), labels) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("kind", MATRIX_KINDS)
@pytest.mark.parametrize("seed", range(4))
def test_ncut_matches_reference(kind, seed, random_weighted_graph, ncut_reference, as_input):
    rng = np.random.default_rng(100 + seed)
    A = random_weighted_graph(seed)
    kept = A.sum(axis=1) > 0
    assert not kept.all()
    graph = as_input(A, kind)
    for n_clusters in (2, 3, 7):
        labels = random_partition(rng, A.shape[0], kept, n_clusters)
        expected = ncut_reference(A, labels)
        assert netmod.ncut(graph, labels) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_ncut_layered_graph_matches_reference(seed, random_layer_weights, layered_adjacency,
                                              ncut_reference):
    rng = np.random.default_rng(200 + seed)
    weights = random_layer_weights(seed)
    A = layered_adjacency(weights)
    kept = A.sum(axis=1) > 0
    assert not kept.all()
    assert connected_components(scipy.sparse.csr_matrix(A[np.ix_(kept, kept)]))[0] >= 2
    g = netmod.from_layers(weights)
    for n_clusters in (2, 4, 6):
        labels = random_partition(rng, A.shape[0], kept, n_clusters)
        assert netmod.ncut(g, labels) == pytest.approx(ncut_reference(A, labels), rel=1e-12)


def test_ncut_layered_graph_after_edit_matches_reference(random_layer_weights, layered_adjacency,
                                                         ncut_reference):
    # Deleting an edge makes the stored layer structure stale: the edited graph counts.
    rng = np.random.default_rng(7)
    weights = random_layer_weights(3)
    g = netmod.from_layers(weights)
    A = layered_adjacency(weights)
    u, v = g.es[0].tuple
    g.delete_edges([0])
    A[u, v] = A[v, u] = 0.0
    kept = A.sum(axis=1) > 0
    labels = random_partition(rng, A.shape[0], kept, 3)
    assert netmod.ncut(g, labels) == pytest.approx(ncut_reference(A, labels), rel=1e-12)


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_ncut_relabelled_partition(kind, random_weighted_graph, ncut_reference, as_input):
    rng = np.random.default_rng(3)
    A = random_weighted_graph(11)
    kept = A.sum(axis=1) > 0
    graph = as_input(A, kind)
    labels = random_partition(rng, A.shape[0], kept, 4)
    base = netmod.ncut(graph, labels)
    # Non-contiguous, permuted cluster ids name the same partition.
    mapping = np.array([97, 3, 40, 12])
    relabelled = np.where(labels >= 0, mapping[np.maximum(labels, 0)], -1)
    assert netmod.ncut(graph, relabelled) == pytest.approx(base, rel=1e-12)
    assert netmod.ncut(graph, relabelled) == pytest.approx(ncut_reference(A, relabelled), rel=1e-12)


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_ncut_permuted_nodes(kind, random_weighted_graph, ncut_reference, as_input):
    rng = np.random.default_rng(5)
    A = random_weighted_graph(12)
    kept = A.sum(axis=1) > 0
    labels = random_partition(rng, A.shape[0], kept, 5)
    order = rng.permutation(A.shape[0])
    permuted = A[np.ix_(order, order)]
    value = netmod.ncut(as_input(permuted, kind), labels[order])
    assert value == pytest.approx(netmod.ncut(as_input(A, kind), labels), rel=1e-12)
    assert value == pytest.approx(ncut_reference(A, labels), rel=1e-12)


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_ncut_shuffled_partition_matches_reference(kind, random_weighted_graph, ncut_reference,
                                                   as_input):
    # Moving labels between live nodes gives a different partition; each must match the oracle.
    rng = np.random.default_rng(9)
    A = random_weighted_graph(13)
    kept = A.sum(axis=1) > 0
    graph = as_input(A, kind)
    labels = random_partition(rng, A.shape[0], kept, 4)
    values = set()
    for _ in range(5):
        shuffled = labels.copy()
        shuffled[kept] = rng.permutation(labels[kept])
        value = netmod.ncut(graph, shuffled)
        assert value == pytest.approx(ncut_reference(A, shuffled), rel=1e-12)
        values.add(round(value, 12))
    assert len(values) > 1


@pytest.mark.parametrize("kind", MATRIX_KINDS)
@pytest.mark.parametrize("seed", range(3))
def test_ncut_bounds(kind, seed, random_weighted_graph, as_input):
    rng = np.random.default_rng(300 + seed)
    A = random_weighted_graph(20 + seed)
    kept = A.sum(axis=1) > 0
    graph = as_input(A, kind)
    for n_clusters in (2, 5, 10):
        labels = random_partition(rng, A.shape[0], kept, n_clusters)
        k = np.unique(labels[labels >= 0]).size
        value = netmod.ncut(graph, labels)
        assert 0.0 <= value <= k


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_ncut_of_connected_components_is_zero(kind, random_weighted_graph, as_input):
    A = random_weighted_graph(4)
    kept = A.sum(axis=1) > 0
    _, component = connected_components(scipy.sparse.csr_matrix(A), directed=False)
    labels = np.where(kept, component, -1)
    assert np.unique(labels[kept]).size >= 3
    assert netmod.ncut(as_input(A, kind), labels) == pytest.approx(0.0, abs=1e-12)


def test_ncut_singleton_clusters(random_weighted_graph, ncut_reference):
    # Every live node alone: each cluster cuts all of its volume, so ncut = #live nodes.
    A = random_weighted_graph(6)
    kept = A.sum(axis=1) > 0
    labels = np.where(kept, np.arange(A.shape[0]), -1)
    assert netmod.ncut(A, labels) == pytest.approx(kept.sum(), rel=1e-12)
    assert ncut_reference(A, labels) == pytest.approx(kept.sum(), rel=1e-12)


def test_ncut_zero_volume_cluster_contributes_zero(random_weighted_graph, ncut_reference):
    rng = np.random.default_rng(8)
    A = random_weighted_graph(14)
    kept = A.sum(axis=1) > 0
    labels = random_partition(rng, A.shape[0], kept, 3)
    base = netmod.ncut(A, labels)
    isolated_alone = labels.copy()
    isolated_alone[~kept] = 50
    assert netmod.ncut(A, isolated_alone) == pytest.approx(base, rel=1e-12)
    isolated_joined = labels.copy()
    isolated_joined[~kept] = 1
    assert netmod.ncut(A, isolated_joined) == pytest.approx(base, rel=1e-12)
    assert ncut_reference(A, isolated_alone) == pytest.approx(base, rel=1e-12)


def test_ncut_igraph_unweighted_and_multi_edges(ncut_reference):
    # No "weight" attribute means weight 1; parallel edges add up.
    edges = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 5), (5, 3), (0, 1), (3, 4)]
    g = ig.Graph(n=7, edges=edges)
    A = np.zeros((7, 7))
    for u, v in edges:
        A[u, v] += 1.0
        A[v, u] += 1.0
    labels = np.array([0, 0, 0, 1, 1, 1, -1])
    expected = ncut_reference(A, labels)
    assert expected == pytest.approx(1 / 9 + 1 / 9)
    assert netmod.ncut(g, labels) == pytest.approx(expected, rel=1e-12)
    g.es["weight"] = [2.0] * g.ecount()
    assert netmod.ncut(g, labels) == pytest.approx(expected, rel=1e-12)


def test_ncut_sparse_with_explicit_zeros(random_weighted_graph, ncut_reference):
    rng = np.random.default_rng(10)
    A = random_weighted_graph(15)
    kept = A.sum(axis=1) > 0
    labels = random_partition(rng, A.shape[0], kept, 3)
    rows, cols = np.nonzero(A)
    n = A.shape[0]
    # Stored zeros on the diagonal and between isolated nodes are not edges.
    extra = np.arange(n)
    S = scipy.sparse.csr_matrix(
        (np.concatenate([A[rows, cols], np.zeros(n)]),
         (np.concatenate([rows, extra]), np.concatenate([cols, extra]))),
        shape=A.shape,
    )
    assert S.nnz == rows.size + n
    assert netmod.ncut(S, labels) == pytest.approx(ncut_reference(A, labels), rel=1e-12)


def test_ncut_float32_input_matches_float64(random_weighted_graph):
    rng = np.random.default_rng(12)
    A = random_weighted_graph(16).astype(np.float32)
    kept = A.sum(axis=1) > 0
    labels = random_partition(rng, A.shape[0], kept, 3)
    expected = netmod.ncut(A.astype(np.float64), labels)
    assert netmod.ncut(scipy.sparse.csr_matrix(A), labels) == pytest.approx(expected, rel=1e-6)


def test_ncut_accepts_list_and_int32_labels(random_weighted_graph, ncut_reference):
    rng = np.random.default_rng(13)
    A = random_weighted_graph(17)
    kept = A.sum(axis=1) > 0
    labels = random_partition(rng, A.shape[0], kept, 3)
    expected = ncut_reference(A, labels)
    assert netmod.ncut(A, labels.astype(np.int32)) == pytest.approx(expected, rel=1e-12)
    assert netmod.ncut(A, labels.tolist()) == pytest.approx(expected, rel=1e-12)


def test_ncut_labels_wrong_length(random_weighted_graph):
    A = random_weighted_graph(1)
    labels = np.zeros(A.shape[0] + 1, dtype=np.int64)
    with pytest.raises(ValueError, match="labels"):
        netmod.ncut(A, labels)
    with pytest.raises(ValueError, match="labels"):
        netmod.ncut(A, labels[:-2])


def test_ncut_labels_minus_one_on_live_node(random_weighted_graph):
    A = random_weighted_graph(1)
    kept = A.sum(axis=1) > 0
    labels = np.where(kept, 0, -1)
    labels[np.flatnonzero(kept)[0]] = -1
    with pytest.raises(ValueError, match="labels"):
        netmod.ncut(A, labels)


def test_ncut_labels_below_minus_one(random_weighted_graph):
    A = random_weighted_graph(1)
    kept = A.sum(axis=1) > 0
    labels = np.where(kept, 0, -2)
    with pytest.raises(ValueError, match="labels"):
        netmod.ncut(A, labels)


def test_ncut_labels_not_integer(random_weighted_graph):
    A = random_weighted_graph(1)
    kept = A.sum(axis=1) > 0
    labels = np.where(kept, 0.5, -1.0)
    with pytest.raises(ValueError, match="labels"):
        netmod.ncut(A, labels)
