"""Activation graphs against independent twins: forward hooks + numpy/scipy (spearmanr, corrcoef), sklearn NMI."""

import itertools

import numpy as np
import pytest
import scipy.stats

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import netmod  # noqa: E402
from netmod.torch_models import keras_like_mlp  # noqa: E402
from netmod.training import prune_mlp, train_mlp  # noqa: E402

SIZES = (784, 48, 48, 10)
N_EXAMPLES = 1500


@pytest.fixture(scope="module")
def mnist():
    train = netmod.datasets.load_embedded("train")
    test = netmod.datasets.load_embedded("test")
    return (train.images[:3000], train.labels[:3000]), (test.images, test.labels)


@pytest.fixture(scope="module")
def trained(mnist):
    """A small pruned + dropout MLP (REFERENCE.md 5, shortened): dead units and ReLU ties included."""
    train, _ = mnist
    with torch.random.fork_rng(devices=[]):
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            model, _ = train_mlp(train, sizes=SIZES, dropout=0.5, epochs=2, seed=0, progress=False)
            model, _ = prune_mlp(model, train, epochs=1, seed=0, progress=False)
        finally:
            torch.set_num_threads(before)
    return model


def hooked(model, x, modules, batch_size, reduce=None):
    """Outputs of ``modules`` on ``x`` through model(x) with forward hooks, batch by batch, as float64 numpy
    (copied at once: a later in-place op would overwrite them), concatenated over units in module order."""
    store = {id(m): [] for m in modules}

    def hook(module, inputs, output):
        a = output.detach().double().numpy().copy()
        store[id(module)].append(a if reduce is None else reduce(a))

    handles = [m.register_forward_hook(hook) for m in modules]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for a in range(0, len(x), batch_size):
                model(x[a:a + batch_size])
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return np.hstack([np.vstack(store[id(m)]) for m in modules])


def spearman_r2(a):
    """Squared scipy.stats.spearmanr, 0 on the diagonal and for constant columns (where spearmanr gives up and
    returns one nan for the whole matrix)."""
    live = np.flatnonzero(a.max(axis=0) > a.min(axis=0))
    r2 = np.zeros((a.shape[1], a.shape[1]))
    r2[np.ix_(live, live)] = np.square(scipy.stats.spearmanr(a[:, live]).statistic)
    np.fill_diagonal(r2, 0.0)
    return r2


def pearson_r2(a):
    live = np.flatnonzero(a.max(axis=0) > a.min(axis=0))
    r2 = np.zeros((a.shape[1], a.shape[1]))
    r2[np.ix_(live, live)] = np.square(np.corrcoef(a[:, live], rowvar=False))
    np.fill_diagonal(r2, 0.0)
    return r2


def dense(g):
    a = np.zeros((g.vcount(), g.vcount()))
    for e in g.es:
        i, j = e.tuple
        a[i, j] = a[j, i] = e["weight"]
    return a


def mnist_input(images):
    return torch.as_tensor(images.reshape(len(images), -1).astype(np.float32) / 255.0)


# --- MLPs --------------------------------------------------------------------------------------------------


def test_trained_mlp_equals_scipy_spearman(trained, mnist):
    images = mnist[1][0][:N_EXAMPLES]
    g = netmod.from_activations(trained, images, batch_size=400)
    relus = [m for m in trained if isinstance(m, nn.ReLU)][:2]
    ref_acts = hooked(trained, mnist_input(images), relus, 400)
    ref = spearman_r2(ref_acts)
    assert g.vcount() == 96 and g["n_examples"] == N_EXAMPLES and g["statistic"] == "spearman"
    assert np.abs(dense(g) - ref).max() < 1e-10
    constant = np.flatnonzero(ref_acts.max(axis=0) == ref_acts.min(axis=0))
    assert g["zero_variance"] == constant.tolist()
    assert g.vs["layer_name"] == ["0"] * 48 + ["3"] * 48  # Linear, ReLU, Dropout, Linear, ...
    assert g.vs["unit"] == list(range(48)) * 2
    # ReLU zeros tie on many examples: the ties are what average ranks are for.
    assert (ref_acts == 0).mean() > 0.2


