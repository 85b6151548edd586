"""netmod.spectral_embedding / spectral_clustering against LAPACK, sklearn and planted modules."""

import json
import warnings

import igraph as ig
import numpy as np
import pytest
import scipy.linalg
import scipy.sparse
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import SpectralClustering
from sklearn.metrics import adjusted_rand_score

import netmod

MATRIX_KINDS = ("dense", "csr", "csc", "coo", "csr_array", "igraph")
# Davis-Kahan: residuals of ~tol = 1e-8 tilt an invariant subspace separated by an
# eigengap delta by about sqrt(k) * 1e-8 / delta, under SUBSPACE_SCALE / delta.
# Eigenvalues closer than SUBSPACE_GAP are checked through the residuals only.
SUBSPACE_GAP = 0.01
SUBSPACE_SCALE = 1e-7
EIGENVALUE_ATOL = 1e-8
RESIDUAL_ATOL = 1e-6


def cycle(n):
    A = np.zeros((n, n))
    i = np.arange(n)
    A[i, (i + 1) % n] = A[(i + 1) % n, i] = 1.0
    return A


def complete(n):
    return np.ones((n, n)) - np.eye(n)


def star(n_leaves, n_isolated=0):
    n = n_leaves + 1 + n_isolated
    A = np.zeros((n, n))
    A[0, 1:n_leaves + 1] = A[1:n_leaves + 1, 0] = np.linspace(0.5, 2.0, n_leaves)
    return A


def path(n):
    A = np.zeros((n, n))
    i = np.arange(n - 1)
    A[i, i + 1] = A[i + 1, i] = 1.0 + 0.1 * i
    return A


def permuted(A, seed):
    order = np.random.default_rng(seed).permutation(A.shape[0])
    return A[np.ix_(order, order)]


def small_graphs(random_weighted_graph):
    twin = random_weighted_graph(33, component_sizes=(16,), n_isolated=0)
    return {
        "random-connected": (random_weighted_graph(31, component_sizes=(40,), n_isolated=0), 6),
        "disconnected-isolated": (random_weighted_graph(32, component_sizes=(15, 12, 10, 8),
                                                        n_isolated=4), 7),
        "six-components-k6": (random_weighted_graph(34, component_sizes=(7, 6, 6, 5, 5, 4),
                                                    n_isolated=2), 6),
        "cycle-20-k5": (cycle(20), 5),
        "cycle-20-k4-split-pair": (cycle(20), 4),
        "complete-8": (complete(8), 4),
        "twin-components": (permuted(scipy.linalg.block_diag(twin, twin), 35), 6),
        "star-isolated": (star(10, n_isolated=2), 3),
        "path-15": (path(15), 4),
    }


SMALL_GRAPH_IDS = ("random-connected", "disconnected-isolated", "six-components-k6", "cycle-20-k5",
                   "cycle-20-k4-split-pair", "complete-8", "twin-components", "star-isolated",
                   "path-15")


def check_embedding(embedding, A, k, normalized_laplacian_eigh, normalized_laplacian):
    """Eigenvalues to EIGENVALUE_ATOL; orthonormal Ritz vectors with small residuals,
    spanning the reference subspace up to the last eigengap >= SUBSPACE_GAP.

    Returns the number of leading vectors whose span was compared.
    """
    ref = normalized_laplacian_eigh(A)
    kept = ref.kept
    eigenvalues = np.asarray(embedding.eigenvalues)
    vectors = np.asarray(embedding.vectors)
    assert eigenvalues.shape == (k,)
    assert vectors.shape == (A.shape[0], k)
    np.testing.assert_array_equal(np.asarray(embedding.kept), kept)
    np.testing.assert_allclose(eigenvalues, ref.eigenvalues[:k], rtol=0, atol=EIGENVALUE_ATOL)
    assert np.all(vectors[~kept] == 0.0)
    V = vectors[kept]
    np.testing.assert_allclose(V.T @ V, np.eye(k), rtol=0, atol=1e-8)
    L, _ = normalized_laplacian(A)
    residual = np.linalg.norm(L @ V - V * eigenvalues[None, :], axis=0)
    assert residual.max() <= RESIDUAL_ATOL
    w = ref.eigenvalues
    boundaries = [j for j in range(1, k + 1) if j == w.size or w[j] - w[j - 1] >= SUBSPACE_GAP]
    assert boundaries, "test graph needs an eigengap within the first k eigenvalues"
    j = max(boundaries)
    delta = w[j] - w[j - 1] if j < w.size else 1.0
    U = ref.vectors[kept][:, :j]
    projector_gap = V[:, :j] @ V[:, :j].T - U @ U.T
    assert np.linalg.norm(projector_gap, 2) <= SUBSPACE_SCALE / delta
    return j


