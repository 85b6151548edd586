"""trace_network: the unit graph of CNNs, residual and branching nets against numpy constructions.

Every expected block is built here from the modules' own weight tensors with explicit loops
over kernel slices and numpy's norms (REFERENCE.md 8), independently of netmod's code.
The torch.export route (trace_exported on the program, load_network on its .pt2 file) must give
the NetworkTrace that trace_network gives on the live module, for every architecture here.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from netmod.torch_models import load_network  # noqa: E402
from netmod.tracing import trace_exported, trace_mlp, trace_network, trace_serialized  # noqa: E402

NORMS = ("l1", "l2", "induced-l1", "spectral")


def slice_norm(k: np.ndarray, norm: str) -> float:
    """numpy's norm of one kernel slice (|k| for a scalar)."""
    k = np.abs(np.asarray(k, dtype=np.float64))
    if k.ndim == 0:
        return float(k)
    if norm == "l1":
        return float(k.sum())
    if norm == "l2":
        return float(np.sqrt((k ** 2).sum()))
    if k.ndim == 1:
        return float(np.linalg.norm(k, 1 if norm == "induced-l1" else 2))
    return float(np.linalg.norm(k, 1 if norm == "induced-l1" else 2))


def conv_block(conv: nn.Conv2d, norm: str, row_scale=None, col_scale=None, in_channels=None) -> np.ndarray:
    """(in, out) block of a conv layer: norm of K[j, i] (groups respected), slices scaled first."""
    k = conv.weight.detach().double().numpy()
    n_in = in_channels if in_channels is not None else conv.in_channels
    out, ipg = k.shape[:2]
    opg = out // conv.groups
    b = np.zeros((n_in, out))
    for i in range(n_in):
        for j in range(out):
            if i // ipg != j // opg:
                continue
            s = (1.0 if row_scale is None else row_scale[i]) * (1.0 if col_scale is None else col_scale[j])
            b[i, j] = slice_norm(s * k[j, i % ipg], norm)
    return b


def bn_factor(bn: nn.BatchNorm2d) -> np.ndarray:
    return (bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)).numpy()


def randomise_bn(bn, gen):
    with torch.no_grad():
        bn.weight.copy_(torch.randn(bn.num_features, generator=gen))
        bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + 0.1)
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen))


def blocks_of(trace) -> dict:
    return {(trace.names[s], trace.names[d]): b for (s, d), b in zip(trace.pairs, trace.blocks)}


def check(trace, expected: dict):
    got = blocks_of(trace)
    assert set(got) == set(expected)
    for key, want in expected.items():
        np.testing.assert_allclose(got[key], want, rtol=1e-6, atol=0, err_msg=str(key))
        assert got[key].shape == want.shape


class ResidualIdentity(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.c = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        h = F.relu(self.a(x))
        out = self.b(h)
        out += h
        return self.c(F.relu(out))


class ResidualProjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.proj = nn.Conv2d(4, 6, 1, stride=2)
        self.c = nn.Conv2d(6, 2, 3)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.c(torch.relu(self.b(h) + self.proj(h)))


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b1 = nn.Conv2d(4, 2, 1)
        self.b2 = nn.Conv2d(4, 3, 3, padding=1)
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)
        self.c = nn.Conv2d(9, 2, 3)

    def forward(self, x):
        h = self.a(x)
        return self.c(torch.cat([self.b1(h), self.b2(h), self.pool(h)], dim=1))


@pytest.mark.parametrize("norm", NORMS)
def test_residual_identity_skip(norm):
    torch.manual_seed(0)
    m = ResidualIdentity()
    t = trace_network(m, example_input=torch.zeros(2, 3, 8, 8), kernel_norm=norm)
    assert t.names == ("input", "a", "b", "c") and t.sizes == (3, 4, 4, 2)
    assert t.kinds == ("input", "conv2d", "conv2d", "conv2d") and t.kernel_norm == norm
    check(t, {("input", "a"): conv_block(m.a, norm), ("a", "b"): conv_block(m.b, norm),
              ("a", "c"): conv_block(m.c, norm), ("b", "c"): conv_block(m.c, norm)})


