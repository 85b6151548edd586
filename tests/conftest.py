"""Shared fixtures and the numpy/scipy oracles for netmod's native routines.

Everything here is deliberately slow and literal: dense matrices, explicit
masks, LAPACK ``eigh``. The tests compare the C++ kernel against these twins,
so nothing in this file imports netmod.

The oracles and generators are plain functions; test modules reach them
through the session fixtures of the same name (``--import-mode=importlib``
does not put ``tests/`` on ``sys.path``, so ``from conftest import ...`` would
not work).
"""

from collections import namedtuple

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse

MLP_LAYER_SIZES = (784, 256, 256, 256, 256, 10)

SpectrumReference = namedtuple("SpectrumReference", ["eigenvalues", "vectors", "kept"])
PlantedGraph = namedtuple("PlantedGraph", ["weights", "modules"])


def ncut_reference(A_dense, labels):
    """n-cut of a labelling: sum over clusters of cut(C, V \\ C) / vol(C).

    Label -1 marks removed nodes and forms no cluster; a cluster of zero
    volume contributes 0.
    """
    A = np.asarray(A_dense, dtype=np.float64)
    labels = np.asarray(labels)
    degree = A.sum(axis=1)
    total = 0.0
    for c in np.unique(labels[labels != -1]):
        inside = labels == c
        vol = degree[inside].sum()
        if vol == 0.0:
            continue
        cut = A[np.ix_(inside, ~inside)].sum()
        total += cut / vol
    return float(total)


def normalized_laplacian_eigh(A, n_smallest=None):
    """Spectrum of I - D^-1/2 A D^-1/2 after removing zero-degree nodes (dense eigh).

    Returns ascending eigenvalues (m,), eigenvectors lifted back to all nodes
    (n_nodes, m) with zero rows for removed nodes, and the kept mask; m is the
    number of kept nodes, or ``n_smallest`` (LAPACK's subset driver, still a
    dense direct solve) when given.
    """
    A = A.toarray() if scipy.sparse.issparse(A) else np.asarray(A, dtype=np.float64)
    L, kept = normalized_laplacian(A)
    L = 0.5 * (L + L.T)
    if n_smallest is None:
        w, U = scipy.linalg.eigh(L)
    else:
        w, U = scipy.linalg.eigh(L, subset_by_index=[0, n_smallest - 1])
    vectors = np.zeros((A.shape[0], U.shape[1]))
    vectors[kept] = U
    return SpectrumReference(w, vectors, kept)


def normalized_laplacian(A):
    """Dense I - D^-1/2 A D^-1/2 on the kept nodes, and the kept mask."""
    A = np.asarray(A, dtype=np.float64)
    degree = A.sum(axis=1)
    kept = degree > 0
    inv_sqrt = 1.0 / np.sqrt(degree[kept])
    Ak = A[np.ix_(kept, kept)]
    return np.eye(Ak.shape[0]) - inv_sqrt[:, None] * Ak * inv_sqrt[None, :], kept


def layered_adjacency(weights, sparse=False):
    """Symmetric block-bidiagonal adjacency |W| of a layered network.

    ``weights[l]`` has shape (n_l, n_{l+1}) (in, out); layer 0 comes first.
    """
    sizes = [weights[0].shape[0]] + [w.shape[1] for w in weights]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n = int(offsets[-1])
    if sparse:
        blocks = [[None] * len(sizes) for _ in sizes]
        for l, w in enumerate(weights):
            blocks[l][l + 1] = scipy.sparse.csr_matrix(np.abs(w))
            blocks[l + 1][l] = scipy.sparse.csr_matrix(np.abs(w).T)
        for l, size in enumerate(sizes):
            if blocks[l][l] is None:
                blocks[l][l] = scipy.sparse.csr_matrix((size, size))
        A = scipy.sparse.bmat(blocks, format="csr")
        A.eliminate_zeros()
        return A
    A = np.zeros((n, n))
    for l, w in enumerate(weights):
        rows = slice(offsets[l], offsets[l + 1])
        cols = slice(offsets[l + 1], offsets[l + 2])
        A[rows, cols] = np.abs(w)
    return A + A.T