@pytest.mark.parametrize("name", SMALL_GRAPH_IDS)
def test_embedding_matches_dense_eigh(name, random_weighted_graph, normalized_laplacian_eigh,
                                      normalized_laplacian):
    A, k = small_graphs(random_weighted_graph)[name]
    embedding = netmod.spectral_embedding(A, n_components=k, seed=0)
    j = check_embedding(embedding, A, k, normalized_laplacian_eigh, normalized_laplacian)
    # Cases whose kth eigenvalue is tied with the next compare a shorter leading span.
    expected_span = {"cycle-20-k4-split-pair": 3, "complete-8": 1, "star-isolated": 1}
    assert j == expected_span.get(name, k)


def test_small_graph_spectra_have_the_intended_multiplicities(random_weighted_graph,
                                                              normalized_laplacian_eigh):
    graphs = small_graphs(random_weighted_graph)
    w = normalized_laplacian_eigh(graphs["disconnected-isolated"][0]).eigenvalues
    assert np.sum(np.abs(w) < 1e-10) == 4
    w = normalized_laplacian_eigh(graphs["six-components-k6"][0]).eigenvalues
    assert np.sum(np.abs(w) < 1e-10) == 6
    w = normalized_laplacian_eigh(graphs["twin-components"][0]).eigenvalues
    np.testing.assert_allclose(w[0::2], w[1::2], atol=1e-10)
    w = normalized_laplacian_eigh(graphs["complete-8"][0]).eigenvalues
    np.testing.assert_allclose(w[1:], 8 / 7, atol=1e-12)
    w = normalized_laplacian_eigh(graphs["star-isolated"][0]).eigenvalues
    np.testing.assert_allclose(w, [0.0] + [1.0] * 9 + [2.0], atol=1e-12)
    w = normalized_laplacian_eigh(cycle(20)).eigenvalues
    np.testing.assert_allclose(w, np.sort(1 - np.cos(2 * np.pi * np.arange(20) / 20)), atol=1e-12)


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_embedding_every_input_kind(kind, random_weighted_graph, as_input,
                                    normalized_laplacian_eigh, normalized_laplacian):
    A = random_weighted_graph(36, component_sizes=(14, 11, 9), n_isolated=3)
    embedding = netmod.spectral_embedding(as_input(A, kind), n_components=5, seed=1)
    assert check_embedding(embedding, A, 5, normalized_laplacian_eigh, normalized_laplacian) == 5


@pytest.mark.parametrize("seed", range(3))
def test_embedding_layered_graph(seed, random_layer_weights, layered_adjacency,
                                 normalized_laplacian_eigh, normalized_laplacian):
    # Bipartite, dead units, two components: the layered operator path.
    weights = random_layer_weights(seed, layer_sizes=(20, 30, 25, 30, 12), density=0.35)
    A = layered_adjacency(weights)
    g = netmod.from_layers(weights)
    embedding = netmod.spectral_embedding(g, n_components=3, seed=0)
    assert check_embedding(embedding, A, 3, normalized_laplacian_eigh, normalized_laplacian) == 3


@pytest.mark.parametrize("name", ["dense", "pruned"])
def test_embedding_mlp_eigenvalues(name, mlp_graphs, mlp_spectrum):
    embedding = netmod.spectral_embedding(mlp_graphs[name], n_components=12, seed=0)
    np.testing.assert_allclose(np.asarray(embedding.eigenvalues),
                               mlp_spectrum[name].eigenvalues[:12], rtol=0, atol=EIGENVALUE_ATOL)


@pytest.fixture(scope="module")
def mlp_graphs(mlp_dense_weights, mlp_pruned_weights):
    return {
        "dense": netmod.from_layers(mlp_dense_weights),
        "pruned": netmod.from_layers(mlp_pruned_weights),
    }


@pytest.mark.parametrize("seed", range(3))
def test_clustering_recovers_layered_planted_modules(seed, planted_layered_weights):
    planted = planted_layered_weights(seed)
    g = netmod.from_layers(planted.weights)
    partition = netmod.spectral_clustering(g, n_clusters=4, seed=seed)
    assert adjusted_rand_score(planted.modules, partition.labels) >= 0.95


@pytest.mark.parametrize("kind", ["dense", "csr", "igraph"])
@pytest.mark.parametrize("seed", range(2))
def test_clustering_recovers_sbm_blocks(kind, seed, sbm_adjacency, as_input):
    A, blocks = sbm_adjacency(seed)
    partition = netmod.spectral_clustering(as_input(A, kind), n_clusters=4, seed=seed)
    assert adjusted_rand_score(blocks, partition.labels) >= 0.95