@pytest.mark.parametrize("norm", NORMS)
def test_residual_projection_skip(norm):
    torch.manual_seed(1)
    m = ResidualProjection()
    t = trace_network(m, example_input=torch.zeros(1, 3, 9, 9), kernel_norm=norm, include="conv")
    assert t.names == ("a", "b", "proj", "c")
    check(t, {("a", "b"): conv_block(m.b, norm), ("a", "proj"): conv_block(m.proj, norm),
              ("b", "c"): conv_block(m.c, norm), ("proj", "c"): conv_block(m.c, norm)})


@pytest.mark.parametrize("norm", NORMS)
def test_concatenation_offsets_channels(norm):
    torch.manual_seed(2)
    m = Concat()
    t = trace_network(m, example_input=torch.zeros(1, 3, 6, 6), kernel_norm=norm)
    full = conv_block(m.c, norm)  # rows: the 9 concatenated channels
    check(t, {("input", "a"): conv_block(m.a, norm), ("a", "b1"): conv_block(m.b1, norm),
              ("a", "b2"): conv_block(m.b2, norm), ("b1", "c"): full[0:2], ("b2", "c"): full[2:5],
              ("a", "c"): full[5:9]})


def test_same_unit_twice_sums_the_slices_before_the_norm():
    torch.manual_seed(3)
    a, c = nn.Conv2d(2, 3, 3), nn.Conv2d(6, 2, 3)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.c = a, c

        def forward(self, x):
            h = self.a(x)
            return self.c(torch.cat([h, h], 1)) + self.c.weight.new_zeros(1)

    with pytest.raises(ValueError, match="parameter or buffer 'c.weight'"):
        trace_network(Twice(), example_input=torch.zeros(1, 2, 8, 8))

    class Twice2(Twice):
        def forward(self, x):
            h = self.a(x)
            return self.c(torch.cat([h, h], 1))

    t = trace_network(Twice2(), example_input=torch.zeros(1, 2, 8, 8), kernel_norm="l2")
    k = c.weight.detach().double().numpy()
    want = np.array([[slice_norm(k[j, i] + k[j, 3 + i], "l2") for j in range(2)] for i in range(3)])
    check(t, {("input", "a"): conv_block(a, "l2"), ("a", "c"): want})


@pytest.mark.parametrize("norm", NORMS)
def test_grouped_conv_joins_channels_of_one_group(norm):
    torch.manual_seed(4)
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3, groups=2))
    t = trace_network(m, example_input=torch.zeros(1, 3, 7, 7), kernel_norm=norm)
    b = conv_block(m[2], norm)
    assert (b[:2, 3:] == 0).all() and (b[2:, :3] == 0).all() and (b[:2, :3] > 0).all()
    check(t, {("input", "0"): conv_block(m[0], norm), ("0", "2"): b})


@pytest.mark.parametrize("norm", NORMS)
def test_depthwise_separable_pair(norm):
    torch.manual_seed(5)
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=4, padding=1), nn.ReLU6(),
                      nn.Conv2d(4, 6, 1))
    t = trace_network(m, example_input=torch.zeros(1, 3, 7, 7), kernel_norm=norm)
    dw = conv_block(m[2], norm)
    assert np.count_nonzero(dw) == 4 and np.count_nonzero(np.diag(dw)) == 4
    check(t, {("input", "0"): conv_block(m[0], norm), ("0", "2"): dw, ("2", "4"): conv_block(m[4], norm)})


@pytest.mark.parametrize("norm", NORMS)
def test_batchnorm_after_a_conv_scales_its_kernels(norm):
    gen = torch.Generator().manual_seed(6)
    torch.manual_seed(6)
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 3), nn.BatchNorm2d(2))
    randomise_bn(m[1], gen)
    randomise_bn(m[4], gen)
    m.train()
    t = trace_network(m, example_input=torch.zeros(1, 3, 9, 9), kernel_norm=norm)
    assert m.training and m[1].training  # the training flags are restored
    check(t, {("input", "0"): conv_block(m[0], norm, col_scale=bn_factor(m[1])),
              ("0", "3"): conv_block(m[3], norm, col_scale=bn_factor(m[4]))})
    assert len(t.folded) == 2 and "into the layer it follows, '0'" in t.folded[0]


