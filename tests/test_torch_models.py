import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, prune

import netmod
from netmod.torch_models import from_torch, layer_weights_from_module


def small_chain(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)
    )


def expected_from_state_dict(model, keys):
    state = model.state_dict()
    return [state[key].detach().numpy().astype(np.float64).T for key in keys]


class Square(nn.Module):
    def forward(self, x):
        return x * x


class RegisteredOutOfOrder(nn.Module):
    def __init__(self):
        super().__init__()
        self.last = nn.Linear(4, 3)
        self.first = nn.Linear(6, 5)
        self.middle = nn.Linear(5, 4)

    def forward(self, x):
        return self.last(torch.relu(self.middle(torch.relu(self.first(x)))))


class SharedLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(6, 5)
        self.shared = nn.Linear(5, 5)

    def forward(self, x):
        return self.shared(torch.relu(self.shared(torch.relu(self.inp(x)))))


class UnusedLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Linear(6, 5)
        self.unused = nn.Linear(5, 3)

    def forward(self, x):
        return self.used(x)


class Slicing(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 5)
        self.b = nn.Linear(4, 3)

    def forward(self, x):
        return self.b(self.a(x)[:, :4])


class NeedsThreeDims(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 2)

    def forward(self, x):
        return self.lin(x.sum(dim=2))


def test_weights_are_state_dict_weights_transposed():
    model = small_chain()
    weights = layer_weights_from_module(model)
    expected = expected_from_state_dict(model, ["0.weight", "2.weight", "4.weight"])
    assert [w.shape for w in weights] == [(6, 5), (5, 4), (4, 3)]
    for w, ref in zip(weights, expected):
        assert w.dtype == np.float64
        assert w.flags.c_contiguous
        np.testing.assert_array_equal(w, ref)
    assert (np.concatenate([w.ravel() for w in weights]) < 0).any()


def test_weights_are_copies_not_views():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    before = model[2].weight.detach().clone()
    weights = layer_weights_from_module(model)
    assert weights[1].shape == (3, 1) and weights[1].flags.c_contiguous
    weights[1][:] = 123.0
    torch.testing.assert_close(model[2].weight.detach(), before)


def test_double_precision_model():
    model = small_chain().double()
    weights = layer_weights_from_module(model)
    np.testing.assert_array_equal(weights[2], model[4].weight.detach().numpy().T)


def test_single_linear_model():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    weights = layer_weights_from_module(model)
    assert len(weights) == 1
    np.testing.assert_array_equal(weights[0], model.weight.detach().numpy().T)
    graph = from_torch(model)
    assert graph.vcount() == 5
    assert graph.ecount() == 6


def test_graph_of_small_chain():
    model = small_chain()
    graph = from_torch(model)
    assert graph.vcount() == 6 + 5 + 4 + 3
    assert graph.ecount() == 6 * 5 + 5 * 4 + 4 * 3
    assert not graph.is_directed()
    assert list(graph["layer_sizes"]) == [6, 5, 4, 3]
    assert graph.vs["layer"] == [0] * 6 + [1] * 5 + [2] * 4 + [3] * 3
    assert graph.vs["unit"] == list(range(6)) + list(range(5)) + list(range(4)) + list(range(3))
    expected = expected_from_state_dict(model, ["0.weight", "2.weight", "4.weight"])
    for w, ref in zip(graph["layer_weights"], expected):
        np.testing.assert_array_equal(w, ref)


def test_edge_weights_are_absolute_weights():
    model = small_chain(seed=3)
    graph = from_torch(model)
    expected = expected_from_state_dict(model, ["0.weight", "2.weight", "4.weight"])
    seen = set()
    for edge in graph.es:
        u, v = sorted(
            (graph.vs[edge.source], graph.vs[edge.target]), key=lambda vx: vx["layer"]
        )
        assert v["layer"] == u["layer"] + 1
        ref = expected[u["layer"]][u["unit"], v["unit"]]
        assert edge["weight"] == abs(ref)
        seen.add((u["layer"], u["unit"], v["unit"]))
    assert len(seen) == sum(w.size for w in expected)