def random_weighted_graph(seed, component_sizes=(14, 9, 6, 2), n_isolated=3, p_extra=0.3):
    """Dense symmetric weighted adjacency with several components and isolated nodes.

    Each component is a random spanning tree plus Erdos-Renyi extra edges, so it
    is connected; weights are log-uniform over three decades. The node order is
    shuffled so that components and isolated nodes are interleaved.
    """
    rng = np.random.default_rng(seed)
    n = sum(component_sizes) + n_isolated
    A = np.zeros((n, n))
    start = 0
    for size in component_sizes:
        nodes = np.arange(start, start + size)
        for i in range(1, size):
            j = rng.integers(0, i)
            A[nodes[i], nodes[j]] = 1.0
        extra = np.triu(rng.random((size, size)) < p_extra, 1)
        A[np.ix_(nodes, nodes)] += extra
        start += size
    A = np.triu(A + A.T, 1) > 0
    W = np.where(A, 10.0 ** rng.uniform(-1.5, 1.5, size=(n, n)), 0.0)
    W = W + W.T
    order = rng.permutation(n)
    return W[np.ix_(order, order)]


def random_layer_weights(seed, layer_sizes=(9, 12, 10, 7, 5), density=0.45, n_dead=2):
    """Signed (in, out) weights of a small layered net with dead units and two components.

    Units of every layer are split into two halves and only same-half pairs
    may connect, so the graph has at least two components. ``n_dead`` units of
    layers 0 and 2 lose all their weights (zero-degree nodes).
    """
    rng = np.random.default_rng(seed)
    half = [rng.random(size) < 0.5 for size in layer_sizes]
    for h in half:
        h[0], h[-1] = True, False
    weights = []
    for l in range(len(layer_sizes) - 1):
        n_in, n_out = layer_sizes[l], layer_sizes[l + 1]
        same_half = half[l][:, None] == half[l + 1][None, :]
        mask = same_half & (rng.random((n_in, n_out)) < density)
        weights.append(np.where(mask, rng.normal(size=(n_in, n_out)) * 2.0, 0.0))
    for layer in (0, 2):
        dead = rng.choice(layer_sizes[layer], size=n_dead, replace=False)
        if layer > 0:
            weights[layer - 1][:, dead] = 0.0
        weights[layer][dead, :] = 0.0
    return weights


def magnitude_prune(w, sparsity=0.9):
    """Zero the smallest-magnitude ``sparsity`` fraction of ``w`` (one layer)."""
    n_keep = int(round(w.size * (1.0 - sparsity)))
    flat = np.abs(w).ravel()
    keep = np.argpartition(flat, flat.size - n_keep)[flat.size - n_keep:]
    mask = np.zeros(flat.size, dtype=bool)
    mask[keep] = True
    return np.where(mask.reshape(w.shape), w, 0.0)


def mlp_weights(seed, pruned=False, layer_sizes=MLP_LAYER_SIZES):
    """(in, out) weights of a 784-256-256-256-256-10 MLP with N(0, 1) entries.

    The graph weights are |W| ~ |N(0, 1)|; ``pruned`` applies 90% per-layer
    magnitude pruning.
    """
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(a, b)) for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
    if pruned:
        weights = [magnitude_prune(w, 0.9) for w in weights]
    return weights


def planted_layered_weights(seed, layer_sizes=(48, 64, 64, 64, 40), n_modules=4,
                            p_in=0.5, p_out=0.05, scale_out=0.15):
    """Layered net whose units are split into planted modules.

    Every layer is divided evenly (in random order) among ``n_modules``; weights
    between units of the same module are dense and strong, across modules sparse
    and weak. Returns the signed weights and the module of every node (layer 0
    first), every node having nonzero degree.
    """
    rng = np.random.default_rng(seed)
    modules = [rng.permutation(np.arange(size) % n_modules) for size in layer_sizes]
    weights = []
    for l in range(len(layer_sizes) - 1):
        n_in, n_out = layer_sizes[l], layer_sizes[l + 1]
        same = modules[l][:, None] == modules[l + 1][None, :]
        p = np.where(same, p_in, p_out)
        magnitude = np.where(same, 0.5 + np.abs(rng.normal(size=(n_in, n_out))),
                             scale_out * np.abs(rng.normal(size=(n_in, n_out))))
        sign = rng.choice([-1.0, 1.0], size=(n_in, n_out))
        weights.append(np.where(rng.random((n_in, n_out)) < p, sign * magnitude, 0.0))
    for l, size in enumerate(layer_sizes):
        # Guarantee every unit one same-module edge so that no node is isolated.
        for u in range(size):
            if l + 1 < len(layer_sizes):
                partner = np.flatnonzero(modules[l + 1] == modules[l][u])[0]
                if weights[l][u, partner] == 0.0:
                    weights[l][u, partner] = 1.0
            else:
                partner = np.flatnonzero(modules[l - 1] == modules[l][u])[0]
                if weights[l - 1][partner, u] == 0.0:
                    weights[l - 1][partner, u] = 1.0
    return PlantedGraph(weights, np.concatenate(modules))


