"""netmod.torch_models: the Keras-like MLP, and weights read from saved files in an unambiguous order."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from netmod.torch_models import keras_like_mlp, load_weights


def transposed(*linears):
    return [lin.weight.detach().numpy().astype(np.float64).T for lin in linears]


def assert_weights(weights, expected):
    assert len(weights) == len(expected)
    for w, ref in zip(weights, expected):
        np.testing.assert_array_equal(w, ref)


class EqualHidden(nn.Module):
    """Three equal-shaped hidden layers, registered (and so saved) out of execution order."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(6, 5)
        self.h2 = nn.Linear(5, 5)
        self.h1 = nn.Linear(5, 5)
        self.h3 = nn.Linear(5, 5)
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        for layer in (self.inp, self.h1, self.h2, self.h3):
            x = torch.relu(layer(x))
        return self.out(x)


class NamedChain(nn.Module):
    """Distinct shapes: only one order chains, whatever the order of the keys."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(4, 3)
        self.inp = nn.Linear(7, 5)
        self.mid = nn.Linear(5, 4)

    def forward(self, x):
        return self.out(torch.relu(self.mid(torch.relu(self.inp(x)))))


class Cyclic(nn.Module):
    """(4, 5) then (5, 4), or (5, 4) then (4, 5): two orders chain."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 5)
        self.b = nn.Linear(5, 4)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class ScriptedCustom(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 6)
        self.b = nn.Linear(6, 3)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.b(h + x)


def test_import_netmod_does_not_import_torch():
    code = "import netmod, sys; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_keras_like_mlp_is_glorot_uniform_with_zero_biases():
    model = keras_like_mlp([30, 20, 10], dropout=0.5, seed=3)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    for lin in linears:
        bound = (6.0 / (lin.in_features + lin.out_features)) ** 0.5
        largest = float(lin.weight.detach().abs().max())
        assert 0.9 * bound < largest <= bound
        assert float(lin.bias.detach().abs().sum()) == 0.0
    again = keras_like_mlp([30, 20, 10], dropout=0.5, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_state_dict_of_equal_shaped_layers_out_of_order_is_refused(tmp_path):
    torch.save(EqualHidden().state_dict(), tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"'h1.weight', 'h2.weight', 'h3.weight' chain in more than one order"
                                         r".*netmod\.from_torch"):
        load_weights(tmp_path / "m.pt")


def test_state_dict_of_cyclic_shapes_is_refused(tmp_path):
    torch.save(Cyclic().state_dict(), tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"'a.weight', 'b.weight' chain in more than one order"):
        load_weights(tmp_path / "m.pt")


def test_sequential_with_equal_shaped_layers_is_ordered_by_index(tmp_path):
    # Twelve layers: index 10 and 11 sort after 9 as numbers, not as strings.
    torch.manual_seed(0)
    layers = [nn.Linear(6, 4)] + [nn.Linear(4, 4) for _ in range(10)] + [nn.Linear(4, 2)]
    model = nn.Sequential(*layers)
    state = model.state_dict()
    # Keys saved in another order than the indices: the order comes from the names, not the file.
    shuffled = {k: state[k] for k in sorted(state, key=lambda k: (k.endswith("bias"), k))}
    assert list(shuffled)[:3] == ["0.weight", "1.weight", "10.weight"]
    torch.save(shuffled, tmp_path / "m.pt")
    assert_weights(load_weights(tmp_path / "m.pt", sizes=[6] + [4] * 11 + [2]), transposed(*layers))
    wrapped = nn.Module()
    wrapped.net = nn.Sequential(model[:3], model[3:])  # nested: keys "net.0.2.weight", "net.1.0.weight", ...
    torch.save(wrapped.state_dict(), tmp_path / "w.pt")
    assert_weights(load_weights(tmp_path / "w.pt"), transposed(*layers))


def test_sequential_keys_with_two_prefixes_are_refused(tmp_path):
    model = nn.Module()
    model.a = nn.Sequential(nn.Linear(3, 3))
    model.b = nn.Sequential(nn.Linear(3, 3))
    torch.save(model.state_dict(), tmp_path / "m.pt")
    with pytest.raises(ValueError, match="more than one order"):
        load_weights(tmp_path / "m.pt")


def test_unique_chain_of_named_layers_is_accepted_in_chain_order(tmp_path):
    torch.manual_seed(0)
    model = NamedChain()
    assert list(model.state_dict())[0] == "out.weight"
    torch.save(model.state_dict(), tmp_path / "m.pt")
    assert_weights(load_weights(tmp_path / "m.pt", sizes=[7, 5, 4, 3]), transposed(model.inp, model.mid, model.out))


def test_weights_that_chain_in_no_order_are_refused(tmp_path):
    torch.save({"a.weight": torch.zeros(5, 4), "b.weight": torch.zeros(3, 6)}, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"a.weight \(4, 5\), b.weight \(6, 3\)\) do not chain in any order"):
        load_weights(tmp_path / "m.pt")
    torch.save({"a.bias": torch.zeros(5)}, tmp_path / "b.pt")
    with pytest.raises(ValueError, match=r"a\.bias \(1-D, without a Linear weight\)"):
        load_weights(tmp_path / "b.pt")
    torch.save({"step": 3}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="holds no 2-D weight tensors"):
        load_weights(tmp_path / "c.pt")


def test_torchscript_of_a_custom_module_is_refused(tmp_path):
    torch.jit.save(torch.jit.script(ScriptedCustom()), tmp_path / "s.pt")
    with pytest.raises(ValueError, match=r"TorchScript archive of a \S*ScriptedCustom, not of an nn.Sequential"):
        load_weights(tmp_path / "s.pt")


def test_torchscript_of_a_sequential_holding_a_custom_module_is_refused(tmp_path):
    model = nn.Sequential(nn.Linear(6, 6), nn.ReLU(), ScriptedCustom())
    torch.jit.save(torch.jit.script(model), tmp_path / "s.pt")
    with pytest.raises(ValueError, match=r"whose module '2' is a \S*ScriptedCustom, not a built-in torch.nn module"):
        load_weights(tmp_path / "s.pt")


def test_torchscript_of_a_sequential_is_accepted(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 5), nn.Dropout(0.1),
                          nn.Sequential(nn.Linear(5, 5), nn.ReLU()), nn.Linear(5, 2), nn.Softmax(dim=1))
    torch.jit.save(torch.jit.script(model), tmp_path / "s.pt")
    got = load_weights(tmp_path / "s.pt", sizes=[6, 5, 5, 5, 2])
    assert_weights(got, transposed(model[1], model[3], model[5][0], model[6]))