def test_adjacency_matches_layered_reference(layered_adjacency):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 4), nn.Softmax(dim=1))
    prune.random_unstructured(model[0], name="weight", amount=0.4)
    expected = [
        (model[0].weight_orig * model[0].weight_mask).detach().numpy().astype(np.float64).T,
        model[2].weight.detach().numpy().astype(np.float64).T,
    ]
    graph = from_torch(model)
    adjacency = np.array(graph.get_adjacency(attribute="weight").data, dtype=np.float64)
    np.testing.assert_array_equal(adjacency, layered_adjacency(expected))


def test_standard_mlp_graph():
    torch.manual_seed(0)
    sizes = [784, 256, 256, 256, 256, 10]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    model = nn.Sequential(nn.Flatten(), *layers[:-1])
    graph = from_torch(model, example_input=torch.zeros(2, 1, 28, 28))
    assert graph.vcount() == 1818
    nonzeros = sum(
        int(torch.count_nonzero(t)) for k, t in model.state_dict().items() if k.endswith("weight")
    )
    assert graph.ecount() == nonzeros
    assert list(graph["layer_sizes"]) == sizes


def test_execution_order_not_registration_order():
    torch.manual_seed(0)
    model = RegisteredOutOfOrder()
    assert [name for name, _ in model.named_children()] == ["last", "first", "middle"]
    expected = expected_from_state_dict(model, ["first.weight", "middle.weight", "last.weight"])
    for example_input in (None, torch.zeros(3, 6)):
        weights = layer_weights_from_module(model, example_input=example_input)
        assert [w.shape for w in weights] == [(6, 5), (5, 4), (4, 3)]
        for w, ref in zip(weights, expected):
            np.testing.assert_array_equal(w, ref)
    assert list(from_torch(model)["layer_sizes"]) == [6, 5, 4, 3]


def test_sequential_with_flatten_relu_dropout():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 3)
    )
    expected = expected_from_state_dict(model, ["1.weight", "4.weight"])
    for example_input in (None, torch.ones(2, 3, 4)):
        weights = layer_weights_from_module(model, example_input=example_input)
        for w, ref in zip(weights, expected):
            np.testing.assert_array_equal(w, ref)
    assert from_torch(model).vcount() == 12 + 5 + 3


def test_training_state_and_hooks_restored():
    model = small_chain()
    model.train()
    model[1].eval()
    modes = [m.training for m in model.modules()]
    layer_weights_from_module(model)
    assert [m.training for m in model.modules()] == modes
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError):
        layer_weights_from_module(model, example_input=torch.zeros(1, 7))
    assert [m.training for m in model.modules()] == modes
    assert all(not m._forward_hooks for m in model.modules())


def test_batchnorm_running_stats_untouched_on_error():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 3))
    model.train()
    with pytest.raises(ValueError, match="BatchNorm1d"):
        layer_weights_from_module(model, example_input=torch.randn(8, 6))
    assert int(model[1].num_batches_tracked) == 0
    assert model.training


def test_pruned_weights_are_masked():
    model = small_chain(seed=2)
    full = sum(w.size for w in layer_weights_from_module(model))
    for idx in (0, 2, 4):
        prune.l1_unstructured(model[idx], name="weight", amount=0.5)
    with torch.no_grad():
        # The result must follow the current weight_orig, not a copy taken when pruning.
        model[2].weight_orig.add_(1.0)
    state = model.state_dict()
    expected = [
        (state[f"{i}.weight_orig"] * state[f"{i}.weight_mask"]).numpy().astype(np.float64).T
        for i in (0, 2, 4)
    ]
    weights = layer_weights_from_module(model)
    for w, ref in zip(weights, expected):
        np.testing.assert_array_equal(w, ref)
    nonzeros = sum(np.count_nonzero(ref) for ref in expected)
    assert nonzeros < full
    graph = from_torch(model)
    assert graph.ecount() == nonzeros
    assert graph.vcount() == 18

    for idx in (0, 2, 4):
        prune.remove(model[idx], "weight")
    assert "0.weight_orig" not in model.state_dict()
    after = layer_weights_from_module(model)
    for w, ref in zip(after, expected_from_state_dict(model, ["0.weight", "2.weight", "4.weight"])):
        np.testing.assert_array_equal(w, ref)
    for w, ref in zip(after, expected):
        np.testing.assert_array_equal(w, ref)
    assert from_torch(model).ecount() == nonzeros


