"""Block graphs: weight blocks between any pairs of layers (from_blocks, BlockInput).

Every native result is checked against an independent numpy/scipy twin on
the dense symmetric adjacency (n-cut, Laplacian spectrum, compaction), on
layer graphs that are not chains: bipartite ones (a ring of four layers, two
separate chains), odd cycles of layers (a triangle, a residual stack) and
disconnected ones, with sparse and dense blocks and dead units. A chain given
as pairs must be bit-identical to the from_layers path.
"""

import igraph as ig
import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.csgraph

import netmod
from netmod import _core, graphs

# name: (sizes, pairs, bipartite layer graph)
CASES = {
    "ring": ((8, 9, 7, 6), ((0, 1), (1, 2), (2, 3), (0, 3)), True),
    "ring-unsorted": ((8, 9, 7, 6), ((2, 3), (0, 3), (0, 1), (1, 2)), True),
    "triangle": ((9, 8, 10), ((0, 1), (1, 2), (0, 2)), False),
    "residual": ((7, 9, 8, 6), ((0, 1), (1, 2), (0, 2), (2, 3), (1, 3)), False),
    "two-chains": ((6, 5, 7, 4), ((0, 1), (2, 3)), True),
    "triangle-and-pair": ((6, 7, 5, 6, 5), ((0, 1), (1, 2), (0, 2), (3, 4)), False),
}
DENSITIES = {"sparse": 0.15, "dense": 0.9}


def random_blocks(seed, sizes, pairs, density, n_dead=1):
    """Signed normal blocks with a random mask; n_dead units of every layer
    lose all their weights (zero degree)."""
    rng = np.random.default_rng(seed)
    blocks = [rng.normal(size=(sizes[s], sizes[d])) * (rng.random((sizes[s], sizes[d])) < density)
              for s, d in pairs]
    for layer, size in enumerate(sizes):
        dead = rng.choice(size, size=min(n_dead, size), replace=False)
        for w, (s, d) in zip(blocks, pairs):
            if s == layer:
                w[dead, :] = 0.0
            if d == layer:
                w[:, dead] = 0.0
    return blocks


def block_adjacency(sizes, pairs, blocks):
    """Dense symmetric |W| adjacency of a block graph (layer 0 first)."""
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    A = np.zeros((offsets[-1], offsets[-1]))
    for (s, d), w in zip(pairs, blocks):
        A[offsets[s]:offsets[s + 1], offsets[d]:offsets[d + 1]] = np.abs(w)
    return A + A.T


def compact_reference(sizes, pairs, blocks):
    """The blocks without zero-degree units: (sizes, blocks)."""
    degree = block_adjacency(sizes, pairs, blocks).sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    alive = [degree[offsets[l]:offsets[l + 1]] > 0 for l in range(len(sizes))]
    return [int(a.sum()) for a in alive], [w[np.ix_(alive[s], alive[d])] for (s, d), w in zip(pairs, blocks)]


def numpy_ncut(A, labels):
    degree = A.sum(axis=1)
    total = 0.0
    for c in np.unique(labels[labels >= 0]):
        inside = labels == c
        total += A[np.ix_(inside, ~inside)].sum() / degree[inside].sum()
    return total


def laplacian_spectrum(A):
    degree = A.sum(axis=1)
    kept = degree > 0
    s = 1.0 / np.sqrt(degree[kept])
    L = np.eye(kept.sum()) - s[:, None] * A[np.ix_(kept, kept)] * s[None, :]
    return np.linalg.eigh(0.5 * (L + L.T)), kept


def n_components(A):
    kept = A.sum(axis=1) > 0
    return scipy.sparse.csgraph.connected_components(scipy.sparse.csr_matrix(A[np.ix_(kept, kept)]))[0]


