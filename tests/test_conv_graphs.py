"""Filter graphs of convolutions: kernel norms and the random-init CNN references.

`kernel_norms` is checked against a loop over kernel slices with numpy's own
norms, its group structure against what a torch convolution actually connects
(impulse responses), and the filter graphs of Glorot-initialised CNN chains
against the published random-init n-cuts (REFERENCE.md 6c).
"""

import numpy as np
import pytest

import netmod
from netmod.paper import UNTRAINED_CNN, UNTRAINED_MLP
from netmod.synthetic import clusterable_conv_kernels, clusterable_weights, glorot_conv_kernels, glorot_weights

NUMPY_NORM = {
    "l1": lambda s: np.abs(s).sum(),
    "l2": lambda s: np.sqrt(np.square(s).sum()),
    "induced-l1": lambda s: np.linalg.norm(s, ord=1),
    "spectral": lambda s: np.linalg.norm(s, ord=2),
}


def loop_norms(kernel, norm, groups=1):
    n_out, n_in_group = kernel.shape[:2]
    per_group = n_out // groups
    out = np.zeros((n_in_group * groups, n_out))
    for j in range(n_out):
        g = j // per_group
        for i in range(n_in_group):
            out[g * n_in_group + i, j] = NUMPY_NORM[norm](np.abs(kernel[j, i]))
    return out


@pytest.mark.parametrize("norm", ["l1", "l2", "induced-l1", "spectral"])
@pytest.mark.parametrize("shape,groups", [((6, 4, 3, 3), 1), ((6, 2, 3, 5), 2), ((6, 1, 3, 3), 6), ((4, 3, 1, 1), 1)])
def test_kernel_norms_match_numpy_slice_by_slice(norm, shape, groups):
    kernel = np.random.default_rng(1).normal(size=shape)
    got = netmod.kernel_norms(kernel, norm, groups=groups)
    np.testing.assert_allclose(got, loop_norms(kernel, norm, groups), rtol=1e-12, atol=0)
    assert got.dtype == np.float64 and got.shape == (shape[1] * groups, shape[0])


def test_induced_l1_is_the_largest_column_sum_not_the_entrywise_sum():
    k = np.zeros((1, 1, 3, 3))
    k[0, 0] = [[1, -2, 0], [1, 0, 0], [1, 0, -4]]
    assert netmod.kernel_norms(k, "induced-l1")[0, 0] == 4.0  # column sums 3, 2, 4
    assert netmod.kernel_norms(k, "l1")[0, 0] == 9.0