@pytest.mark.parametrize("extra", ["batchnorm", "layernorm", "orphan-bias", "pruned-without-mask"])
def test_state_dicts_with_other_than_linear_tensors_are_refused(tmp_path, extra):
    if extra == "batchnorm":
        model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
        state, match = model.state_dict(), r"1\.running_mean \(1-D\)"
    elif extra == "layernorm":
        model = nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5), nn.Linear(5, 3))
        state, match = model.state_dict(), r"1\.weight \(1-D\)"
    elif extra == "orphan-bias":
        state = keras_like_mlp([6, 5, 3]).state_dict()
        state["7.bias"] = torch.zeros(3)
        match = r"7\.bias \(1-D, without a Linear weight\)"
    else:
        state = keras_like_mlp([6, 5, 3]).state_dict()
        state["0.weight_orig"] = state.pop("0.weight")
        match = r"0\.weight_orig \(pruned, without a weight_mask"
    torch.save(state, tmp_path / "m.pt")
    with pytest.raises(ValueError, match=match) as info:
        load_weights(tmp_path / "m.pt")
    assert "netmod.from_torch" in str(info.value)


# --- networks: TorchScript nn.Sequential CNNs rebuilt from their attributes, CNN state_dicts refused ---


def script(model, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(model), str(path))
    return path


def random_bn(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                if m.affine:
                    m.weight.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.1)
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
    return model


def settings_net():
    """Non-default settings everywhere: strides, dilation, 'same' and reflect padding, groups, BN eps and
    affine=False, ceil_mode, count_include_pad, activation parameters, a nested Sequential."""
    return random_bn(nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=2, padding=2, dilation=2, groups=2, padding_mode="reflect"),
        nn.BatchNorm2d(4, eps=1e-3, momentum=0.3), nn.LeakyReLU(0.2),
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.Sequential(nn.Conv2d(4, 6, 3, padding="same", bias=False), nn.BatchNorm2d(6, affine=False), nn.ELU(0.5)),
        nn.ZeroPad2d((1, 0, 2, 1)), nn.AvgPool2d(2, count_include_pad=False), nn.Hardtanh(-2.0, 3.0),
        nn.AdaptiveAvgPool2d((2, 3)), nn.Dropout2d(0.3), nn.Flatten(), nn.Linear(36, 5), nn.Softmax(dim=1),
    ))


def cnns(cnn_models):
    torch.manual_seed(0)
    return {
        "small_cnn": (cnn_models.small_cnn(width=0.25), (1, 28, 28)),
        "vgg16_cifar": (random_bn(cnn_models.vgg16_cifar(width=0.125)), (3, 32, 32)),
        "settings": (settings_net(), (2, 17, 19)),
        "conv1d": (random_bn(nn.Sequential(nn.Conv1d(3, 4, 5, stride=2), nn.BatchNorm1d(4), nn.ReLU(),
                                           nn.MaxPool1d(2), nn.Conv1d(4, 2, 1))), (3, 30)),
        "conv3d": (nn.Sequential(nn.Conv3d(1, 2, 3), nn.ReLU(), nn.AdaptiveMaxPool3d(2), nn.Flatten(),
                                 nn.Linear(16, 3)), (1, 6, 6, 6)),
    }