@pytest.mark.parametrize("norm", NORMS)
def test_batchnorm_before_a_conv_scales_what_reads_it(norm):
    gen = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    # At the input: the factor of input channel i scales the slices K[:, i].
    m = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3))
    randomise_bn(m[0], gen)
    t = trace_network(m, example_input=torch.zeros(1, 3, 6, 6), kernel_norm=norm)
    check(t, {("input", "1"): conv_block(m[1], norm, row_scale=bn_factor(m[0]))})

    # After a layer whose output is also read elsewhere (a branch): folding into that layer would
    # change the other branch, so the factor goes to the reader.
    m = Branch()
    randomise_bn(m.bn, gen)
    t = trace_network(m, example_input=torch.zeros(1, 3, 6, 6), kernel_norm=norm)
    check(t, {("input", "a"): conv_block(m.a, norm), ("a", "b"): conv_block(m.b, norm, row_scale=bn_factor(m.bn)),
              ("a", "c"): conv_block(m.c, norm)})


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("pool", [False, True])
def test_conv_flatten_linear(norm, pool):
    torch.manual_seed(8)
    layers = [nn.Conv2d(1, 3, 3, padding=1), nn.ReLU()] + ([nn.AvgPool2d(2)] if pool else [])
    m = nn.Sequential(*layers, nn.Flatten(), nn.Linear(3 * (4 if pool else 16), 5), nn.ReLU(), nn.Linear(5, 2))
    t = trace_network(m, example_input=torch.zeros(2, 1, 4, 4), kernel_norm=norm)
    side = 2 if pool else 4
    w = m[-3].weight.detach().double().numpy()
    fc = np.array([[slice_norm(w[j, c * side * side:(c + 1) * side * side].reshape(side, side), norm)
                    for j in range(5)] for c in range(3)])
    first = len(layers) + 1
    check(t, {("input", "0"): conv_block(m[0], norm), ("0", str(first)): fc,
              (str(first), str(first + 2)): m[-1].weight.detach().double().numpy().T})
    assert t.kinds == ("input", "conv2d", "linear", "linear")


def test_bn1d_after_linear_and_mlp_equals_trace_mlp():
    gen = torch.Generator().manual_seed(9)
    torch.manual_seed(9)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3))
    t = trace_network(mlp, example_input=torch.zeros(2, 1, 3, 4))
    ref = trace_mlp(mlp, example_input=torch.zeros(2, 1, 3, 4))
    assert t.sizes == ref.sizes == (12, 6, 3) and t.pairs == ((0, 1), (1, 2))
    for a, b in zip(t.blocks, ref.weights):
        np.testing.assert_array_equal(a, b)  # signed, as from_layers takes them
    m = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    randomise_bn(m[1], gen)
    t = trace_network(m)
    w0 = m[0].weight.detach().double().numpy().T * bn_factor(m[1])[None, :]
    check(t, {("input", "0"): w0, ("0", "3"): m[3].weight.detach().double().numpy().T})


def test_include_selects_layers_without_bridging():
    torch.manual_seed(10)
    m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(3 * 4, 4), nn.Linear(4, 2))
    x = torch.zeros(1, 1, 6, 6)
    conv = trace_network(m, example_input=x, include="conv")
    assert conv.names == ("0", "1") and conv.pairs == ((0, 1),)
    lin = trace_network(m, example_input=x, include="linear")
    assert lin.names == ("3", "4") and lin.pairs == ((0, 1),)
    named = trace_network(m, example_input=x, include=["input", "1", "4"])
    assert named.names == ("input", "1", "4") and named.pairs == ()  # nothing through the left-out layers
    with pytest.raises(ValueError, match=r"names layers the model does not have: \['fc'\]"):
        trace_network(m, example_input=x, include=["fc"])
    with pytest.raises(ValueError, match="include must be"):
        trace_network(m, example_input=x, include="filters")


