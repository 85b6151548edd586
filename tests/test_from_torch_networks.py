"""from_torch on CNNs and residual nets: the graph, results that say how it was made, nulls.

The blocks of each graph are checked against netmod.kernel_norms of the model's own
kernels (itself checked slice by slice against numpy in test_conv_graphs) and
against trace_network's numpy constructions (test_trace_network); here what matters
is what users get: the same answers from a Sequential and a hand-written forward,
results recording kernel_norm and include, and nulls on non-chain graphs that keep
each block's entries and do not depend on the thread count.
"""

import numpy as np
import pytest

import netmod

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402


def seq_and_functional():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 24, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10))
    with torch.no_grad():
        seq[1].weight.uniform_(0.5, 2.0)
        seq[1].running_var.uniform_(0.5, 2.0)

    class Hand(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.bn, self.c2, self.c3, self.fc = seq[0], seq[1], seq[4], seq[6], seq[10]

        def forward(self, x):
            x = F.max_pool2d(torch.relu(self.bn(self.c1(x))), 2)
            x = self.c3(self.c2(x).relu()).relu()
            return self.fc(x.mean(dim=(2, 3)))

    return seq, Hand()


@pytest.mark.parametrize("include", ["all", "conv"])
def test_sequential_and_hand_written_forward_give_the_same_results(include):
    seq, hand = seq_and_functional()
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(seq.eval()(x), hand.eval()(x))
    a = netmod.from_torch(seq, example_input=x, include=include, kernel_norm="induced-l1")
    b = netmod.from_torch(hand, example_input=x, include=include, kernel_norm="induced-l1")
    assert a["layer_sizes"] == b["layer_sizes"] and a.get_edgelist() == b.get_edgelist()
    assert a.es["weight"] == b.es["weight"]
    pa, pb = (netmod.spectral_clustering(g, n_clusters=4, seed=3) for g in (a, b))
    np.testing.assert_array_equal(pa.labels, pb.labels)
    assert pa.ncut == pb.ncut
    na, nb = (netmod.shuffle_null(g, n_shuffles=6, n_clusters=4, seed=1, progress=False) for g in (a, b))
    np.testing.assert_array_equal(na.samples, nb.samples)


def test_conv_blocks_are_the_kernel_norms_with_batchnorm_folded():
    seq, _ = seq_and_functional()
    g = netmod.from_torch(seq, example_input=torch.zeros(1, 3, 16, 16), include="conv", kernel_norm="l2")
    bn = seq[1]
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().double().numpy()
    want = [netmod.kernel_norms(seq[4].weight.detach().numpy(), "l2"),
            netmod.kernel_norms(seq[6].weight.detach().numpy(), "l2")]
    assert g["layer_names"] == ["0", "4", "6"] and g["layer_sizes"] == [16, 16, 24]
    assert g.vs["layer_name"] == ["0"] * 16 + ["4"] * 16 + ["6"] * 24 and g.vs["unit"][16:18] == [0, 1]
    assert g.vs["kind"] == ["conv2d"] * 56
    got = netmod.layer_weights(g)
    for u, v in zip(got, want):
        np.testing.assert_allclose(u, v, rtol=1e-6)
    g_all = netmod.from_torch(seq, example_input=torch.zeros(1, 3, 16, 16), kernel_norm="l2")
    first = netmod.layer_weights(g_all)[0]
    np.testing.assert_allclose(first, netmod.kernel_norms(seq[0].weight.detach().numpy(), "l2", scale=scale),
                               rtol=1e-6)
    assert g_all["batchnorm"] == ["BatchNorm '1' into the layer it follows, '0'"]


def test_results_record_the_kernel_norm_and_include():
    seq, _ = seq_and_functional()
    g = netmod.from_torch(seq, example_input=torch.zeros(1, 3, 16, 16), include="conv", kernel_norm="spectral")
    p = netmod.spectral_clustering(g, n_clusters=3)
    assert p.info["kernel_norm"] == "spectral" and p.info["include"] == "conv"
    assert p.to_dict()["info"]["kernel_norm"] == "spectral"
    e = netmod.spectral_embedding(g, n_components=3)
    assert e.info["kernel_norm"] == "spectral"
    null = netmod.shuffle_null(g, n_shuffles=2, n_clusters=3, progress=False)
    assert null.graph_info == {"kernel_norm": "spectral", "include": "conv"}
    assert null.to_dict()["graph_info"]["include"] == "conv"
    cmp = netmod.compare(g, n_clusters=3)
    assert cmp.graph_info["kernel_norm"] == "spectral" and cmp.to_dict()["graph_info"]["include"] == "conv"
    plain = netmod.spectral_clustering(netmod.from_layers([np.ones((3, 2))]), n_clusters=2)
    assert "kernel_norm" not in plain.info


def test_residual_net_null_keeps_blocks_and_ignores_threads(cnn_models):
    torch.manual_seed(1)
    model = cnn_models.resnet18(width=0.0625)
    with torch.no_grad():
        model.layer1[0].conv1.weight[0] = 0.0  # a dead filter: no edges in or out, so left out
        model.layer1[0].conv2.weight[:, 0] = 0.0
    g = netmod.from_torch(model, example_input=torch.zeros(1, 3, 32, 32), include="conv")
    pairs = g["layer_pairs"]
    assert any(d - s > 1 for s, d in pairs)  # skips: not a chain
    runs = [netmod.shuffle_null(g, n_shuffles=5, n_clusters=6, seed=4, n_threads=t, progress=False) for t in (1, 2, 3)]
    for r in runs[1:]:
        np.testing.assert_array_equal(r.samples, runs[0].samples)
    assert runs[0].observed == pytest.approx(netmod.ncut(g, n_clusters=6, seed=4), rel=1e-12)
    blocks = g["layer_blocks"]
    for i in range(3):
        shuffled = netmod.shuffled_weights(g, shuffle="layer", seed=4, index=i)
        assert len(shuffled) == len(blocks)
        dead = g["layer_names"].index("layer1.0.conv1")
        for (s, d), b, sb in zip(pairs, blocks, shuffled):
            keep_rows = np.ones(b.shape[0], bool)
            keep_cols = np.ones(b.shape[1], bool)
            if s == dead:
                keep_rows[0] = False
            if d == dead:
                keep_cols[0] = False
            kept = b[np.ix_(keep_rows, keep_cols)]
            assert sb.shape == kept.shape
            np.testing.assert_array_equal(np.sort(sb.ravel()), np.sort(kept.ravel()))


def test_a_torch_model_passed_as_graph_is_traced_as_from_torch_does():
    torch.manual_seed(2)

    class ResidualMlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(6, 5), nn.Linear(5, 5), nn.Linear(5, 3)

        def forward(self, x):
            h = torch.relu(self.a(x))
            return self.c(torch.relu(self.b(h) + h))

    m = ResidualMlp()
    g = netmod.from_torch(m)
    assert [tuple(p) for p in g["layer_pairs"]] == [(0, 1), (1, 2), (1, 3), (2, 3)]
    assert netmod.ncut(m, n_clusters=3) == netmod.ncut(g, n_clusters=3)
    np.testing.assert_allclose(g["layer_blocks"][2], m.c.weight.detach().double().numpy().T)