@pytest.mark.parametrize("spatial", [(5,), (2, 3, 2)])
def test_one_and_three_d_kernels(spatial):
    kernel = np.random.default_rng(2).normal(size=(3, 2, *spatial))
    flat = np.abs(kernel).reshape(3, 2, -1)
    np.testing.assert_allclose(netmod.kernel_norms(kernel, "l1"), flat.sum(axis=2).T, rtol=1e-12)
    np.testing.assert_allclose(netmod.kernel_norms(kernel, "l2"), np.sqrt((flat**2).sum(axis=2)).T, rtol=1e-12)
    if len(spatial) == 1:  # the induced norms of a vector are its 1- and 2-norms
        np.testing.assert_allclose(netmod.kernel_norms(kernel, "induced-l1"), flat.sum(axis=2).T, rtol=1e-12)
        np.testing.assert_allclose(netmod.kernel_norms(kernel, "spectral"), np.sqrt((flat**2).sum(axis=2)).T,
                                   rtol=1e-12)
    else:
        for norm in ("induced-l1", "spectral"):
            with pytest.raises(ValueError, match="1-D and 2-D kernel slices"):
                netmod.kernel_norms(kernel, norm)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_group_structure_is_what_torch_connects(groups):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(4, 8, 3, padding=1, groups=groups, bias=False)
    norms = netmod.kernel_norms(conv.weight.detach().numpy(), "l1", groups=groups)
    for i in range(4):  # an impulse in input channel i reaches exactly the outputs it is joined to
        x = torch.zeros(1, 4, 5, 5)
        x[0, i, 2, 2] = 1.0
        reached = conv(x).detach().abs().sum(dim=(0, 2, 3)).numpy() > 0
        np.testing.assert_array_equal(norms[i] > 0, reached)
        expected = conv.weight.detach().abs().sum(dim=(2, 3)).numpy()  # (out, in / groups)
        for j in np.flatnonzero(reached):
            assert norms[i, j] == pytest.approx(expected[j, i % (4 // groups)], rel=1e-6)


@pytest.mark.parametrize("bad,error,message", [
    (dict(norm="max"), ValueError, "norm"),
    (dict(groups=4), ValueError, "divisible by groups"),
    (dict(groups=0), ValueError, "groups"),
    (dict(kernel=np.ones((2, 2))), ValueError, "spatial"),
    (dict(kernel=np.full((2, 2, 3, 3), np.nan)), ValueError, "finite"),
    (dict(kernel=np.ones((2, 2, 3, 3), dtype=complex)), TypeError, "real"),
])
def test_kernel_norms_refuse_bad_input(bad, error, message):
    args = {"kernel": np.ones((6, 2, 3, 3)), "norm": "l1", "groups": 1} | bad
    with pytest.raises(error, match=message):
        netmod.kernel_norms(args["kernel"], args["norm"], groups=args["groups"])


def test_glorot_conv_kernels_are_keras_glorot_uniform():
    kernels = glorot_conv_kernels([16, 32], in_channels=3, kernel_size=3, seed=4)
    assert [k.shape for k in kernels] == [(16, 3, 3, 3), (32, 16, 3, 3)]
    for k, (n_in, n_out) in zip(kernels, [(3, 16), (16, 32)]):
        bound = np.sqrt(6.0 / ((n_in + n_out) * 9))
        assert 0.95 * bound < np.abs(k).max() <= bound
        assert abs(k.mean()) < 0.1 * bound
    again = glorot_conv_kernels([16, 32], in_channels=3, kernel_size=3, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(kernels, again))


def test_a_list_of_layer_weights_is_the_from_layers_graph():
    blocks = [netmod.kernel_norms(k, "l2") for k in glorot_conv_kernels([8, 8, 6], in_channels=2, seed=3)[1:]]
    labels = np.random.default_rng(0).integers(0, 3, size=8 + 8 + 6)
    graph = netmod.from_layers(blocks)
    assert netmod.ncut(blocks, labels) == netmod.ncut(graph, labels)
    a = netmod.spectral_clustering(blocks, n_clusters=3, seed=1)
    b = netmod.spectral_clustering(graph, n_clusters=3, seed=1)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.ncut == b.ncut


def mean_filter_graph_ncut(ref, make_kernels, n_nets=20):
    """Mean n-cut of n_nets filter graphs (conv filters only: the image channels left out)."""
    values = []
    for seed in range(n_nets):
        kernels = make_kernels(ref["channels"], in_channels=ref["in_channels"], seed=seed)
        blocks = [netmod.kernel_norms(k, ref["norm"]) for k in kernels[1:]]
        assert sum(b.shape[1] for b in blocks) + blocks[0].shape[0] == sum(ref["channels"])
        values.append(netmod.ncut(blocks, n_clusters=ref["n_clusters"], seed=seed))
    return np.mean(values), np.std(values)


def test_a_list_holding_one_square_matrix_is_refused_as_ambiguous():
    adjacency = np.abs(np.random.default_rng(0).normal(size=(6, 6)))
    adjacency = adjacency + adjacency.T
    with pytest.raises(ValueError, match="one square matrix"):
        netmod.ncut([adjacency], n_clusters=2)
    layer = adjacency[:, :4]  # one non-square layer is unambiguous
    assert netmod.ncut([layer], np.zeros(10, dtype=int)) == 0.0
    assert netmod.ncut(netmod.from_layers([adjacency]), n_clusters=2) > 0  # the explicit way still works


@pytest.mark.parametrize("name,tol", [("small CNN", 0.03), ("VGG-16 CIFAR-10", 0.05)])
def test_random_init_cnn_filter_graphs_match_the_published_ncut(name, tol):
    # REFERENCE.md 6c: conv filters only, the authors' norm, k=12, mean over 20 nets (the paper: 100).
    mean, sd = mean_filter_graph_ncut(UNTRAINED_CNN[name], glorot_conv_kernels)
    assert abs(mean - UNTRAINED_CNN[name]["ncut"]) < tol, (mean, sd)

def test_clusterable_conv_kernels_plant_the_modules():
    plain = glorot_conv_kernels([6, 8, 5], in_channels=2, seed=7)
    planted = clusterable_conv_kernels([6, 8, 5], in_channels=2, n_modules=3, within=3.0, across=0.5, seed=7)
    np.testing.assert_array_equal(planted[0], plain[0])  # the image channels' kernel is untouched
    for l in (1, 2):
        factor = planted[l] / plain[l]  # one factor per slice, 3.0 or 0.5
        per_slice = factor.reshape(*factor.shape[:2], -1)
        np.testing.assert_allclose(per_slice, per_slice[:, :, :1] * np.ones_like(per_slice), rtol=1e-12)
        assert set(np.round(np.unique(per_slice), 12)) <= {0.5, 3.0}
    # "Same module" is one equivalence through all layers: two conv-2 channels
    # share either all their boosted conv-1 partners or none, and two that
    # share a non-empty set are boosted by the same conv-3 channels too.
    r1 = (planted[1] / plain[1])[:, :, 0, 0] > 1  # (conv 2, conv 1)
    r2 = (planted[2] / plain[2])[:, :, 0, 0] > 1  # (conv 3, conv 2)
    assert r1.any() and r2.any() and not r1.all()
    for a in range(8):
        for b in range(8):
            shared = r1[a] & r1[b]
            assert not shared.any() or np.array_equal(r1[a], r1[b])
            if shared.any():
                np.testing.assert_array_equal(r2[:, a], r2[:, b])


@pytest.mark.parametrize("name,tol", [("small CNN", 0.1), ("VGG-16 CIFAR-10", 0.05)])
def test_clusterable_init_cnn_filter_graphs_match_the_published_ncut(name, tol):
    mean, sd = mean_filter_graph_ncut(UNTRAINED_CNN[name], clusterable_conv_kernels)
    assert abs(mean - UNTRAINED_CNN[name]["clusterable"]) < tol, (mean, sd)

def vgg_blocks(seed):
    ref = UNTRAINED_CNN["VGG-16 CIFAR-10"]
    kernels = glorot_conv_kernels(ref["channels"], in_channels=ref["in_channels"], seed=seed)
    return [netmod.kernel_norms(k, ref["norm"]) for k in kernels[1:]]


def test_vgg_null_is_the_same_on_any_thread_count_and_keeps_each_blocks_entries():
    blocks = vgg_blocks(0)
    runs = [netmod.shuffle_null(blocks, n_shuffles=3, shuffle="layer", n_clusters=12, seed=5, n_threads=t,
                                progress=False) for t in (1, 2, 3)]
    for r in runs[1:]:
        np.testing.assert_array_equal(r.samples, runs[0].samples)
        assert r.observed == runs[0].observed
    for i in range(3):
        shuffled = netmod.shuffled_weights(blocks, shuffle="layer", seed=5, index=i)
        for a, b in zip(blocks, shuffled):
            assert a.shape == b.shape and not np.array_equal(a, b)
            np.testing.assert_array_equal(np.sort(a, axis=None), np.sort(np.abs(b), axis=None))


def test_dead_vgg_channels_are_left_out_as_for_mlps():
    ref = UNTRAINED_CNN["VGG-16 CIFAR-10"]
    kernels = glorot_conv_kernels(ref["channels"][:6], in_channels=3, seed=1)
    kernels[2][5] = 0.0  # filter 5 of conv 3: no input...
    kernels[3][:, 5] = 0.0  # ...and no output
    blocks = [netmod.kernel_norms(k, "l1") for k in kernels[1:]]
    p = netmod.spectral_clustering(blocks, n_clusters=6, seed=0)
    dead = 64 + 64 + 5
    assert p.labels[dead] == -1 and (np.delete(p.labels, dead) >= 0).all()
    # The null shuffles the network without the dead filter: the same samples
    # as for the blocks with it cut out by hand.
    cut = [b.copy() for b in blocks]
    cut[1], cut[2] = np.delete(cut[1], 5, axis=1), np.delete(cut[2], 5, axis=0)
    a = netmod.shuffle_null(blocks, n_shuffles=4, n_clusters=6, seed=2, progress=False)
    b = netmod.shuffle_null(cut, n_shuffles=4, n_clusters=6, seed=2, progress=False)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert [w.shape for w in netmod.shuffled_weights(blocks, seed=2)] == [w.shape for w in cut]


def test_vgg_ncut_matches_sklearn_spectral_clustering():
    cluster = pytest.importorskip("sklearn.cluster")
    import scipy.sparse as sp

    ratios = []
    for seed in range(5):
        blocks = vgg_blocks(seed)
        sizes = [blocks[0].shape[0]] + [b.shape[1] for b in blocks]
        grid = [[None] * len(sizes) for _ in sizes]
        for l, b in enumerate(blocks):
            grid[l][l + 1], grid[l + 1][l] = sp.csr_matrix(b), sp.csr_matrix(b.T)
        a = sp.bmat(grid, format="csr")
        labels = cluster.SpectralClustering(n_clusters=12, affinity="precomputed", eigen_solver="arpack",
                                            assign_labels="kmeans", random_state=seed).fit_predict(a)
        ratios.append(netmod.ncut(blocks, n_clusters=12, seed=seed) / netmod.ncut(blocks, labels))
    assert abs(np.median(ratios) - 1.0) < 0.01, ratios


def test_random_init_mlp_matches_the_published_ncut():
    # REFERENCE.md 6c: 10.295 +- 0.032 (Glorot), 6.80 +- 0.03 (clusterable init).
    sizes = UNTRAINED_MLP["sizes"]
    plain = [netmod.ncut(glorot_weights(sizes, seed=s), n_clusters=12, seed=s) for s in range(20)]
    assert abs(np.mean(plain) - 10.295) < 0.02, np.mean(plain)
    planted = [netmod.ncut(clusterable_weights(sizes, first_layer=True, seed=s), n_clusters=12, seed=s)
               for s in range(20)]
    assert abs(np.mean(planted) - 6.80) < 0.03, np.mean(planted)
    # The hidden units keep their modules: only the first layer differs.
    a = clusterable_weights(sizes, seed=3)
    b = clusterable_weights(sizes, first_layer=True, seed=3)
    assert not np.array_equal(a[0], b[0]) and all(np.array_equal(x, y) for x, y in zip(a[1:], b[1:]))


@pytest.mark.parametrize("norm", ["l1", "l2", "induced-l1", "spectral"])
def test_scale_multiplies_the_kernels_of_each_output_channel(norm):
    kernel = np.random.default_rng(3).normal(size=(5, 2, 3, 3))
    scale = np.array([2.0, -0.5, 0.0, 1.0, 3.0])
    np.testing.assert_allclose(netmod.kernel_norms(kernel, norm, scale=scale),
                               loop_norms(kernel * scale[:, None, None, None], norm), rtol=1e-12)
    with pytest.raises(ValueError, match="one factor per output channel"):
        netmod.kernel_norms(kernel, norm, scale=np.ones(4))


def test_batchnorm_after_a_conv_folds_in_as_torch_computes_it():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    conv, bn = torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.uniform_(-2, 2)
        bn.running_var.uniform_(0.1, 3)
        bn.running_mean.normal_()
    net = torch.nn.Sequential(conv, bn).eval()
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
    got = netmod.kernel_norms(conv.weight.detach().numpy(), "l1", scale=scale)
    with torch.no_grad():
        base = net(torch.zeros(1, 3, 5, 5))
        for i in range(3):  # the impulse response of input channel i is the folded kernel (flipped)
            x = torch.zeros(1, 3, 5, 5)
            x[0, i, 2, 2] = 1.0
            response = (net(x) - base)[0, :, 1:4, 1:4].abs().sum(dim=(1, 2)).numpy()
            np.testing.assert_allclose(got[i], response, rtol=1e-5)