class Functional(nn.Module):
    """The Sequential of the next test written as a forward with functional ops."""

    def __init__(self, seq):
        super().__init__()
        self.c1, self.bn, self.c2, self.fc1, self.fc2 = seq[0], seq[1], seq[4], seq[9], seq[11]

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn(self.c1(x))), 2)
        x = F.dropout(torch.tanh(self.c2(x)), 0.3, training=self.training)
        x = F.adaptive_avg_pool2d(x, (2, 2))
        x = x.view(x.size(0), -1)
        return self.fc2(torch.relu(self.fc1(x)))


def test_sequential_and_functional_forward_give_the_same_graph():
    gen = torch.Generator().manual_seed(11)
    torch.manual_seed(11)
    seq = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 5, 3, padding=1), nn.Tanh(), nn.Dropout(0.3), nn.AdaptiveAvgPool2d((2, 2)),
                        nn.Flatten(), nn.Linear(20, 6), nn.ReLU(), nn.Linear(6, 3))
    randomise_bn(seq[1], gen)
    fun = Functional(seq)
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(seq.eval()(x), fun.eval()(x))
    for norm in NORMS:
        a = trace_network(seq, example_input=x, kernel_norm=norm)
        b = trace_network(fun, example_input=x, kernel_norm=norm)
        assert a.sizes == b.sizes and a.pairs == b.pairs and a.kinds == b.kinds
        assert b.names == ("input", "c1", "c2", "fc1", "fc2")
        for u, v in zip(a.blocks, b.blocks):
            np.testing.assert_array_equal(u, v)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.att = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x):
        h = self.fc(x)
        return self.att(h, h, h)[0]


class Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 3, 1), nn.Conv2d(2, 3, 1)

    def forward(self, x):
        return self.a(x) * torch.sigmoid(self.b(x))


class Slice(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 4, 1), nn.Conv2d(2, 2, 1)

    def forward(self, x):
        return self.b(self.a(x)[:, :2])


class Shared(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 2, 1)

    def forward(self, x):
        return self.a(torch.relu(self.a(x)))


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(2, 2, 1)

    def forward(self, x):
        return self.a(x) if x.sum() > 0 else x


class SpatialCat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 1)

    def forward(self, x):
        h = self.a(x)
        return self.b(torch.cat([h, h], dim=2))


@pytest.mark.parametrize(
    "model, x, match",
    [
        (Attention(), torch.zeros(3, 8), r"'MultiheadAttention'.*describe the network by its activations"),
        (nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2)), torch.zeros(2, 3, dtype=torch.long),
         r"'Embedding'.*include='conv'"),
        (nn.Sequential(nn.Conv2d(2, 3, 1), nn.GroupNorm(1, 3), nn.Conv2d(3, 1, 1)), torch.zeros(1, 2, 4, 4),
         "'GroupNorm'"),
        (Gate(), torch.zeros(1, 2, 4, 4), "'mul'.*gating or attention"),
        (Slice(), torch.zeros(1, 2, 4, 4), "'getitem'.*slice of the channels"),
        (Shared(), torch.zeros(1, 2, 4, 4), "Conv2d 'a' is called again"),
        (DataDependent(), torch.zeros(1, 2, 4, 4), "cannot be traced by torch.fx"),
        (SpatialCat(), torch.zeros(1, 2, 4, 4), "concatenates along dim 2"),
        (nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2, track_running_stats=False)), torch.zeros(1, 2, 4, 4),
         "no running statistics"),
        (nn.Sequential(nn.Conv2d(2, 3, 3), nn.Linear(2, 2)), torch.zeros(1, 2, 4, 4), "flatten first"),
    ],
)
def test_ops_netmod_cannot_place_are_refused_by_name(model, x, match):
    with pytest.raises(ValueError, match=match):
        trace_network(model, example_input=x)


def test_a_conv_net_needs_an_example_input():
    with pytest.raises(ValueError, match=r"pass example_input .*torch.zeros\(1, 3, 32, 32\)"):
        trace_network(nn.Sequential(nn.Conv2d(3, 2, 3)))
    with pytest.raises(TypeError, match="example_input must be a torch.Tensor"):
        trace_network(nn.Sequential(nn.Conv2d(3, 2, 3)), example_input=[1, 2])
    with pytest.raises(ValueError, match="kernel_norm must be one of"):
        trace_network(nn.Linear(2, 2), kernel_norm="l3")