@pytest.mark.parametrize("kind", MATRIX_KINDS)
def test_clustering_separates_components(kind, random_weighted_graph, as_input, ncut_reference):
    # k equal to the number of components: zero eigenvalue of multiplicity k.
    A = random_weighted_graph(37, component_sizes=(15, 12, 9, 7), n_isolated=3, p_extra=0.5)
    kept = A.sum(axis=1) > 0
    _, component = connected_components(scipy.sparse.csr_matrix(A), directed=False)
    partition = netmod.spectral_clustering(as_input(A, kind), n_clusters=4, seed=0)
    assert adjusted_rand_score(component[kept], partition.labels[kept]) == pytest.approx(1.0)
    assert partition.ncut == pytest.approx(0.0, abs=1e-9)
    assert ncut_reference(A, partition.labels) == pytest.approx(0.0, abs=1e-9)


def test_partition_conventions(sbm_adjacency, ncut_reference, normalized_laplacian_eigh):
    A0, blocks = sbm_adjacency(5)
    n_isolated = 5
    n = A0.shape[0] + n_isolated
    A = np.zeros((n, n))
    A[:A0.shape[0], :A0.shape[0]] = A0
    A = permuted(A, 6)
    kept = A.sum(axis=1) > 0
    assert kept.sum() == A0.shape[0]
    k = 4
    partition = netmod.spectral_clustering(A, n_clusters=k, seed=3, n_init=4, tol=1e-9)
    labels = partition.labels
    assert isinstance(labels, np.ndarray)
    assert labels.dtype == np.int64
    assert labels.shape == (n,)
    assert not labels.flags.writeable
    np.testing.assert_array_equal(labels == -1, ~kept)
    assert set(np.unique(labels[kept])) == set(range(k))
    sizes = np.bincount(labels[kept])
    assert np.all(np.diff(sizes) <= 0)
    assert partition.n_clusters == k
    assert partition.method == "spectral"
    assert partition.seed == 3
    assert partition.n_init == 4
    assert partition.tol == 1e-9
    assert partition.ncut == pytest.approx(ncut_reference(A, labels), rel=1e-10)
    eigenvalues = np.asarray(partition.eigenvalues)
    assert not partition.eigenvalues.flags.writeable
    np.testing.assert_allclose(eigenvalues, normalized_laplacian_eigh(A).eigenvalues[:k],
                               rtol=0, atol=EIGENVALUE_ATOL)
    with pytest.raises((AttributeError, TypeError)):
        partition.n_clusters = 5
    record = json.loads(json.dumps(partition.to_dict()))
    assert record["n_clusters"] == k
    assert record["seed"] == 3
    assert record["labels"] == labels.tolist()
    assert record["ncut"] == pytest.approx(partition.ncut)


def test_ncut_without_labels_is_the_spectral_ncut(sbm_adjacency, ncut_reference):
    A, _ = sbm_adjacency(7)
    value = netmod.ncut(A, n_clusters=5, seed=2)
    partition = netmod.spectral_clustering(A, n_clusters=5, seed=2)
    assert value == partition.ncut
    assert value == pytest.approx(ncut_reference(A, partition.labels), rel=1e-10)


def test_ncut_of_mlp_defaults_to_k12(mlp_graphs, mlp_adjacency, ncut_reference):
    value = netmod.ncut(mlp_graphs["pruned"])
    partition = netmod.spectral_clustering(mlp_graphs["pruned"], n_clusters=12, seed=0)
    assert partition.n_clusters == 12
    assert value == partition.ncut
    assert value == pytest.approx(ncut_reference(mlp_adjacency["pruned"], partition.labels),
                                  rel=1e-10)


def test_n_clusters_equal_to_live_nodes(ncut_reference):
    A = np.zeros((8, 8))
    A[:6, :6] = path(6)
    A[0, 5] = A[5, 0] = 0.7
    partition = netmod.spectral_clustering(A, n_clusters=6, seed=0)
    assert sorted(partition.labels[:6].tolist()) == list(range(6))
    assert partition.labels[6:].tolist() == [-1, -1]
    assert partition.ncut == pytest.approx(6.0, rel=1e-12)