def case_graph(case, density, seed=0):
    sizes, pairs, _ = CASES[case]
    blocks = random_blocks(seed, sizes, pairs, DENSITIES[density])
    return sizes, pairs, blocks, netmod.from_blocks(blocks, sizes=sizes, pairs=pairs)


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("case", CASES)
def test_ncut_of_labels_matches_numpy(case, density):
    sizes, pairs, blocks, g = case_graph(case, density)
    assert isinstance(graphs.as_native(g), graphs.BlockInput)
    A = block_adjacency(sizes, pairs, blocks)
    rng = np.random.default_rng(1)
    for k in (2, 3, 7):
        labels = rng.integers(0, k, size=A.shape[0])
        labels[A.sum(axis=1) == 0] = -1
        assert netmod.ncut(g, labels) == pytest.approx(numpy_ncut(A, labels), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("case", CASES)
def test_embedding_is_the_laplacian_spectrum_and_says_its_solver(case, density):
    sizes, pairs, blocks, g = case_graph(case, density)
    A = block_adjacency(sizes, pairs, blocks)
    (w, _), kept = laplacian_spectrum(A)
    k = 5
    e = netmod.spectral_embedding(g, n_components=k, seed=3, tol=1e-10)
    np.testing.assert_allclose(e.eigenvalues, w[:k], atol=1e-8)
    np.testing.assert_array_equal(e.kept, kept)
    # Each vector is an eigenvector of the dense Laplacian (zero off the kept nodes).
    s = 1.0 / np.sqrt(A.sum(axis=1)[kept])
    L = np.eye(kept.sum()) - s[:, None] * A[np.ix_(kept, kept)] * s[None, :]
    V = e.vectors[kept]
    assert np.abs(e.vectors[~kept]).max(initial=0.0) == 0.0
    assert np.abs(L @ V - V * e.eigenvalues).max() < 1e-8
    c = n_components(A)
    expected = "components" if c >= k else ("bipartite-lanczos" if CASES[case][2] else "lanczos")
    assert e.info["solver"] == expected and e.info["n_components"] == c


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("case", CASES)
def test_clustering_agrees_with_the_same_graph_as_csr(case, density):
    sizes, pairs, blocks, g = case_graph(case, density)
    A = block_adjacency(sizes, pairs, blocks)
    k = 4
    ours = netmod.spectral_clustering(g, n_clusters=k, seed=5, tol=1e-10)
    csr = netmod.spectral_clustering(scipy.sparse.csr_matrix(A), n_clusters=k, seed=5, tol=1e-10)
    assert ours.info["operator"] == "blocks" and csr.info["operator"] == "csr"
    np.testing.assert_allclose(ours.eigenvalues, csr.eigenvalues, atol=1e-8)
    # The two solvers' eigenvectors agree up to an orthogonal mixing within
    # each eigenspace (signs included), which leaves every distance between
    # embedded rows, hence the seeded k-means, unchanged: only a decision
    # within round-off of a tie could tell the partitions apart.
    np.testing.assert_array_equal(ours.labels, csr.labels)
    assert ours.ncut == pytest.approx(csr.ncut, rel=1e-9)
    assert ours.ncut == pytest.approx(numpy_ncut(A, ours.labels), rel=1e-12)


def big_residual(bipartite):
    """Dense blocks large enough that the operator's products are split over the pool."""
    sizes = (200, 300, 250, 200)
    pairs = ((0, 1), (1, 2), (2, 3), (0, 3)) if bipartite else ((0, 1), (1, 2), (0, 2), (2, 3), (1, 3))
    blocks = random_blocks(7, sizes, pairs, 0.5, n_dead=3)
    csizes, cblocks = compact_reference(sizes, pairs, blocks)
    # The layered operator stores a block this dense as a dense GEMM block of
    # rows x cols entries; work() >= 100000 turns on the pool split.
    assert all(np.count_nonzero(w) >= 0.25 * w.size for w in cblocks)
    assert sum(w.size for w in cblocks) >= 100000
    return sizes, pairs, blocks


@pytest.mark.parametrize("case", ["ring", "residual", "big-bipartite", "big-residual"])
def test_results_are_identical_for_any_thread_count(case):
    if case.startswith("big"):
        sizes, pairs, blocks = big_residual(case == "big-bipartite")
    else:
        sizes, pairs, blocks, _ = case_graph(case, "dense")
    args = (np.array(sizes), np.array([s for s, _ in pairs]), np.array([d for _, d in pairs]), blocks)
    runs = [_core.spectral_blocks(*args, n_clusters=6, seed=2, n_threads=t) for t in (1, 2, 3)]
    for r in runs[1:]:
        for key in ("labels", "eigenvalues", "vectors", "kept"):
            np.testing.assert_array_equal(r[key], runs[0][key], err_msg=key)
        assert r["ncut"] == runs[0]["ncut"] and r["solver"] == runs[0]["solver"]
    assert runs[0]["solver"] == ("bipartite-lanczos" if case in ("ring", "big-bipartite") else "lanczos")
    (w, _), _ = laplacian_spectrum(block_adjacency(sizes, pairs, blocks))
    np.testing.assert_allclose(runs[0]["eigenvalues"], w[:6], atol=1e-7)


def test_chain_given_as_pairs_is_the_from_layers_graph_bit_for_bit():
    sizes = (9, 12, 10, 7)
    pairs = ((0, 1), (1, 2), (2, 3))
    blocks = random_blocks(4, sizes, pairs, 0.4, n_dead=2)
    g = netmod.from_blocks(blocks, sizes=sizes, pairs=pairs, names=["a", "b", "c", "d"])
    ref = netmod.from_layers(blocks, names=["a", "b", "c", "d"])
    assert g.get_edgelist() == ref.get_edgelist() and g.es["weight"] == ref.es["weight"]
    assert g.vs.attributes() == ref.vs.attributes() and g.attributes() == ref.attributes()
    for key in ("layer", "unit"):
        assert g.vs[key] == ref.vs[key]
    assert g["layer_sizes"] == ref["layer_sizes"] and g["layer_names"] == ref["layer_names"]
    for a, b in zip(g["layer_weights"], ref["layer_weights"]):
        np.testing.assert_array_equal(a, b)
    assert isinstance(graphs.as_native(g), graphs.LayeredInput)
    with_kinds = netmod.from_blocks(blocks, sizes=sizes, pairs=pairs, kinds=["in", "h", "h", "out"],
                                    attributes={"kernel_norm": "l1"})
    assert with_kinds["layer_kinds"] == ["in", "h", "h", "out"] and with_kinds["kernel_norm"] == "l1"
    assert with_kinds.vs["kind"] == ["in"] * 9 + ["h"] * 22 + ["out"] * 7
    assert set(with_kinds.attributes()) == set(ref.attributes()) | {"layer_kinds", "kernel_norm"}

    # The kernel's block entry points on the chain: the chain's own results, bit for bit.
    args = (np.array(sizes), np.array([0, 1, 2]), np.array([1, 2, 3]), blocks)
    a = _core.spectral_blocks(*args, n_clusters=4, seed=1)
    b = _core.spectral_layers(blocks, n_clusters=4, seed=1)
    for key in ("labels", "eigenvalues", "vectors", "kept"):
        np.testing.assert_array_equal(a[key], b[key])
    assert a["ncut"] == b["ncut"] and a["solver"] == b["solver"] == "bipartite-lanczos"
    labels = a["labels"]
    assert _core.ncut_blocks(*args, labels) == _core.ncut_layers(blocks, labels)
    csizes, cblocks = _core.compact_blocks(*args)
    assert list(csizes) == compact_reference(sizes, pairs, blocks)[0]
    for x, y in zip(cblocks, _core.compact_layers(blocks)):
        np.testing.assert_array_equal(x, y)
    for method in ("layer", "nonzero"):
        _, sblocks = _core.shuffled_blocks(*args, method=method, seed=3, index=5)
        for x, y in zip(sblocks, _core.shuffled_layers(blocks, method=method, seed=3, index=5)):
            np.testing.assert_array_equal(x, y)
        kw = dict(method=method, seed=3, start=1, count=4, n_clusters=3, n_threads=2, observed=True)
        np.testing.assert_array_equal(_core.null_samples_blocks(*args, **kw), _core.null_samples(blocks, **kw))


@pytest.mark.parametrize("case", CASES)
def test_compaction_removes_exactly_the_dead_units(case):
    sizes, pairs, blocks, g = case_graph(case, "sparse")
    want_sizes, want = compact_reference(sizes, pairs, blocks)
    got_sizes, got = _core.compact_blocks(*graphs.as_native(g).native_args())
    assert list(got_sizes) == want_sizes and want_sizes != list(sizes)
    for x, y in zip(got, want):
        np.testing.assert_array_equal(x, y)


def test_a_layer_compacted_to_no_units_keeps_its_empty_blocks():
    sizes, pairs = (6, 7, 5, 4), ((0, 1), (1, 2), (0, 2), (2, 3))
    blocks = random_blocks(2, sizes, pairs, 0.6, n_dead=0)
    blocks[3][:] = 0.0  # layer 3 loses every unit
    native = graphs.as_native(netmod.from_blocks(blocks, sizes=sizes, pairs=pairs))
    csizes, cblocks = _core.compact_blocks(*native.native_args())
    assert csizes[3] == 0 and [w.shape for w in cblocks][3] == (int(csizes[2]), 0)
    g = netmod.from_blocks(blocks, sizes=sizes, pairs=pairs)
    null = netmod.shuffle_null(g, n_shuffles=3, n_clusters=3, progress=False)
    assert np.isfinite(null.samples).all()
    assert [w.shape for w in netmod.shuffled_weights(g)] == [w.shape for w in cblocks]


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("case", ["ring", "residual", "triangle-and-pair"])
def test_shuffles_keep_each_compacted_block(case, density):
    sizes, pairs, blocks, g = case_graph(case, density)
    _, compacted = compact_reference(sizes, pairs, blocks)
    moved = False
    for i in range(3):
        layer = netmod.shuffled_weights(g, shuffle="layer", seed=9, index=i)
        nonzero = netmod.shuffled_weights(g, shuffle="nonzero", seed=9, index=i)
        for s, z, w in zip(layer, nonzero, compacted):
            assert s.shape == w.shape == z.shape
            np.testing.assert_array_equal(np.sort(s, axis=None), np.sort(w, axis=None))
            np.testing.assert_array_equal(z != 0, w != 0)
            np.testing.assert_array_equal(np.sort(z, axis=None), np.sort(w, axis=None))
            moved |= not np.array_equal(s, w)
    assert moved
    # A replicate is a function of (seed, index) only.
    again = netmod.shuffled_weights(g, shuffle="layer", seed=9, index=1)
    for x, y in zip(again, netmod.shuffled_weights(g, shuffle="layer", seed=9, index=1)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("shuffle", ["layer", "nonzero"])
@pytest.mark.parametrize("case", ["ring", "residual"])
def test_null_samples_are_the_documented_replicates(case, shuffle):
    sizes, pairs, blocks, g = case_graph(case, "dense")
    k, seed, n = 3, 4, 6
    null = netmod.shuffle_null(g, n_shuffles=n, shuffle=shuffle, n_clusters=k, seed=seed, n_threads=3,
                               progress=False)
    assert null.observed == netmod.spectral_clustering(g, n_clusters=k, seed=seed).ncut
    csizes, _ = compact_reference(sizes, pairs, blocks)
    for i in range(n):
        shuffled = netmod.shuffled_weights(g, shuffle=shuffle, seed=seed, index=i)
        replicate = netmod.from_blocks(shuffled, sizes=csizes, pairs=pairs)
        expected = netmod.spectral_clustering(replicate, n_clusters=k, seed=netmod.replicate_seed(seed, i))
        assert null.samples[i] == expected.ncut, i
    # The same samples for any chunking and thread count.
    args = graphs.as_native(g).native_args()
    kw = dict(method=shuffle, seed=seed, n_clusters=k)
    whole = _core.null_samples_blocks(*args, start=0, count=n, n_threads=1, **kw)
    parts = [_core.null_samples_blocks(*args, start=a, count=b, n_threads=t, **kw)
             for a, b, t in ((0, 2, 2), (2, 3, 3), (5, 1, 1))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.testing.assert_array_equal(whole, null.samples)
    one = netmod.shuffle_null(g, n_shuffles=n, shuffle=shuffle, n_clusters=k, seed=seed, n_threads=1,
                              progress=False)
    np.testing.assert_array_equal(one.samples, null.samples)


def test_python_replicate_path_takes_block_graphs():
    sizes, pairs, blocks, g = case_graph("residual", "dense")
    k, seed, n = 3, 2, 4
    null = netmod.shuffle_null(g, n_shuffles=n, n_clusters=k, seed=seed, statistic="modularity",
                               progress=False)
    native = netmod.shuffle_null(g, n_shuffles=n, n_clusters=k, seed=seed, progress=False)
    csizes, _ = compact_reference(sizes, pairs, blocks)
    for i in range(n):
        replicate = netmod.from_blocks(netmod.shuffled_weights(g, seed=seed, index=i), sizes=csizes, pairs=pairs)
        p = netmod.spectral_clustering(replicate, n_clusters=k, seed=netmod.replicate_seed(seed, i))
        assert null.samples[i] == netmod.modularity(replicate, p.labels)
        assert native.samples[i] == p.ncut
    leiden = netmod.shuffle_null(g, n_shuffles=2, method="leiden", seed=seed, progress=False)
    assert leiden.method == "leiden" and np.isfinite(leiden.samples).all()


def test_an_edited_block_graph_gives_the_edited_answer():
    sizes, pairs, blocks, g = case_graph("residual", "sparse")
    A = block_adjacency(sizes, pairs, blocks)
    labels = netmod.spectral_clustering(g, n_clusters=3, seed=0).labels
    assert netmod.ncut(g, labels) == pytest.approx(numpy_ncut(A, labels), rel=1e-12)
    u, v = g.es[5].tuple
    g.es[5]["weight"] = 40.0
    A[u, v] = A[v, u] = 40.0
    assert isinstance(graphs.as_native(g), graphs.CsrInput)
    assert netmod.ncut(g, labels) == pytest.approx(numpy_ncut(A, labels), rel=1e-12)
    # The null reads the edited blocks from the edges (magnitudes, pairs sorted).
    rebuilt = graphs.as_layered(g)
    assert isinstance(rebuilt, graphs.BlockInput) and rebuilt.pairs == tuple(sorted(pairs))
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    for (s, d), w in zip(rebuilt.pairs, rebuilt.blocks):
        np.testing.assert_array_equal(w, A[offsets[s]:offsets[s + 1], offsets[d]:offsets[d + 1]])
    # Without its skip edges the edited graph is a chain again.
    chain = g.copy()
    layer = np.array(chain.vs["layer"])
    chain.delete_edges([e.index for e in chain.es if abs(layer[e.source] - layer[e.target]) > 1])
    assert isinstance(graphs.as_layered(chain), graphs.LayeredInput)
    # An edge inside a layer has no block to go in.
    same = g.copy()
    same.add_edge(0, 1, weight=1.0)
    with pytest.raises(ValueError, match="both in layer 0"):
        netmod.shuffle_null(same, n_shuffles=2, n_clusters=3, progress=False)


def test_block_graphs_elsewhere():
    sizes, pairs, blocks, g = case_graph("triangle", "dense")
    with pytest.raises(ValueError, match="layer_weights needs an MLP chain"):
        netmod.layer_weights(g)
    back = netmod.to_igraph(graphs.as_native(g))
    assert back.get_edgelist() == g.get_edgelist() and back["layer_pairs"] == list(pairs)
    assert g["layer_sizes"] == list(sizes) and g["layer_pairs"] == list(pairs)
    for stored, w in zip(g["layer_blocks"], blocks):
        np.testing.assert_array_equal(stored, w)
        assert not stored.flags.writeable
    # Weights near overflow are rescaled by a power of two: the same answers.
    huge = netmod.from_blocks([w * 2.0**1000 for w in blocks], sizes=sizes, pairs=pairs)
    assert graphs.for_kernel(graphs.as_native(huge)) is not graphs.as_native(huge)
    p, q = (netmod.spectral_clustering(x, n_clusters=3, seed=1) for x in (g, huge))
    np.testing.assert_array_equal(p.labels, q.labels)
    assert netmod.ncut(huge, p.labels) == netmod.ncut(g, p.labels)
    cmp = netmod.compare(g, methods=("spectral", "louvain"), n_clusters=3, seed=1)
    assert cmp.rows[0]["ncut"] == p.ncut


def test_from_blocks_attributes_kinds_and_edges():
    sizes, pairs, blocks = (2, 3, 2), ((0, 1), (1, 2), (0, 2)), [np.ones((2, 3)), np.ones((3, 2)), -np.eye(2)]
    blocks[0][1, 2] = 0.0
    g = netmod.from_blocks(blocks, sizes=sizes, pairs=pairs, kinds=["in", "conv", "out"],
                           attributes={"kernel_norm": "l1"})
    assert g.vs["layer"] == [0, 0, 1, 1, 1, 2, 2] and g.vs["unit"] == [0, 1, 0, 1, 2, 0, 1]
    assert g.vs["kind"] == ["in", "in", "conv", "conv", "conv", "out", "out"]
    assert g["layer_kinds"] == ["in", "conv", "out"] and g["kernel_norm"] == "l1"
    assert g["layer_names"] == ["input", "layer 1", "layer 2"]
    assert g.get_edgelist() == [(0, 2), (0, 3), (0, 4), (1, 2), (1, 3),
                                (2, 5), (2, 6), (3, 5), (3, 6), (4, 5), (4, 6), (0, 5), (1, 6)]
    assert g.es["weight"] == [1.0] * 13
    assert isinstance(graphs.as_native(g), graphs.BlockInput)


def _args(sizes, pairs, blocks):
    return np.array(sizes), np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]), blocks


BAD = {
    "src-after-dst": ((3, 2, 2), ((0, 1), (2, 1)), [(3, 2), (2, 2)], r"pairs\[1\] must have src < dst",
                      r"blocks\[1\] \(layers 2 -> 1\): src must be < dst"),
    "self-pair": ((3, 2), ((1, 1),), [(2, 2)], r"pairs\[0\] must have src < dst", "src must be < dst"),
    "duplicate": ((3, 2, 2), ((0, 1), (1, 2), (0, 1)), [(3, 2), (2, 2), (3, 2)], r"repeats the pair \(0, 1\)",
                  r"the pair of layers \(0, 1\) appears twice"),
    "shape": ((3, 2, 2), ((0, 1), (0, 2)), [(3, 2), (2, 2)], r"blocks\[1\] \(layers 0 -> 2\) must have shape \(3, 2\)",
              r"blocks\[1\] \(layers 0 -> 2\) must have shape \(3, 2\), got \(2, 2\)"),
    "layer-out-of-range": ((3, 2), ((0, 2),), [(3, 2)], r"must name layers in \[0, 2\)", r"must be in \[0, 2\)"),
    "negative-size": ((3, -2), ((0, 1),), [(3, 0)], r"sizes\[1\] must be >= 0", "negative size"),
}


@pytest.mark.parametrize("bad", BAD)
def test_invalid_blocks_are_refused_in_python_and_in_the_kernel(bad):
    sizes, pairs, shapes, python_match, kernel_match = BAD[bad]
    blocks = [np.ones(s) for s in shapes]
    with pytest.raises(ValueError, match=python_match):
        netmod.from_blocks(blocks, sizes=sizes, pairs=pairs)
    for call in (lambda: _core.ncut_blocks(*_args(sizes, pairs, blocks), np.zeros(max(sum(sizes), 0), np.int64)),
                 lambda: _core.spectral_blocks(*_args(sizes, pairs, blocks), n_clusters=2),
                 lambda: _core.compact_blocks(*_args(sizes, pairs, blocks)),
                 lambda: _core.shuffled_blocks(*_args(sizes, pairs, blocks), method="layer", seed=0, index=0),
                 lambda: _core.null_samples_blocks(*_args(sizes, pairs, blocks), method="layer", seed=0, start=0,
                                                   count=1, n_clusters=2)):
        with pytest.raises(ValueError, match=kernel_match):
            call()


def test_other_from_blocks_arguments_are_checked():
    sizes, pairs, blocks = (2, 3), ((0, 1),), [np.ones((2, 3))]
    with pytest.raises(ValueError, match=r"pairs must have one \(src, dst\) per block \(1\), got 2"):
        netmod.from_blocks(blocks, sizes=sizes, pairs=[(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="sizes must have at least two layers"):
        netmod.from_blocks(blocks, sizes=[2], pairs=pairs)
    with pytest.raises(ValueError, match="must be finite"):
        netmod.from_blocks([np.full((2, 3), np.nan)], sizes=sizes, pairs=pairs)
    with pytest.raises(ValueError, match="kinds must have one entry per layer of units"):
        netmod.from_blocks(blocks, sizes=sizes, pairs=pairs, kinds=["a"])
    with pytest.raises(ValueError, match="names must have one entry per layer of units"):
        netmod.from_blocks([np.ones((2, 3)), np.ones((2, 2))], sizes=(2, 3, 2), pairs=[(0, 1), (0, 2)], names=["a"])
    with pytest.raises(ValueError, match="must not set 'layer_sizes'"):
        netmod.from_blocks(blocks, sizes=sizes, pairs=pairs, attributes={"layer_sizes": [1]})
    with pytest.raises(TypeError, match=r"pairs\[0\] must hold two integers"):
        netmod.from_blocks(blocks, sizes=sizes, pairs=[(0.0, 1)])
    with pytest.raises(TypeError, match="must be a numeric array"):
        netmod.from_blocks([np.full((2, 3), "x")], sizes=sizes, pairs=pairs)
    with pytest.raises(TypeError, match="attributes must be a mapping"):
        netmod.from_blocks(blocks, sizes=sizes, pairs=pairs, attributes=[("a", 1)])
    assert isinstance(netmod.from_blocks(blocks, sizes=sizes, pairs=pairs), ig.Graph)