def sbm_adjacency(seed, block_sizes=(90, 70, 50, 30), p_in=0.3, p_out=0.01):
    """Dense weighted stochastic block model (not layered); weights in [0.5, 1.5).

    Returns the adjacency and the planted block of every node, nodes shuffled.
    """
    rng = np.random.default_rng(seed)
    blocks = np.repeat(np.arange(len(block_sizes)), block_sizes)
    blocks = blocks[rng.permutation(blocks.size)]
    n = blocks.size
    p = np.where(blocks[:, None] == blocks[None, :], p_in, p_out)
    upper = np.triu(rng.random((n, n)) < p, 1)
    A = np.where(upper, rng.uniform(0.5, 1.5, size=(n, n)), 0.0)
    return A + A.T, blocks


def to_igraph(A):
    """igraph.Graph with edge attribute "weight" from a dense symmetric matrix."""
    import igraph as ig

    A = np.asarray(A)
    rows, cols = np.nonzero(np.triu(A, 1))
    return ig.Graph(n=A.shape[0], edges=list(zip(rows.tolist(), cols.tolist())),
                    edge_attrs={"weight": A[rows, cols].tolist()})


def as_input(A, kind):
    """Convert a dense symmetric adjacency to one of the accepted graph inputs."""
    if kind == "dense":
        return np.array(A)
    if kind == "csr":
        return scipy.sparse.csr_matrix(A)
    if kind == "csc":
        return scipy.sparse.csc_matrix(A)
    if kind == "coo":
        return scipy.sparse.coo_matrix(A)
    if kind == "csr_array":
        return scipy.sparse.csr_array(A)
    if kind == "igraph":
        return to_igraph(A)
    raise AssertionError(f"unknown input kind {kind!r}")


@pytest.fixture(scope="session", name="ncut_reference")
def _ncut_reference_fixture():
    return ncut_reference


@pytest.fixture(scope="session", name="normalized_laplacian_eigh")
def _normalized_laplacian_eigh_fixture():
    return normalized_laplacian_eigh


@pytest.fixture(scope="session", name="normalized_laplacian")
def _normalized_laplacian_fixture():
    return normalized_laplacian


@pytest.fixture(scope="session", name="layered_adjacency")
def _layered_adjacency_fixture():
    return layered_adjacency


@pytest.fixture(scope="session", name="random_weighted_graph")
def _random_weighted_graph_fixture():
    return random_weighted_graph


@pytest.fixture(scope="session", name="random_layer_weights")
def _random_layer_weights_fixture():
    return random_layer_weights


@pytest.fixture(scope="session", name="planted_layered_weights")
def _planted_layered_weights_fixture():
    return planted_layered_weights


@pytest.fixture(scope="session", name="sbm_adjacency")
def _sbm_adjacency_fixture():
    return sbm_adjacency


@pytest.fixture(scope="session", name="as_input")
def _as_input_fixture():
    return as_input


@pytest.fixture(scope="session", name="to_igraph")
def _to_igraph_fixture():
    return to_igraph


@pytest.fixture(scope="session")
def mlp_dense_weights():
    """The 1818-node MLP with |N(0, 1)| graph weights (signed N(0, 1) kernels)."""
    return mlp_weights(seed=2020, pruned=False)


@pytest.fixture(scope="session")
def mlp_pruned_weights():
    """The same MLP shape, 90% per-layer magnitude pruned."""
    return mlp_weights(seed=2021, pruned=True)


@pytest.fixture(scope="session")
def mlp_adjacency(mlp_dense_weights, mlp_pruned_weights):
    """Dense adjacencies of both 1818-node MLP graphs, keyed "dense"/"pruned"."""
    return {
        "dense": layered_adjacency(mlp_dense_weights),
        "pruned": layered_adjacency(mlp_pruned_weights),
    }


@pytest.fixture(scope="session")
def mlp_spectrum(mlp_adjacency):
    """Dense eigh of the normalised Laplacian of both MLP graphs (computed once)."""
    return {name: normalized_laplacian_eigh(A, n_smallest=20) for name, A in mlp_adjacency.items()}


CompactedNetwork = namedtuple("CompactedNetwork", ["weights", "alive"])