def test_parametrized_linear_uses_effective_weight():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    parametrizations.weight_norm(model[0])
    with torch.no_grad():
        model[0].parametrizations.weight.original0.mul_(2.0)
    weights = layer_weights_from_module(model)
    np.testing.assert_allclose(weights[0], model[0].weight.detach().numpy().T, rtol=1e-6)


def test_lazy_linear_needs_example_input():
    model = nn.Sequential(nn.LazyLinear(5), nn.ReLU(), nn.Linear(5, 3))
    with pytest.raises(ValueError, match="lazy"):
        layer_weights_from_module(model)
    weights = layer_weights_from_module(model, example_input=torch.zeros(1, 7))
    assert [w.shape for w in weights] == [(7, 5), (5, 3)]


def test_modules_outside_the_chain_are_allowed():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 4), nn.Unflatten(1, (2, 2)))
    assert [w.shape for w in layer_weights_from_module(model)] == [(6, 4), (4, 4)]


def test_public_from_torch_gives_the_same_graph():
    model = RegisteredOutOfOrder()
    ours, public = from_torch(model), netmod.from_torch(model, example_input=torch.zeros(1, 6))
    assert public["layer_sizes"] == ours["layer_sizes"]
    assert public.get_edgelist() == ours.get_edgelist()
    assert public.es["weight"] == ours.es["weight"]


def test_import_netmod_does_not_import_torch():
    code = "import netmod, sys; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("func", [layer_weights_from_module, from_torch])
def test_error_not_a_module(func):
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got list"):
        func([nn.Linear(2, 2)])


def test_error_no_linear():
    with pytest.raises(ValueError, match="model must contain at least one torch.nn.Linear"):
        layer_weights_from_module(nn.Sequential(nn.ReLU(), nn.Tanh()))


def test_error_conv2d_in_chain():
    model = nn.Sequential(
        nn.Conv2d(1, 1, 3, padding=1), nn.Flatten(), nn.Linear(16, 4), nn.ReLU(), nn.Linear(4, 2)
    )
    with pytest.raises(ValueError, match=r"not a chain of Linear layers.*Conv2d"):
        from_torch(model, example_input=torch.zeros(1, 1, 4, 4))


def test_error_conv1d_between_linears_default_input():
    model = nn.Sequential(nn.Linear(6, 5), nn.Conv1d(1, 1, 1), nn.Linear(5, 4))
    model(torch.zeros(1, 6))
    with pytest.raises(ValueError, match=r"not a chain of Linear layers.*'1' \(Conv1d\)"):
        layer_weights_from_module(model)


def test_error_parameter_free_unknown_module_between_linears():
    model = nn.Sequential(nn.Linear(6, 5), Square(), nn.Linear(5, 4))
    with pytest.raises(ValueError, match=r"'1' \(Square\).*not a known elementwise"):
        layer_weights_from_module(model)


def test_error_weight_sharing():
    with pytest.raises(ValueError, match="Linear 'shared' ran 2 times"):
        layer_weights_from_module(SharedLayer())
    with pytest.raises(ValueError, match="Linear 'shared' ran 2 times"):
        layer_weights_from_module(SharedLayer(), example_input=torch.zeros(1, 6))


def test_error_linear_never_called():
    with pytest.raises(ValueError, match="Linear 'unused' never ran"):
        layer_weights_from_module(UnusedLayer())


def test_error_sizes_do_not_chain():
    with pytest.raises(
        ValueError, match=r"Linear 'a' has out_features=5 .* 'b', has in_features=4"
    ):
        from_torch(Slicing())


def test_error_bad_example_input():
    model = small_chain()
    with pytest.raises(ValueError, match="example_input could not be passed through model") as info:
        layer_weights_from_module(model, example_input=torch.zeros(2, 7))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_error_no_default_input_runs():
    torch.manual_seed(0)
    model = NeedsThreeDims()
    with pytest.raises(ValueError, match="pass example_input"):
        layer_weights_from_module(model)
    weights = layer_weights_from_module(model, example_input=torch.zeros(1, 6, 3))
    np.testing.assert_array_equal(weights[0], model.lin.weight.detach().numpy().T)