def test_trained_mlp_equals_numpy_pearson_and_preactivations(trained, mnist):
    images = mnist[1][0][:N_EXAMPLES]
    x = mnist_input(images)
    g = netmod.from_activations(trained, images, statistic="pearson", batch_size=300)
    relus = [m for m in trained if isinstance(m, nn.ReLU)][:2]
    assert np.abs(dense(g) - pearson_r2(hooked(trained, x, relus, 300))).max() < 1e-10
    linears = [m for m in trained if isinstance(m, nn.Linear)][:2]
    pre = netmod.from_activations(trained, x, linear_activation="pre", batch_size=300)
    assert pre["linear_activation"] == "pre"
    assert np.abs(dense(pre) - spearman_r2(hooked(trained, x, linears, 300))).max() < 1e-10


def test_vertices_match_from_torch_graph(trained):
    weights = netmod.from_torch(trained)
    g = netmod.from_activations(trained, torch.rand(50, 784))
    keys = {(v["layer_name"], v["unit"]): (v["layer"], v["kind"]) for v in weights.vs}
    assert all(keys[(v["layer_name"], v["unit"])] == (v["layer"], v["kind"]) for v in g.vs)
    assert g["activation_layers"] == ["0", "3"]


def test_every_netmod_function_takes_the_graph(trained, mnist):
    g = netmod.from_activations(trained, mnist[1][0][:500])
    p = netmod.spectral_clustering(g, n_clusters=4, seed=0)
    assert (p.labels[g["zero_variance"]] == -1).all()
    assert (p.labels[np.setdiff1d(np.arange(g.vcount()), g["zero_variance"])] >= 0).all()
    assert abs(netmod.ncut(g, p.labels) - p.ncut) < 1e-9
    assert netmod.leiden(g, seed=0).labels.shape == (g.vcount(),)
    assert len(netmod.compare(g, methods=("spectral", "louvain"), n_clusters=4).rows) >= 2


# --- conv nets ---------------------------------------------------------------------------------------------


def l1_positions(a):
    return np.abs(a).sum(axis=tuple(range(2, a.ndim)))


def l2_positions(a):
    return np.sqrt(np.square(a).sum(axis=tuple(range(2, a.ndim))))


def randomise_batchnorm(model, seed):
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen))
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(c, generator=gen))  # some negative: |gamma| is not the point here
            m.bias.data.copy_(torch.randn(c, generator=gen))


def test_small_cnn_equals_hook_and_numpy_twin(cnn_models):
    torch.manual_seed(0)
    model = cnn_models.small_cnn(width=0.125)  # conv8-conv8-pool-conv8-pool, dense 128-10
    x = torch.rand(120, 1, 28, 28)
    relus = [m for m in model if isinstance(m, nn.ReLU)]
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    post = np.hstack([hooked(model, x, relus[:3], 50, l2_positions), hooked(model, x, relus[3:], 50)])
    g = netmod.from_activations(model, x, batch_size=50)
    assert g["activation_layers"] == ["0", "2", "5", "9"] and g["conv_activation"] == "l2-post"
    assert set(g.vs["kind"]) == {"conv2d", "linear"}
    assert np.abs(dense(g) - spearman_r2(post)).max() < 1e-10
    pre = np.hstack([hooked(model, x, convs, 50, l1_positions), hooked(model, x, relus[3:], 50)])
    g1 = netmod.from_activations(model, x, conv_activation="l1-pre", batch_size=50)
    assert np.abs(dense(g1) - spearman_r2(pre)).max() < 1e-10
    gp = netmod.from_activations(model, x, conv_activation="l1-pre", statistic="pearson", batch_size=50)
    assert np.abs(dense(gp) - pearson_r2(pre)).max() < 1e-10


def test_batchnorm_belongs_to_the_preactivation(cnn_models):
    torch.manual_seed(1)
    model = cnn_models.vgg16_cifar(width=1 / 16)  # conv-BN-ReLU(inplace) x 13, one Linear head
    randomise_batchnorm(model, 1)
    x = torch.rand(64, 3, 32, 32)
    bns = [m for m in model if isinstance(m, nn.BatchNorm2d)]
    relus = [m for m in model if isinstance(m, nn.ReLU)]
    g1 = netmod.from_activations(model, x, conv_activation="l1-pre", batch_size=32)
    assert g1.vcount() == sum(m.num_features for m in bns)
    assert np.abs(dense(g1) - spearman_r2(hooked(model, x, bns, 32, l1_positions))).max() < 1e-10
    g2 = netmod.from_activations(model, x, batch_size=32)
    assert np.abs(dense(g2) - spearman_r2(hooked(model, x, relus, 32, l2_positions))).max() < 1e-10