def sklearn_ncut(A_sparse, A_dense, seed, ncut_reference):
    kept = np.asarray(A_sparse.sum(axis=1)).ravel() > 0
    model = SpectralClustering(n_clusters=12, affinity="precomputed", eigen_solver="arpack",
                               assign_labels="kmeans", random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        labels = model.fit_predict(A_sparse[kept][:, kept])
    return ncut_reference(A_dense[np.ix_(kept, kept)], labels)


@pytest.mark.parametrize("name", ["dense", "pruned"])
def test_mlp_ncut_no_worse_than_sklearn(name, mlp_graphs, mlp_adjacency, ncut_reference,
                                        mlp_spectrum):
    A = mlp_adjacency[name]
    A_sparse = scipy.sparse.csr_matrix(A)
    ours, theirs = [], []
    for seed in range(5):
        partition = netmod.spectral_clustering(mlp_graphs[name], n_clusters=12, seed=seed)
        assert partition.ncut == pytest.approx(ncut_reference(A, partition.labels), rel=1e-10)
        np.testing.assert_allclose(np.asarray(partition.eigenvalues),
                                   mlp_spectrum[name].eigenvalues[:12], rtol=0,
                                   atol=EIGENVALUE_ATOL)
        ours.append(partition.ncut)
        theirs.append(sklearn_ncut(A_sparse, A, seed, ncut_reference))
    assert np.median(ours) <= 1.01 * np.median(theirs), (ours, theirs)


@pytest.mark.parametrize("name", ["dense", "pruned"])
def test_same_seed_same_labels(name, mlp_graphs):
    first = netmod.spectral_clustering(mlp_graphs[name], n_clusters=12, seed=11)
    second = netmod.spectral_clustering(mlp_graphs[name], n_clusters=12, seed=11)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert first.ncut == second.ncut


@pytest.mark.parametrize("name", ["dense", "pruned"])
def test_thread_count_does_not_change_labels(name, mlp_graphs):
    one = netmod.spectral_clustering(mlp_graphs[name], n_clusters=12, seed=4, n_threads=1)
    two = netmod.spectral_clustering(mlp_graphs[name], n_clusters=12, seed=4, n_threads=2)
    np.testing.assert_array_equal(one.labels, two.labels)
    assert one.ncut == two.ncut
    # Bit-identical, not merely close: the split of operator rows over threads
    # must not change any sum's order.
    np.testing.assert_array_equal(one.eigenvalues, two.eigenvalues)
    for t in (3, 4):
        many = netmod.spectral_clustering(mlp_graphs[name], n_clusters=12, seed=4, n_threads=t)
        np.testing.assert_array_equal(one.eigenvalues, many.eigenvalues)
        assert one.ncut == many.ncut
        np.testing.assert_array_equal(one.labels, many.labels)


def test_same_seed_same_labels_general_graph(sbm_adjacency):
    A, _ = sbm_adjacency(8)
    S = scipy.sparse.csr_matrix(A)
    runs = [netmod.spectral_clustering(S, n_clusters=6, seed=5, n_threads=t) for t in (1, 2, 2)]
    for run in runs[1:]:
        np.testing.assert_array_equal(runs[0].labels, run.labels)
        assert runs[0].ncut == run.ncut


def test_numpy_integer_parameters_accepted(sbm_adjacency):
    A, _ = sbm_adjacency(9)
    expected = netmod.spectral_clustering(A, n_clusters=4, seed=3, n_init=2, n_threads=1)
    got = netmod.spectral_clustering(A, n_clusters=np.int64(4), seed=np.int64(3),
                                     n_init=np.int32(2), n_threads=np.int64(1))
    np.testing.assert_array_equal(expected.labels, got.labels)


def two_triangles(n_isolated=0):
    n = 6 + n_isolated
    A = np.zeros((n, n))
    for u, v, w in [(0, 1, 1.0), (1, 2, 2.0), (0, 2, 1.5), (3, 4, 1.0), (4, 5, 0.5), (3, 5, 2.0),
                    (2, 3, 0.1)]:
        A[u, v] = A[v, u] = w
    return A


def call_spectral_clustering(graph, n_nodes):
    return netmod.spectral_clustering(graph, n_clusters=2)


def call_spectral_embedding(graph, n_nodes):
    return netmod.spectral_embedding(graph, n_components=2)


def call_ncut_labels(graph, n_nodes):
    return netmod.ncut(graph, np.zeros(n_nodes, dtype=np.int64))


def call_ncut_spectral(graph, n_nodes):
    return netmod.ncut(graph, n_clusters=2)


CALLERS = [call_spectral_clustering, call_spectral_embedding, call_ncut_labels, call_ncut_spectral]


def bad_matrix(rule):
    A = two_triangles()
    if rule == "non-square":
        return np.ones((6, 7))
    if rule == "negative":
        A[0, 1] = A[1, 0] = -1.0
    elif rule == "nan":
        A[0, 1] = A[1, 0] = np.nan
    elif rule == "inf":
        A[0, 1] = A[1, 0] = np.inf
    elif rule == "asymmetric":
        A[0, 1] = 3.0
    elif rule == "self-loop":
        A[2, 2] = 1.0
    return A


MATRIX_RULES = ["non-square", "negative", "nan", "inf", "asymmetric", "self-loop"]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("kind", ["dense", "csr", "csr_array"])
@pytest.mark.parametrize("rule", MATRIX_RULES)
def test_invalid_matrix_rejected(rule, kind, caller, as_input):
    A = bad_matrix(rule)
    graph = as_input(A, kind)
    with pytest.raises(ValueError, match="graph"):
        caller(graph, A.shape[0])


@pytest.mark.parametrize("caller", CALLERS)
def test_three_dimensional_array_rejected(caller):
    with pytest.raises(ValueError, match="graph"):
        caller(np.zeros((6, 6, 1)), 6)


@pytest.mark.parametrize("caller", CALLERS)
def test_directed_igraph_rejected(caller):
    g = ig.Graph(n=6, edges=[(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3), (2, 3)], directed=True)
    with pytest.raises(ValueError, match="graph"):
        caller(g, 6)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("rule", ["negative", "nan", "self-loop"])
def test_invalid_igraph_rejected(rule, caller):
    edges = [(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3), (2, 3)]
    weights = [1.0] * len(edges)
    if rule == "negative":
        weights[1] = -2.0
    elif rule == "nan":
        weights[1] = float("nan")
    elif rule == "self-loop":
        edges.append((4, 4))
        weights.append(1.0)
    g = ig.Graph(n=6, edges=edges, edge_attrs={"weight": weights})
    with pytest.raises(ValueError, match="graph"):
        caller(g, 6)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("graph", [object(), "graph", {"weights": [1.0]}],
                         ids=["object", "str", "dict"])
def test_unsupported_graph_type(graph, caller):
    with pytest.raises(TypeError, match="graph"):
        caller(graph, 6)


@pytest.mark.parametrize("n_clusters", [1, 0, -3])
def test_n_clusters_below_two(n_clusters):
    with pytest.raises(ValueError, match=f"n_clusters must be >= 2, got {n_clusters}"):
        netmod.spectral_clustering(two_triangles(), n_clusters=n_clusters)
    with pytest.raises(ValueError, match=f"n_clusters must be >= 2, got {n_clusters}"):
        netmod.ncut(two_triangles(), n_clusters=n_clusters)


def test_n_clusters_above_live_nodes():
    A = two_triangles(n_isolated=3)
    with pytest.raises(ValueError, match="n_clusters must be <="):
        netmod.spectral_clustering(A, n_clusters=7)
    with pytest.raises(ValueError, match="n_clusters must be <="):
        netmod.ncut(A, n_clusters=7)


@pytest.mark.parametrize("n_clusters", [2.5, "3", None])
def test_n_clusters_not_integer(n_clusters):
    with pytest.raises(TypeError, match="n_clusters"):
        netmod.spectral_clustering(two_triangles(), n_clusters=n_clusters)


@pytest.mark.parametrize("n_init", [0, -1])
def test_bad_n_init(n_init):
    with pytest.raises(ValueError, match="n_init"):
        netmod.spectral_clustering(two_triangles(), n_clusters=2, n_init=n_init)


@pytest.mark.parametrize("tol", [0.0, -1e-6, float("nan"), float("inf")])
def test_bad_tol(tol):
    with pytest.raises(ValueError, match="tol"):
        netmod.spectral_clustering(two_triangles(), n_clusters=2, tol=tol)
    with pytest.raises(ValueError, match="tol"):
        netmod.spectral_embedding(two_triangles(), n_components=2, tol=tol)


@pytest.mark.parametrize("n_threads", [0, -2])
def test_bad_n_threads(n_threads):
    with pytest.raises(ValueError, match="n_threads"):
        netmod.spectral_clustering(two_triangles(), n_clusters=2, n_threads=n_threads)


def test_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        netmod.spectral_clustering(two_triangles(), n_clusters=2, seed=-1)
    with pytest.raises(ValueError, match="seed"):
        netmod.ncut(two_triangles(), n_clusters=2, seed=-1)


@pytest.mark.parametrize("parameter", ["seed", "n_init"])
def test_parameter_of_wrong_kind(parameter):
    with pytest.raises(TypeError, match=parameter):
        netmod.spectral_clustering(two_triangles(), n_clusters=2, **{parameter: "1"})
