"""The torchvision-topology test architectures, and what from_torch says of them today.

Parameter counts at full width are torchvision's published ones (ResNet-18
11,689,512; ResNet-50 25,557,032), so the topology is torchvision's. Until
from_torch traces convolutions, every one of them is refused with an error
naming the first op it cannot place: never a partial graph.
"""

import pytest

import netmod

torch = pytest.importorskip("torch")


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_resnets_have_torchvisions_parameter_counts(cnn_models):
    assert n_params(cnn_models.resnet18()) == 11_689_512
    assert n_params(cnn_models.resnet50()) == 25_557_032


@pytest.mark.parametrize("name,shape,out,message", [
    ("small_cnn", (2, 1, 28, 28), (2, 10), "Conv2d"),
    ("vgg16_cifar", (2, 3, 32, 32), (2, 10), "Conv2d"),
    ("resnet18", (2, 3, 64, 64), (2, 1000), "Conv2d"),
    ("resnet50", (2, 3, 64, 64), (2, 1000), "Conv2d"),
    ("InceptionBlock", (2, 192, 8, 8), (2, 256, 8, 8), "at least one torch.nn.Linear"),
])
def test_architectures_run_and_are_refused_naming_the_op(cnn_models, name, shape, out, message):
    kwargs = {} if name == "InceptionBlock" else {"width": 0.125}
    model = getattr(cnn_models, name)(**kwargs).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        assert tuple(model(x).shape) == out
    with pytest.raises(ValueError, match=message):
        netmod.from_torch(model, example_input=x)


def test_vgg_counts_4224_conv_filters(cnn_models):
    convs = [m for m in cnn_models.vgg16_cifar().modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 13 and sum(m.out_channels for m in convs) == 4224
    small = [m for m in cnn_models.small_cnn().modules() if isinstance(m, torch.nn.Conv2d)]
    assert sum(m.out_channels for m in small) == 192