def test_resnet_preactivations_and_refusal_of_post(cnn_models):
    torch.manual_seed(2)
    model = cnn_models.resnet18(n_classes=10, width=1 / 16)
    randomise_batchnorm(model, 2)
    x = torch.rand(40, 3, 32, 32)
    with pytest.raises(ValueError, match=r"layer 'layer1\.0\.conv2' \(Conv2d\) has no post-activation of its own: "
                                         r".*BatchNorm2d 'layer1\.0\.bn2'.* is added to another tensor.*"
                                         r"conv_activation='l1-pre'"):
        netmod.from_activations(model, x)
    g = netmod.from_activations(model, x, conv_activation="l1-pre", batch_size=16)
    # Every conv is hidden (fc is the output layer) and every conv is followed by its own BatchNorm.
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    order = g["activation_layers"]
    assert sorted(order) == sorted(names) and "fc" not in order
    bn_of = {n: m for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}

    def bn_after(conv):  # conv1 -> bn1, layer1.0.conv2 -> layer1.0.bn2, layer2.0.downsample.0 -> ...downsample.1
        if conv.endswith("downsample.0"):
            return conv[:-1] + "1"
        head, _, tail = conv.rpartition("conv")
        return head + "bn" + tail

    ref = hooked(model, x, [bn_of[bn_after(c)] for c in order], 16, l1_positions)
    assert np.abs(dense(g) - spearman_r2(ref)).max() < 1e-10


def test_branches_have_their_output_layers_left_out(cnn_models):
    torch.manual_seed(3)
    block = cnn_models.InceptionBlock(in_channels=8, c1=4, c3=(5, 6), c5=(3, 4), pool=2)
    x = torch.rand(30, 8, 10, 10)
    g = netmod.from_activations(block, x)
    # The four branches' last convs are concatenated into the output: only the 1x1 reductions are hidden.
    assert g["activation_layers"] == ["branch3.0", "branch5.0"] and g.vcount() == 8
    ref = hooked(block, x, [block.branch3[1], block.branch5[1]], 30, l2_positions)
    assert np.abs(dense(g) - spearman_r2(ref)).max() < 1e-10


# --- batching, DataLoader, spilling ------------------------------------------------------------------------


@pytest.mark.parametrize("statistic", ["spearman", "pearson"])
def test_batching_dataloader_and_spilling_do_not_change_the_graph(statistic, tmp_path):
    model = keras_like_mlp([30, 12, 10, 4], seed=4).double()  # float64: batched GEMMs agree to round-off
    x = torch.rand(401, 30, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) - 0.3
    whole = netmod.from_activations(model, x, statistic=statistic, batch_size=401)
    ref = dense(whole)
    assert not whole["spilled"]
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(401)), batch_size=33)
    variants = [
        netmod.from_activations(model, x, statistic=statistic, batch_size=7),
        netmod.from_activations(model, loader, statistic=statistic),
        netmod.from_activations(model, x.numpy(), statistic=statistic, batch_size=50),
        netmod.from_activations(model, (x, np.zeros(401)), statistic=statistic, batch_size=64),
        # Spilled to a file: 10 examples a block; ranked 1 unit at a time (budget 2 * 8 * 401 bytes) or 3.
        netmod.from_activations(model, x, statistic=statistic, batch_size=10, memory_budget=2, spill_dir=tmp_path),
        netmod.from_activations(model, x, statistic=statistic, batch_size=10, memory_budget=6 * 8 * 401,
                                spill_dir=tmp_path),
    ]
    for g in variants:
        assert g["n_examples"] == 401
        assert np.abs(dense(g) - ref).max() < 1e-12
    assert variants[4]["spilled"] == (statistic == "spearman")
    assert list(tmp_path.iterdir()) == []  # the spill file is gone
    assert np.abs(ref - (spearman_r2 if statistic == "spearman" else pearson_r2)(
        hooked(model, x, [m for m in model if isinstance(m, nn.ReLU)][:2], 401))).max() < 1e-10


def test_uint8_images_are_scaled_and_flattened_like_netmods_training(trained, mnist):
    images = mnist[1][0][:300]
    a = netmod.from_activations(trained, images)
    b = netmod.from_activations(trained, mnist_input(images))
    c = netmod.from_activations(trained, netmod.datasets.load_embedded("test"), batch_size=1000)
    assert np.array_equal(dense(a), dense(b)) and c["n_examples"] == 2000


# --- zero variance -------------------------------------------------------------------------------------------