def test_architectures_trace(cnn_models):
    vgg = cnn_models.vgg16_cifar()
    t = trace_network(vgg, example_input=torch.zeros(1, 3, 32, 32), include="conv", kernel_norm="induced-l1")
    assert sum(t.sizes) == 4224 and len(t.pairs) == 12
    assert t.pairs == tuple((i, i + 1) for i in range(12))
    res = cnn_models.resnet18()
    t = trace_network(res, example_input=torch.zeros(1, 3, 64, 64), include="conv")
    assert len(t.sizes) == 20 and sum(t.sizes) == 4800
    # A stage's identity skips join every earlier summand to each later block's first conv.
    names = {n: i for i, n in enumerate(t.names)}
    pairs = set(t.pairs)
    assert (names["layer1.0.conv2"], names["layer1.1.conv1"]) in pairs
    assert (names["conv1"], names["layer1.1.conv1"]) in pairs
    assert (names["layer2.0.downsample.0"], names["layer2.1.conv1"]) in pairs
    block = cnn_models.InceptionBlock()
    t = trace_network(block, example_input=torch.zeros(1, 192, 8, 8))
    assert t.sizes[0] == 192 and sum(t.sizes[i] for i, k in enumerate(t.kinds) if k != "input") > 0


# --- the torch.export route: the same NetworkTrace from the exported ATen graph and from the .pt2 file ---


class Branch(nn.Module):
    """A BatchNorm on one branch of a layer's output: it folds into the reader, not the layer."""

    def __init__(self):
        super().__init__()
        self.a, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.b, self.c = nn.Conv2d(4, 2, 3, padding=1), nn.Conv2d(4, 2, 1)

    def forward(self, x):
        h = self.a(x)
        return self.b(F.relu(self.bn(h))) + self.c(h)


def with_random_bn(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            randomise_bn(m, gen)
    return model


def functional_net():
    seq = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 5, 3, padding=1), nn.Tanh(), nn.Dropout(0.3), nn.AdaptiveAvgPool2d((2, 2)),
                        nn.Flatten(), nn.Linear(20, 6), nn.ReLU(), nn.Linear(6, 3))
    return Functional(with_random_bn(seq))


# name -> builder(cnn_models) -> (model, example input); widths cut so that the tests stay fast.
EXPORTED = {
    "small_cnn": lambda c: (c.small_cnn(width=0.25), torch.randn(1, 1, 28, 28)),
    "vgg16_cifar": lambda c: (with_random_bn(c.vgg16_cifar(width=0.125)), torch.randn(1, 3, 32, 32)),
    "resnet18": lambda c: (with_random_bn(c.resnet18(n_classes=10, width=0.125)), torch.randn(1, 3, 32, 32)),
    "inception": lambda c: (c.InceptionBlock(16, 4, (4, 6), (2, 3), 3), torch.randn(1, 16, 8, 8)),
    "residual_identity": lambda c: (ResidualIdentity(), torch.randn(2, 3, 8, 8)),
    "residual_projection": lambda c: (ResidualProjection(), torch.randn(1, 3, 9, 9)),
    "concat": lambda c: (Concat(), torch.randn(1, 3, 6, 6)),
    "batchnorm_branch": lambda c: (with_random_bn(Branch()), torch.randn(1, 3, 6, 6)),
    "batchnorm_input": lambda c: (with_random_bn(nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3))),
                                  torch.randn(1, 3, 6, 6)),
    "functional": lambda c: (functional_net(), torch.randn(2, 3, 8, 8)),
    "depthwise": lambda c: (nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=4, padding=1),
                                          nn.ReLU6(), nn.Conv2d(4, 6, 1, groups=2)), torch.randn(1, 3, 7, 7)),
    "bn1d_mlp": lambda c: (with_random_bn(nn.Sequential(nn.Flatten(), nn.Linear(12, 5, bias=False),
                                                        nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2, bias=False))),
                           torch.randn(2, 1, 3, 4)),
}