@pytest.mark.parametrize("name", ["small_cnn", "vgg16_cifar", "settings", "conv1d", "conv3d"])
def test_torchscript_cnn_gives_the_live_models_trace(name, cnn_models, tmp_path):
    from netmod.torch_models import load_network
    from netmod.tracing import trace_network

    model, shape = cnns(cnn_models)[name]
    model.eval()
    path = script(model, tmp_path / "m.pt")
    x = torch.zeros(1, *shape)
    for include, norm in (("all", "l1"), ("conv", "l2")):
        want = trace_network(model, example_input=x, include=include, kernel_norm=norm)
        for got in (load_network(path, include=include, kernel_norm=norm, input_shape=shape),
                    *((load_network(path, include=include, kernel_norm=norm),) if name != "settings" else ())):
            assert (got.names, got.kinds, got.sizes, got.pairs) == (want.names, want.kinds, want.sizes, want.pairs)
            assert got.folded == want.folded
            for a, b in zip(got.blocks, want.blocks):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)


def test_torchscript_cnn_is_rebuilt_as_an_equivalent_sequential(cnn_models, tmp_path):
    from netmod.torch_models import _script_network

    for name, (model, shape) in cnns(cnn_models).items():
        model.eval()
        rebuilt = _script_network(str(script(model, tmp_path / f"{name}.pt"))).eval()
        assert [type(m) for m in rebuilt.modules()] == [type(m) for m in model.modules()]
        x = torch.randn(3, *shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


def test_torchscript_cnn_input_shape_is_inferred_or_checked(cnn_models, tmp_path):
    from netmod.torch_models import load_network

    model, _ = cnns(cnn_models)["small_cnn"]
    path = script(model.eval(), tmp_path / "m.pt")
    assert load_network(path).sizes[0] == 1  # 28x28, the smallest square the Linear layer fits
    with pytest.raises(ValueError, match=r"input_shape must be a tuple of positive ints .*got \(1, 0, 28\)"):
        load_network(path, input_shape=(1, 0, 28))
    with pytest.raises(ValueError, match="could not be passed through model"):
        load_network(path, input_shape=(1, 20, 20))
    wide = script(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(7, 2)), tmp_path / "w.pt")
    with pytest.raises(ValueError, match=r"no input of 1 channels and equal sides 1\.\.1024 runs .*pass input_shape"):
        load_network(wide)


def test_torchscript_custom_forward_is_refused_pointing_to_torch_export(tmp_path):
    from netmod.torch_models import load_network

    path = script(ScriptedCustom(), tmp_path / "s.pt")
    with pytest.raises(ValueError, match=r"ScriptedCustom, not of an nn.Sequential.*cannot be read without running "
                                         r"it.*torch\.export\.save\(torch\.export\.export\(model\.eval\(\)"):
        load_network(path)
    path = script(nn.Sequential(nn.Conv2d(2, 2, 1), ScriptedCustom()), tmp_path / "t.pt")
    with pytest.raises(ValueError, match=r"module '1' is a \S*ScriptedCustom, not a built-in torch.nn module.*"
                                         r"torch\.export"):
        load_network(path)
    with pytest.raises(ValueError, match=r"of an nn.Sequential.*torch\.export"):
        load_weights(script(ScriptedCustom(), tmp_path / "u.pt"))


def test_cnn_state_dict_is_refused_saying_what_to_save(tmp_path):
    from netmod.torch_models import load_network

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    torch.save(model.state_dict(), tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"state_dict of a convolutional network \(conv kernels 0\.weight "
                                         r"\(2, 1, 3, 3\); 8 other tensors: 0\.bias, 1\.weight, .*"
                                         r"cannot say the architecture.*"
                                         r"torch\.export\.save\(.*'model\.pt2'\).*TorchScript of an nn\.Sequential"):
        load_weights(tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"not a torch.export \(.pt2\) or TorchScript archive; a state_dict .*cannot "
                                         r"say the architecture"):
        load_network(tmp_path / "m.pt")


def test_load_weights_points_a_cnn_torchscript_to_load_network(tmp_path):
    path = script(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3)), tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"archive of a network whose module '0' is a Conv2d, not an MLP; read it "
                                         r"with netmod\.torch_models\.load_network"):
        load_weights(path)


def test_pt2_takes_no_input_shape(tmp_path):
    from netmod.torch_models import load_network

    m = nn.Sequential(nn.Conv2d(1, 2, 3)).eval()
    torch.export.save(torch.export.export(m, (torch.zeros(1, 1, 5, 5),)), tmp_path / "m.pt2")
    assert load_network(tmp_path / "m.pt2").sizes == (1, 2)
    with pytest.raises(ValueError, match="input_shape is for TorchScript archives"):
        load_network(tmp_path / "m.pt2", input_shape=(1, 5, 5))