def test_constant_units_are_kept_without_edges():
    model = keras_like_mlp([10, 6, 5, 2], seed=5)
    with torch.no_grad():
        model[0].weight[1] = 0.0  # unit 1: constant pre-activation (bias 0), constant ReLU output
        model[0].bias[4] = -100.0  # unit 4: a dead ReLU on every example
        model[2].weight[3] = 0.0
        model[2].bias[3] = 0.5  # layer 2 unit 3: constant 0.5
    x = torch.rand(200, 10, generator=torch.Generator().manual_seed(5))
    for statistic in ("spearman", "pearson"):
        g = netmod.from_activations(model, x, statistic=statistic)
        assert g["zero_variance"] == [1, 4, 9]
        assert [g.degree(v) for v in (1, 4, 9)] == [0, 0, 0]
        acts = hooked(model, x, [model[1], model[3]], 512)
        ref = (spearman_r2 if statistic == "spearman" else pearson_r2)(acts)
        assert np.abs(dense(g) - ref).max() < 1e-10
        labels = netmod.spectral_clustering(g, n_clusters=2, seed=0).labels
        assert labels[[1, 4, 9]].tolist() == [-1, -1, -1] and (np.delete(labels, [1, 4, 9]) >= 0).all()


# --- refusals ------------------------------------------------------------------------------------------------


class PoolFirst(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.head = nn.Linear(3 * 3 * 3, 2)

    def forward(self, x):
        return self.head(torch.relu(F.max_pool2d(self.conv(x), 2)).flatten(1))


class RandomDropout(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 3), nn.Linear(3, 2)

    def forward(self, x):
        return self.b(F.dropout(torch.relu(self.a(x)), 0.5))


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 3), nn.Linear(4, 3), nn.Linear(3, 2)

    def forward(self, x):
        return self.c(torch.relu(self.a(x)) * self.b(x))


def test_refusals():
    x = torch.rand(20, 4)
    chain = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))
    with pytest.raises(ValueError, match=r"layer '0' \(Linear\) has no post-activation of its own: its output goes "
                                         r"into Linear '1'.*linear_activation='pre'"):
        netmod.from_activations(chain, x)
    assert netmod.from_activations(chain, x, linear_activation="pre").vcount() == 6
    with pytest.raises(ValueError, match=r"layer 'conv' \(Conv2d\).*goes into 'max_pool2d'.*conv_activation='l1-pre'"):
        netmod.from_activations(PoolFirst(), torch.rand(20, 1, 8, 8))
    assert netmod.from_activations(PoolFirst(), torch.rand(20, 1, 8, 8), conv_activation="l1-pre").vcount() == 3
    with pytest.raises(ValueError, match="training=True"):
        netmod.from_activations(RandomDropout(), x)
    with pytest.raises(ValueError, match="combines two tensors"):  # the tracer's refusal, passed on
        netmod.from_activations(Gated(), x)
    with pytest.raises(ValueError, match="model has no hidden layer"):
        netmod.from_activations(nn.Sequential(nn.Linear(4, 2), nn.ReLU()), x)