def export(model, x, ir):
    """torch.export of the model in eval mode: its ATen graph as exported, or decomposed to core ATen."""
    program = torch.export.export(model.eval(), (x,))
    return program.run_decompositions() if ir == "core" else program


def assert_same_trace(got, want):
    assert (got.names, got.kinds, got.sizes, got.pairs) == (want.names, want.kinds, want.sizes, want.pairs)
    assert (got.kernel_norm, got.folded, got.unused) == (want.kernel_norm, want.folded, want.unused)
    for (s, d), a, b in zip(want.pairs, got.blocks, want.blocks):
        assert a.shape == b.shape == (want.sizes[s], want.sizes[d])
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, err_msg=f"{want.names[s]} -> {want.names[d]}")


@pytest.mark.parametrize("ir", ["export", "core"])
@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_exported_program_and_pt2_file_give_the_live_trace(name, ir, cnn_models, tmp_path):
    torch.manual_seed(12)
    model, x = EXPORTED[name](cnn_models)
    program = export(model, x, ir)
    path = tmp_path / f"{name}.pt2"
    torch.export.save(program, path)
    settings = [("all", "l1"), ("all", "spectral"), ("conv", "induced-l1"), ("linear", "l2")]
    checked = 0
    for include, norm in settings:
        kinds = {k for k in trace_network(model, example_input=x).kinds}
        if (include == "conv" and not any(k.startswith("conv") for k in kinds)) or (
                include == "linear" and "linear" not in kinds):
            continue
        want = trace_network(model, example_input=x, include=include, kernel_norm=norm)
        assert_same_trace(trace_exported(program, include=include, kernel_norm=norm), want)
        assert_same_trace(load_network(path, include=include, kernel_norm=norm), want)
        checked += 1
    assert checked >= 2


def test_pt2_residual_block_against_numpy(tmp_path):
    # Independent of trace_network: the blocks of a file read back are the numpy constructions.
    torch.manual_seed(0)
    m = ResidualIdentity()
    torch.export.save(export(m, torch.zeros(2, 3, 8, 8), "export"), tmp_path / "m.pt2")
    t = load_network(tmp_path / "m.pt2", kernel_norm="l2")
    assert t.names == ("input", "a", "b", "c") and t.kinds == ("input", "conv2d", "conv2d", "conv2d")
    check(t, {("input", "a"): conv_block(m.a, "l2"), ("a", "b"): conv_block(m.b, "l2"),
              ("a", "c"): conv_block(m.c, "l2"), ("b", "c"): conv_block(m.c, "l2")})


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_exported_conv1d_and_conv3d(norm):
    torch.manual_seed(13)
    for model, x in ((nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(3, 2, 1)),
                      torch.randn(1, 2, 9)),
                     (nn.Sequential(nn.Conv3d(2, 3, 3), nn.AvgPool3d(2), nn.Conv3d(3, 2, 1)),
                      torch.randn(1, 2, 6, 6, 6))):
        want = trace_network(model, example_input=x, kernel_norm=norm)
        for ir in ("export", "core"):
            assert_same_trace(trace_exported(export(model, x, ir), kernel_norm=norm), want)


def test_exported_pruned_layer_is_named_for_its_module():
    from torch.nn.utils import prune

    torch.manual_seed(14)
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    prune.l1_unstructured(m[2], "weight", 0.5)
    x = torch.randn(1, 3, 8, 8)
    t = trace_exported(export(m, x, "export"))
    assert t.names == ("input", "0", "2")
    assert_same_trace(t, trace_network(m, example_input=x))
    k = (m[2].weight_orig * m[2].weight_mask).detach().double().numpy()
    masked = np.array([[np.abs(k[j, i]).sum() for j in range(2)] for i in range(4)])
    np.testing.assert_allclose(t.blocks[1], masked, rtol=1e-12)
    assert not np.allclose(masked, np.abs(m[2].weight_orig.detach().double().numpy()).sum(axis=(2, 3)).T)


class ParameterGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(2, 2, 1)
        self.p = nn.Parameter(torch.ones(1, 2, 1, 1))

    def forward(self, x):
        return self.c(x) * self.p


