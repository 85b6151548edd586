"""The torchvision-topology test architectures, and what from_torch says of them today.

Parameter counts at full width are torchvision's published ones (ResNet-18
11,689,512; ResNet-50 25,557,032), so the topology is torchvision's. from_torch
turns each into the graph of all its units (or of its conv filters), which the
kernel clusters block by block exactly as it would its CSR adjacency.
"""

import numpy as np
import pytest

import netmod

torch = pytest.importorskip("torch")


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_resnets_have_torchvisions_parameter_counts(cnn_models):
    assert n_params(cnn_models.resnet18()) == 11_689_512
    assert n_params(cnn_models.resnet50()) == 25_557_032


@pytest.mark.parametrize("name,shape,out", [
    ("small_cnn", (2, 1, 28, 28), (2, 10)),
    ("vgg16_cifar", (2, 3, 32, 32), (2, 10)),
    ("resnet18", (2, 3, 64, 64), (2, 1000)),
    ("resnet50", (2, 3, 64, 64), (2, 1000)),
    ("InceptionBlock", (2, 192, 8, 8), (2, 256, 8, 8)),
])
def test_architectures_become_graphs_of_all_their_units(cnn_models, name, shape, out):
    kwargs = {} if name == "InceptionBlock" else {"width": 0.125}
    model = getattr(cnn_models, name)(**kwargs).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        assert tuple(model(x).shape) == out
    layers = [(path, m) for path, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    units = {path: m.out_channels if isinstance(m, torch.nn.Conv2d) else m.out_features for path, m in layers}
    g = netmod.from_torch(model, example_input=x)
    assert g.vcount() == shape[1] + sum(units.values())
    assert g["layer_names"][0] == "input" and sorted(g["layer_names"][1:]) == sorted(units)
    assert [g["layer_sizes"][i] for i in range(1, len(units) + 1)] == [units[n] for n in g["layer_names"][1:]]
    conv = netmod.from_torch(model, example_input=x, include="conv", kernel_norm="induced-l1")
    n_conv = sum(v for p, v in units.items() if isinstance(model.get_submodule(p), torch.nn.Conv2d))
    assert conv.vcount() == n_conv and set(conv.vs["kind"]) == {"conv2d"}
    assert conv["kernel_norm"] == "induced-l1" and conv["include"] == "conv"
    # The blocks the kernel clusters are the graph's edges: the same n-cut and spectrum as its CSR adjacency.
    adjacency = conv.get_adjacency_sparse(attribute="weight")
    p = netmod.spectral_clustering(conv, n_clusters=4, seed=0)
    q = netmod.spectral_clustering(adjacency, n_clusters=4, seed=0)
    assert p.info["operator"] in ("layered", "blocks") and q.info["operator"] == "csr"
    np.testing.assert_allclose(p.eigenvalues, q.eigenvalues, atol=1e-8)
    assert netmod.ncut(conv, p.labels) == pytest.approx(netmod.ncut(adjacency, p.labels), rel=1e-12)


def test_vgg_counts_4224_conv_filters(cnn_models):
    convs = [m for m in cnn_models.vgg16_cifar().modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13 and sum(m.out_channels for m in convs) == 4224
    small = [m for m in cnn_models.small_cnn().modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(m.out_channels for m in small) == 192