def test_argument_errors():
    model = keras_like_mlp([4, 3, 2], seed=0)
    x = torch.rand(20, 4)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        netmod.from_activations("model", x)
    with pytest.raises(ValueError, match="statistic must be one of 'spearman', 'pearson', got 'kendall'"):
        netmod.from_activations(model, x, statistic="kendall")
    with pytest.raises(ValueError, match="conv_activation must be one of"):
        netmod.from_activations(model, x, conv_activation="l2-pre")
    with pytest.raises(ValueError, match="linear_activation must be one of"):
        netmod.from_activations(model, x, linear_activation="both")
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        netmod.from_activations(model, x, batch_size=0)
    with pytest.raises(ValueError, match="memory_budget must be >= 1"):
        netmod.from_activations(model, x, memory_budget=0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=5)
    with pytest.raises(ValueError, match="batch_size must be None for a DataLoader"):
        netmod.from_activations(model, loader, batch_size=5)
    with pytest.raises(TypeError, match="data must be"):
        netmod.from_activations(model, "images")
    with pytest.raises(TypeError, match="uint8 .* or floating"):
        netmod.from_activations(model, np.ones((20, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="at least 2 examples"):
        netmod.from_activations(model, x[:1])
    with pytest.raises(ValueError, match="at least one example"):
        netmod.from_activations(model, x[:0])
    bad = x.clone()
    bad[3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"layer '0' has non-finite activations"):
        netmod.from_activations(model, bad)


# --- comparison with the weight partition -----------------------------------------------------------------


def nmi_sklearn(a, b):
    from sklearn.metrics import normalized_mutual_info_score

    return normalized_mutual_info_score(a, b)


def within_between_loop(w, labels):
    inside, across = [], []
    for i, j in itertools.combinations(range(len(labels)), 2):
        (inside if labels[i] == labels[j] else across).append(w[i, j])
    return np.mean(inside), np.mean(across)


def test_comparison_statistics_equal_numpy_twins(trained, mnist, ncut_reference):
    pytest.importorskip("sklearn")
    g = netmod.from_activations(trained, mnist[1][0][:800])
    wg = netmod.from_torch(trained)
    wp = netmod.spectral_clustering(wg, n_clusters=4, seed=3)
    ap = netmod.spectral_clustering(g, n_clusters=4, seed=3)
    cmp = netmod.compare_activations(g, weights=wg, weight_labels=wp, labels=ap, n_permutations=50, seed=7)
    # The weight labels of the activation graph's units, by (layer name, unit).
    index = {(v["layer_name"], v["unit"]): v.index for v in wg.vs}
    mapped = np.array([wp.labels[index[(v["layer_name"], v["unit"])]] for v in g.vs])
    w = dense(g)
    kept = (w.sum(axis=1) > 0) & (mapped >= 0) & (ap.labels >= 0)
    assert cmp.n_units == kept.sum() and (cmp.weight_labels == np.where(kept, mapped, -1)).all()
    a, b = ap.labels[kept], mapped[kept]
    assert abs(cmp.nmi - nmi_sklearn(a, b)) < 1e-12
    rng = np.random.default_rng(7)
    _, b_compact = np.unique(b, return_inverse=True)
    null = np.array([nmi_sklearn(a, rng.permutation(b_compact)) for _ in range(50)])
    assert np.abs(cmp.nmi_null - null).max() < 1e-12
    assert cmp.nmi_p == (np.count_nonzero(null >= cmp.nmi - 1e-9 * max(cmp.nmi, null.max())) + 1) / 51
    sub = w[np.ix_(kept, kept)]
    assert abs(cmp.transfer_ncut - ncut_reference(sub, b)) < 1e-10
    assert abs(cmp.activation_ncut - ncut_reference(sub, a)) < 1e-10
    within, between = within_between_loop(sub, b)
    assert abs(cmp.within_r2 - within) < 1e-12 and abs(cmp.between_r2 - between) < 1e-12
    assert cmp.to_dict()["nmi"] == cmp.nmi and not cmp.nmi_null.flags.writeable


def test_comparison_of_a_partition_with_itself():
    model = keras_like_mlp([10, 8, 8, 2], seed=6)
    g = netmod.from_activations(model, torch.rand(300, 10, generator=torch.Generator().manual_seed(6)))
    p = netmod.spectral_clustering(g, n_clusters=3, seed=0)
    cmp = netmod.compare_activations(g, weights=p, labels=p, n_permutations=30, seed=1)
    assert cmp.nmi == pytest.approx(1.0) and cmp.nmi_p == 1 / 31
    assert cmp.transfer_ncut == cmp.activation_ncut == pytest.approx(p.ncut)
    # Weight labels computed here: the model's from_torch graph, clustered with the same seed.
    auto = netmod.compare_activations(g, weights=model, n_clusters=3, n_permutations=5, seed=0)
    wp = netmod.spectral_clustering(netmod.from_torch(model), n_clusters=3, seed=0)
    kept = auto.weight_labels >= 0
    assert (auto.weight_labels[kept] == wp.labels[10:26][kept]).all()


def test_comparison_errors():
    model = keras_like_mlp([10, 8, 8, 2], seed=6)
    g = netmod.from_activations(model, torch.rand(100, 10))
    layers = netmod.from_layers([np.ones((10, 8)), np.ones((8, 8)), np.ones((8, 2))])  # layers named "layer 1", ...
    with pytest.raises(ValueError, match="no unit of graph is in the weight graph"):
        netmod.compare_activations(g, weights=layers)
    with pytest.raises(ValueError, match=r"labels must have one entry per node \(16\)"):
        netmod.compare_activations(g, weights=np.zeros(5, dtype=int))
    with pytest.raises(TypeError, match="graph must be an igraph.Graph"):
        netmod.compare_activations(dense(g), weights=model)
    with pytest.raises(ValueError, match="n_permutations must be >= 1"):
        netmod.compare_activations(g, weights=model, n_permutations=0)
    with pytest.raises(ValueError, match="weight_labels must be None"):
        netmod.compare_activations(g, weights=np.zeros(16, dtype=int), weight_labels=np.zeros(16, dtype=int))