@pytest.mark.parametrize("route", ["program", "file"])
@pytest.mark.parametrize(
    "model, x, match",
    [
        (Attention(), torch.zeros(3, 8), r"ATen op 'aten\.unsqueeze\.default' \(node 'unsqueeze', in the forward of "
                                         r"module 'att'.*is not known to keep channels in place"),
        (nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2)), torch.zeros(2, 3, dtype=torch.long),
         r"'aten\.embedding\.default'.*is not an op netmod knows.*include='conv'"),
        (nn.Sequential(nn.Conv2d(2, 3, 1), nn.GroupNorm(1, 3), nn.Conv2d(3, 1, 1)), torch.zeros(1, 2, 4, 4),
         r"'aten\.group_norm\.default'"),
        (Gate(), torch.zeros(1, 2, 4, 4), r"'aten\.mul\.Tensor'.*gating or attention"),
        (Slice(), torch.zeros(1, 2, 4, 4), r"'aten\.slice\.Tensor'.*a slice of the channels"),
        (Shared(), torch.zeros(1, 2, 4, 4), r"Conv2d 'a' is called again in forward \(nodes 'conv2d' and 'conv2d_1'\)"),
        (SpatialCat(), torch.zeros(1, 2, 4, 4), "concatenates along dim 2"),
        (nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2, track_running_stats=False)), torch.zeros(1, 2, 4, 4),
         "without running statistics"),
        (nn.Sequential(nn.Conv2d(2, 3, 3), nn.Linear(2, 2)), torch.zeros(1, 2, 4, 4), "flatten first"),
        (nn.Sequential(nn.ConvTranspose2d(2, 3, 3)), torch.zeros(1, 2, 4, 4), "is a transposed convolution"),
        (ParameterGate(), torch.zeros(1, 2, 4, 4), r"reads the parameter or buffer 'p' itself in ATen op "
                                                   r"'aten\.mul\.Tensor'"),
    ],
)
def test_exported_ops_netmod_cannot_place_are_refused_by_name(model, x, match, route, tmp_path):
    program = export(model, x, "export")
    with pytest.raises(ValueError, match=match):
        if route == "program":
            trace_exported(program)
        else:
            torch.export.save(program, tmp_path / "m.pt2")
            load_network(tmp_path / "m.pt2")


def test_exported_programs_that_netmod_cannot_read(tmp_path):
    m = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2))
    trained = torch.export.export(m.train(), (torch.zeros(2, 2, 4, 4),))
    with pytest.raises(ValueError, match="changes the parameter or buffer '1.num_batches_tracked' in place .*"
                                         "export model.eval"):
        trace_exported(trained)
    with pytest.raises(ValueError, match="changes its state while it runs .*export model.eval"):
        trace_exported(trained.run_decompositions())
    dynamic = torch.export.export(nn.Sequential(nn.Conv2d(2, 2, 1)).eval(), (torch.zeros(2, 2, 4, 4),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    with pytest.raises(ValueError, match="exported with dynamic shapes .*export without dynamic_shapes"):
        trace_exported(dynamic)
    torch.export.save(dynamic, tmp_path / "d.pt2")
    with pytest.raises(ValueError, match="exported with dynamic shapes"):
        load_network(tmp_path / "d.pt2")
    with pytest.raises(TypeError, match="program must be a torch.export.ExportedProgram, got Sequential"):
        trace_exported(m)
    with pytest.raises(ValueError, match="kernel_norm must be one of"):
        trace_exported(export(nn.Sequential(nn.Linear(2, 2)), torch.zeros(2, 2), "export"), kernel_norm="l3")


def test_serialized_program_must_be_in_the_schema():
    with pytest.raises(TypeError, match="document must be the dict of a parsed models/model.json, got str"):
        trace_serialized("{}", {})
    with pytest.raises(TypeError, match="tensors must be a dict of names to torch.Tensor"):
        trace_serialized({}, {"w": [1.0]})
    with pytest.raises(ValueError, match="the serialized exported program cannot be read: it is not an exported "
                                         "program in torch.export's serialization schema"):
        trace_serialized({"graph_module": {}}, {})