def remove_dead_units(weights):
    """Drop every unit whose total |w| over its incoming and outgoing weights is 0.

    One pass over the original network is exact: dropping a zero-degree unit
    removes no edge, so no other unit loses degree. Returns the compacted
    signed (in, out) weights and, per layer, the boolean mask of kept units.
    """
    weights = [np.asarray(w, dtype=np.float64) for w in weights]
    sizes = [weights[0].shape[0]] + [w.shape[1] for w in weights]
    alive = []
    for l, size in enumerate(sizes):
        degree = np.zeros(size)
        if l > 0:
            degree += np.abs(weights[l - 1]).sum(axis=0)
        if l < len(weights):
            degree += np.abs(weights[l]).sum(axis=1)
        alive.append(degree > 0)
    compacted = [w[np.ix_(alive[l], alive[l + 1])] for l, w in enumerate(weights)]
    return CompactedNetwork(compacted, alive)


def pruned_mlp_weights(seed, layer_sizes=(60, 40, 40, 10), sparsity=0.7):
    """Small signed MLP, magnitude pruned, with dead units and a half-dead one.

    After pruning: inputs 0-2, hidden unit 5 of layer 1, hidden unit 9 of
    layer 2 and output 2 lose all their weights (dead); hidden unit 7 of
    layer 2 loses its incoming weights but keeps an outgoing one (alive).
    With the default shape and sparsity the compacted sizes are therefore
    (57, 39, 39, 9); at higher sparsity more units can die by chance.
    """
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=(a, b)) for a, b in zip(layer_sizes[:-1], layer_sizes[1:])]
    if sparsity > 0:
        weights = [magnitude_prune(w, sparsity) for w in weights]
    weights[0][:3, :] = 0.0
    weights[0][:, 5] = 0.0
    weights[1][5, :] = 0.0
    weights[1][:, 7] = 0.0
    weights[2][7, 0] = 1.5
    weights[1][:, 9] = 0.0
    weights[2][9, :] = 0.0
    weights[2][:, 2] = 0.0
    return weights


def null_statistics_reference(observed, samples):
    """REFERENCE.md 4 with netmod's tie rule: population std, z, percentile counting samples
    equal to the observed value against it (#{samples <= observed}), below-all significance."""
    samples = np.asarray(samples, dtype=np.float64)
    mean = samples.mean()
    std = np.sqrt(np.mean((samples - mean) ** 2))
    zscore = (observed - mean) / std if std > 0 else float("nan")
    percentile = (np.count_nonzero(samples <= observed) + 1) / (samples.size + 1)
    return {"mean": float(mean), "std": float(std), "zscore": float(zscore),
            "percentile": float(percentile), "significant": bool(observed < samples.min())}


@pytest.fixture(scope="session", name="remove_dead_units")
def _remove_dead_units_fixture():
    return remove_dead_units


@pytest.fixture(scope="session", name="pruned_mlp_weights")
def _pruned_mlp_weights_fixture():
    return pruned_mlp_weights


@pytest.fixture(scope="session", name="null_statistics_reference")
def _null_statistics_reference_fixture():
    return null_statistics_reference


# --- the standard MNIST / Fashion-MNIST files ----------------------------------------

STANDARD_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                  "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
REQUIRE_DATA = "NETMOD_REQUIRE_DATA"


def _standard_data_dir():
    """$NETMOD_DATA, else the ../shared/datasets folder beside a source checkout."""
    import os
    from pathlib import Path

    env = os.environ.get("NETMOD_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def standard_data():
    """The folder holding mnist/ and fashion-mnist/ with the standard files.

    Tests that need them skip, saying why, when they are not there (a fresh
    clone has no ../shared); with NETMOD_REQUIRE_DATA=1 (set by .ci/run) the
    skip becomes a failure, so CI always runs them.
    """
    import os

    root = _standard_data_dir()
    missing = [f"{name}/{f}" for name in ("mnist", "fashion-mnist") for f in STANDARD_FILES
               if not (root / name / f).is_file()]
    if missing:
        why = (f"the standard MNIST/Fashion-MNIST files are not in {root} (missing {', '.join(missing[:2])}"
               f"{', ...' if len(missing) > 2 else ''}); set NETMOD_DATA to a folder holding mnist/ and "
               "fashion-mnist/")
        if os.environ.get(REQUIRE_DATA) == "1":
            pytest.fail(f"{REQUIRE_DATA}=1 but {why}")
        pytest.skip(why)
    return root


@pytest.fixture(scope="session")
def cnn_models():
    """tests/cnn_models.py (torchvision-topology test architectures), loaded by path."""
    pytest.importorskip("torch")
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("netmod_test_cnn_models", Path(__file__).with_name("cnn_models.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
