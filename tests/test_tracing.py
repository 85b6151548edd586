"""netmod.tracing: which forwards become a chain of Linear layers, which are refused, and the replay engine."""

import copy
import doctest

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrizations, parametrize, prune

import netmod
import netmod.tracing
from netmod.tracing import MlpReplay, MlpTrace, mlp_weights, trace_mlp


def small_chain(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))


def transposed(*linears):
    """The (in, out) float64 reference of each Linear's weight, read from its state_dict."""
    return [lin.state_dict()["weight"].numpy().astype(np.float64).T for lin in linears]


def assert_weights(weights, expected):
    assert len(weights) == len(expected)
    for w, ref in zip(weights, expected):
        assert w.dtype == np.float64 and w.flags.c_contiguous
        np.testing.assert_array_equal(w, ref)


class Residual(nn.Module):
    """The model of the issue: a skip around the second layer."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(10, 10), nn.Linear(10, 10)

    def forward(self, x):
        h = torch.relu(self.a(x))
        return self.b(h) + h


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 4), nn.Linear(10, 3)

    def forward(self, x):
        return self.b(torch.cat([torch.relu(self.a(x)), x], dim=1))


class Functional(nn.Module):
    """Activations written as functions and tensor methods, and input scaling, instead of modules."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3, self.fc4 = nn.Linear(12, 8), nn.Linear(8, 6), nn.Linear(6, 5), nn.Linear(5, 3)

    def forward(self, x):
        x = x.view(x.size(0), -1) / 255 - 0.5
        h = torch.relu(self.fc1(x))
        h = F.dropout(F.gelu(self.fc2(h)), p=0.3, training=self.training)
        h = 2 * self.fc3(h).sigmoid() - 1
        return F.log_softmax(self.fc4(h), dim=1)


class RegisteredOutOfOrder(nn.Module):
    def __init__(self):
        super().__init__()
        self.last = nn.Linear(4, 3)
        self.first = nn.Linear(6, 5)
        self.middle = nn.Linear(5, 4)

    def forward(self, x):
        return self.last(torch.relu(self.middle(torch.relu(self.first(x)))))


class Block(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)

    def forward(self, x):
        return F.elu(self.fc(x))


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(Block(6, 5), Block(5, 4))
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.encoder(x))


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
        self.a, self.b = nn.Linear(6, 5), nn.Linear(4, 3)

    def forward(self, x):
        return self.b(self.a(x)[:, :4])


class Branch(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(6, 5), nn.Linear(5, 2), nn.Linear(5, 2)

    def forward(self, x):
        h = torch.relu(self.a(x))
        self.c(h)
        return self.b(h)


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 5), nn.Linear(5, 2)

    def forward(self, x):
        h = self.a(x)
        return self.b(torch.relu(h)), h


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 5)

    def forward(self, x, y):
        return self.a(x)


class ControlFlow(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 5)

    def forward(self, x):
        if x.sum() > 0:
            return self.a(x)
        return self.a(-x)


class OwnForward(nn.Linear):
    def forward(self, x):
        return F.linear(x, 2 * self.weight, self.bias)


class Renamed(nn.Linear):
    pass


class ReadsBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 5)
        self.register_buffer("mean", torch.zeros(6))

    def forward(self, x):
        return self.a(x - self.mean)


class Square(nn.Module):
    def forward(self, x):
        return x * x


class SizeAsValue(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 5)

    def forward(self, x):
        return self.a(x) / x.size(1)


class Reduces(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 2)

    def forward(self, x):
        return self.lin(x.sum(dim=2))


class FlattensThreeDims(nn.Module):
    """Runs on (N, 2, 3) only: on the default (2, 6) input x.size(2) fails."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 2)

    def forward(self, x):
        return self.lin(x.reshape(x.size(0), x.size(1) * x.size(2)))


class ReshapesBetween(nn.Module):
    def __init__(self, shape, b_in=4):
        super().__init__()
        self.a, self.b = nn.Linear(6, 4), nn.Linear(b_in, 3)
        self.shape = shape

    def forward(self, x):
        return self.b(torch.relu(self.a(x)).reshape(*self.shape))


def test_residual_model_of_the_issue_is_refused_naming_add():
    with pytest.raises(ValueError, match=r"op 'add' \(fx node 'add', in the model's forward, .*test_tracing\.py:\d+ "
                                         r"\(return self\.b\(h\) \+ h\)\).*combines two tensors"):
        trace_mlp(Residual())
    with pytest.raises(ValueError, match="'add'"):
        mlp_weights(Residual(), example_input=torch.zeros(3, 10))


def test_cat_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"op 'cat' \(fx node 'cat'.*combines two tensors"):
        trace_mlp(Concat())


def test_functional_chain_gives_state_dict_weights_transposed():
    torch.manual_seed(0)
    model = Functional()
    trace = trace_mlp(model, example_input=torch.zeros(2, 3, 4))
    assert isinstance(trace, MlpTrace)
    assert trace.names == ("fc1", "fc2", "fc3", "fc4")
    assert trace.sizes == (12, 8, 6, 5, 3)
    assert_weights(trace.weights, transposed(model.fc1, model.fc2, model.fc3, model.fc4))
    assert_weights(mlp_weights(model), transposed(model.fc1, model.fc2, model.fc3, model.fc4))
    kinds = [(op.kind, op.op, op.layer) for op in trace.ops if op.kind != "metadata"]
    assert kinds == [
        ("input", "input", 0), ("reshape", "view", 0), ("elementwise", "truediv", 0), ("elementwise", "sub", 0),
        ("linear", "Linear", 1), ("elementwise", "relu", 1),
        ("linear", "Linear", 2), ("elementwise", "gelu", 2), ("elementwise", "dropout", 2),
        ("linear", "Linear", 3), ("elementwise", "sigmoid", 3), ("elementwise", "mul", 3), ("elementwise", "sub", 3),
        ("linear", "Linear", 4), ("softmax", "log_softmax", 4), ("output", "output", 4),
    ]
    assert trace.ops[0].shape == (2, 3, 4) and trace.ops[-1].shape == (2, 3)


def test_weights_are_read_only_float64_copies():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    weights = mlp_weights(model)
    assert [w.shape for w in weights] == [(1, 3), (3, 1)]
    for w, lin in zip(weights, (model[0], model[2])):
        assert w.flags.c_contiguous and not w.flags.writeable
        assert not np.shares_memory(w, lin.weight.detach().numpy())
    with pytest.raises(ValueError, match="read-only"):
        weights[1][:] = 123.0
    assert (np.concatenate([w.ravel() for w in mlp_weights(small_chain())]) < 0).any()


def test_double_precision_model():
    model = small_chain().double()
    assert_weights(mlp_weights(model), transposed(model[0], model[2], model[4]))


def test_sequential_names_and_single_linear():
    model = small_chain()
    trace = trace_mlp(model)
    assert trace.names == ("0", "2", "4") and trace.sizes == (6, 5, 4, 3)
    assert_weights(trace.weights, transposed(model[0], model[2], model[4]))
    torch.manual_seed(0)
    linear = nn.Linear(3, 2)
    trace = trace_mlp(linear)
    assert trace.names == ("",) and trace.sizes == (3, 2)
    assert_weights(trace.weights, transposed(linear))


def test_execution_order_not_registration_order():
    torch.manual_seed(0)
    model = RegisteredOutOfOrder()
    assert [name for name, _ in model.named_children()] == ["last", "first", "middle"]
    for example_input in (None, torch.zeros(3, 6)):
        trace = trace_mlp(model, example_input=example_input)
        assert trace.names == ("first", "middle", "last")
        assert_weights(trace.weights, transposed(model.first, model.middle, model.last))


def test_nested_modules_are_traced_through():
    torch.manual_seed(0)
    model = Nested()
    trace = trace_mlp(model)
    assert trace.names == ("encoder.0.fc", "encoder.1.fc", "head")
    assert_weights(trace.weights, transposed(model.encoder[0].fc, model.encoder[1].fc, model.head))
    assert [op.op for op in trace.ops if op.kind == "elementwise"] == ["elu", "elu"]


def test_linear_subclass_keeping_its_forward_is_a_linear():
    torch.manual_seed(0)
    model = nn.Sequential(Renamed(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert_weights(mlp_weights(model), transposed(model[0], model[2]))


def test_sequential_with_flatten_relu_dropout():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 3))
    for example_input in (None, torch.ones(2, 3, 4)):
        assert_weights(mlp_weights(model, example_input=example_input), transposed(model[1], model[4]))


def test_standard_mlp_on_images():
    torch.manual_seed(0)
    sizes = [784, 256, 256, 256, 256, 10]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    model = nn.Sequential(nn.Flatten(), *layers[:-1])
    trace = trace_mlp(model, example_input=torch.zeros(2, 1, 28, 28))
    assert list(trace.sizes) == sizes
    assert trace.ops[1].kind == "reshape" and trace.ops[1].shape == (2, 784)


def test_elementwise_modules_functions_methods_and_constants_are_accepted():
    class AllKinds(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(5, 5), nn.Linear(5, 5), nn.Linear(5, 2)
            self.act = nn.LeakyReLU(0.1)

        def forward(self, x):
            h = self.act(self.a(x * 2 + 1))
            h = torch.tanh(F.softplus(h)).relu()
            h = (1 - self.b(h)).clamp(min=-1, max=1) ** 2
            return torch.softmax(self.c(F.hardtanh(h)), dim=-1)

    torch.manual_seed(0)
    model = AllKinds()
    assert_weights(mlp_weights(model), transposed(model.a, model.b, model.c))


def test_same_shape_reshape_between_layers_is_accepted_other_reshapes_are_not():
    torch.manual_seed(0)
    model = ReshapesBetween((-1, 4))
    assert_weights(mlp_weights(model), transposed(model.a, model.b))
    # Rows of the batch would mix units of one example: (2, 4) into (4, 2).
    with pytest.raises(ValueError, match=r"op 'reshape' .*reshapes \(2, 4\) into \(4, 2\) after a Linear layer"):
        trace_mlp(ReshapesBetween((-1, 2), b_in=2))
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 4), nn.Unflatten(1, (2, 2)))
    with pytest.raises(ValueError, match=r"op 'Unflatten' \(fx node '_3', module '3'\).*after a Linear layer"):
        trace_mlp(model)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 4), nn.Flatten())
    assert [w.shape for w in mlp_weights(model)] == [(6, 4), (4, 4)]


def test_linear_input_must_be_two_dimensional():
    with pytest.raises(ValueError, match=r"input of Linear '' \(the model itself\).*must be 2-D.*\(2, 3, 6\)"):
        trace_mlp(nn.Linear(6, 2), example_input=torch.zeros(2, 3, 6))
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Unflatten(1, (2, 2)), nn.Linear(2, 3))
    with pytest.raises(ValueError, match="Unflatten"):
        trace_mlp(model)


def test_softmax_over_features_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 4), nn.Softmax(dim=1))
    assert_weights(mlp_weights(model), transposed(model[0], model[2]))
    with pytest.raises(ValueError, match="op 'Softmax'.*dimension other than the features"):
        trace_mlp(nn.Sequential(nn.Linear(6, 5), nn.Softmax(dim=0)))


def test_shared_layer_is_refused():
    for example_input in (None, torch.zeros(1, 6)):
        with pytest.raises(ValueError, match=r"Linear 'shared' is called 2 times in forward"):
            trace_mlp(SharedLayer(), example_input=example_input)


def test_unused_layer_is_refused():
    with pytest.raises(ValueError, match="Linear 'unused' never runs"):
        trace_mlp(UnusedLayer())


@pytest.mark.parametrize("module, name", [
    (nn.BatchNorm1d(5), "BatchNorm1d"), (nn.LayerNorm(5), "LayerNorm"), (nn.Conv1d(1, 1, 1), "Conv1d"),
    (nn.PReLU(), "PReLU"),
])
def test_modules_with_parameters_or_buffers_are_refused_by_name(module, name):
    model = nn.Sequential(nn.Linear(6, 5), module, nn.Linear(5, 3))
    with pytest.raises(ValueError, match=rf"op '{name}' \(fx node '_1', module '1'\), which has parameters or buffers"):
        trace_mlp(model)


def test_conv_before_the_first_linear_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Flatten(), nn.Linear(16, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match=r"op 'Conv2d' \(fx node '_0', module '0'\)"):
        trace_mlp(model, example_input=torch.zeros(1, 1, 4, 4))


def test_batchnorm_refused_before_running_and_state_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 3))
    model.train()
    with pytest.raises(ValueError, match="BatchNorm1d"):
        trace_mlp(model, example_input=torch.randn(8, 6))
    assert int(model[1].num_batches_tracked) == 0
    assert all(m.training for m in model.modules())


def test_training_flags_restored():
    model = small_chain()
    model.train()
    model[1].eval()
    modes = [m.training for m in model.modules()]
    trace_mlp(model)
    assert [m.training for m in model.modules()] == modes
    with pytest.raises(ValueError):
        trace_mlp(model, example_input=torch.zeros(1, 7))
    assert [m.training for m in model.modules()] == modes


def test_trace_is_of_eval_mode():
    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 3), nn.Linear(3, 2)

        def forward(self, x):
            h = self.a(x)
            if self.training:
                h = h + torch.randn_like(h)
            return self.b(h)

    model = Noisy().train()
    assert trace_mlp(model).names == ("a", "b")
    assert model.training


@pytest.mark.parametrize("model, op, why", [
    (Slicing(), "getitem", "indexes or slices"),
    (nn.Sequential(nn.Linear(6, 5), Square(), nn.Linear(5, 4)), "mul", "combines two tensors"),
    (SizeAsValue(), "truediv", "size as a value"),
    (Reduces(), "sum", "not known to be elementwise or shape-only"),
    (nn.Sequential(nn.Linear(6, 4), nn.MaxPool1d(2), nn.Linear(2, 4)), "MaxPool1d", "not known to be elementwise"),
])
def test_unsupported_ops_are_refused_by_name(model, op, why):
    with pytest.raises(ValueError, match=rf"op '{op}' \(fx node .*{why}"):
        trace_mlp(model)


def test_parameters_read_in_forward_are_refused():
    with pytest.raises(ValueError, match=r"parameter or buffer '0.weight' .*op 'get_attr'.*F\.linear"):
        trace_mlp(nn.Sequential(OwnForward(4, 3), nn.ReLU(), nn.Linear(3, 2)))
    with pytest.raises(ValueError, match=r"parameter or buffer 'mean' .*fx node 'mean'"):
        trace_mlp(ReadsBuffer())


def test_branch_is_refused():
    with pytest.raises(ValueError, match=r"tensor of fx node 'relu' .* in 2 places \('c', 'b'\): a branch"):
        trace_mlp(Branch())


def test_one_tensor_in_one_tensor_out():
    with pytest.raises(ValueError, match=r"must return one tensor, but it returns tuple of 2 values"):
        trace_mlp(TwoOutputs())
    with pytest.raises(ValueError, match=r"exactly one tensor input, got 2 \(x, y\)"):
        trace_mlp(TwoInputs())


def test_data_dependent_control_flow_is_refused():
    with pytest.raises(ValueError, match="cannot be traced by torch.fx.*TraceError.*control flow") as info:
        trace_mlp(ControlFlow())
    assert isinstance(info.value.__cause__, torch.fx.proxy.TraceError)


def test_lazy_model_needs_example_input():
    model = nn.Sequential(nn.LazyLinear(5), nn.ReLU(), nn.Linear(5, 3))
    with pytest.raises(ValueError, match="lazy parameters; pass example_input"):
        trace_mlp(model)
    trace = trace_mlp(model, example_input=torch.zeros(1, 7))
    assert [w.shape for w in trace.weights] == [(7, 5), (5, 3)]
    assert_weights(trace.weights, transposed(model[0], model[2]))


def test_pruning_masks_are_applied_and_follow_weight_orig():
    model = small_chain(seed=2)
    for idx in (0, 2, 4):
        prune.l1_unstructured(model[idx], name="weight", amount=0.5)
    with torch.no_grad():
        # The result must follow the current weight_orig, not the copy prune's hook made at the last forward.
        model[2].weight_orig.add_(1.0)
    state = model.state_dict()
    expected = [(state[f"{i}.weight_orig"] * state[f"{i}.weight_mask"]).numpy().astype(np.float64).T for i in (0, 2, 4)]
    assert_weights(mlp_weights(model), expected)
    assert sum(np.count_nonzero(w) for w in expected) < sum(w.size for w in expected)
    for idx in (0, 2, 4):
        prune.remove(model[idx], "weight")
    assert_weights(mlp_weights(model), expected)


def test_parametrizations_are_applied():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    parametrizations.weight_norm(model[0])
    with torch.no_grad():
        model[0].parametrizations.weight.original0.mul_(2.0)

    class Negate(nn.Module):
        def forward(self, w):
            return -w

    raw = model[2].weight.detach().clone()
    parametrize.register_parametrization(model[2], "weight", Negate())
    weights = mlp_weights(model)
    g, v = model[0].parametrizations.weight.original0, model[0].parametrizations.weight.original1
    reference = (g * v / v.norm(dim=1, keepdim=True)).detach().numpy().astype(np.float64).T
    np.testing.assert_allclose(weights[0], reference, rtol=1e-6)
    np.testing.assert_array_equal(weights[1], -raw.numpy().astype(np.float64).T)


def test_default_input_failure_carries_the_cause():
    torch.manual_seed(0)
    model = FlattensThreeDims()
    with pytest.raises(ValueError, match=r"default input torch\.zeros\(2, 6\).*'lin'.*IndexError.*pass example_input") \
            as info:
        trace_mlp(model)
    assert isinstance(info.value.__cause__, IndexError)
    assert_weights(mlp_weights(model, example_input=torch.zeros(1, 2, 3)), transposed(model.lin))


def test_bad_example_input_carries_the_cause():
    with pytest.raises(ValueError, match=r"example_input could not be passed through model at fx node '_0'") as info:
        trace_mlp(small_chain(), example_input=torch.zeros(2, 7))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_errors_of_wrong_kinds():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got list"):
        trace_mlp([nn.Linear(2, 2)])
    with pytest.raises(TypeError, match="example_input must be a torch.Tensor, got list"):
        trace_mlp(small_chain(), example_input=[[0.0] * 6])
    with pytest.raises(ValueError, match="model must contain at least one torch.nn.Linear"):
        trace_mlp(nn.Sequential(nn.ReLU(), nn.Tanh()))


def test_tracing_does_not_import_other_netmod_modules():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(netmod.tracing))
    relative = [n for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom) and (n.level or "netmod" in (n.module or ""))]
    assert relative == []


def test_docstring_examples():
    result = doctest.testmod(netmod.tracing, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# The replay engine.

def replay_output(replay, x):
    with torch.no_grad(), replay.eval_mode():
        h, z = replay.forward_cache(x)
        return replay.output(z[replay.n_layers - 1]), h, z


def test_replay_equals_model_for_functional_activations():
    torch.manual_seed(0)
    model = Functional().double()
    replay = MlpReplay(model)
    x = torch.rand(9, 3, 4, dtype=torch.float64) * 255
    out, h, z = replay_output(replay, x)
    with torch.no_grad():
        expected = model.eval()(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    assert replay.sizes == [12, 8, 6, 5, 3] and replay.n_layers == 5
    # Each cached activation is the model's own intermediate: check the first hidden layer by hand.
    x0 = x.view(9, -1) / 255 - 0.5
    torch.testing.assert_close(h[1], torch.relu(model.fc1(x0)), rtol=0, atol=1e-12)
    torch.testing.assert_close(z[2], model.fc2(h[1]), rtol=0, atol=1e-12)
    assert replay.relu_only == [True, False, False]
    replay.check_replay(model, x)


def test_relu_only_layers_are_those_of_relu_and_inactive_dropout():
    class Dropouts(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c, self.d = nn.Linear(6, 5), nn.Linear(5, 4), nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            h = F.dropout(torch.relu(self.a(x)), 0.5, training=self.training)  # off in eval mode
            h = F.dropout(self.b(h).relu(), 0.5, training=True)  # on in eval mode too
            h = nn.functional.relu6(self.c(h))
            return self.d(h)

    model = Dropouts().train()
    assert MlpReplay(model).relu_only == [True, False, False]
    assert model.training


def test_replay_keeps_cached_pre_activations_with_in_place_ops():
    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(6, 5), nn.Linear(5, 3)

        def forward(self, x):
            return self.b(F.relu(self.a(x), inplace=True))

    torch.manual_seed(0)
    replay = MlpReplay(InPlace())
    _, h, z = replay_output(replay, torch.randn(20, 6))
    assert (z[1] < 0).any() and (h[1] >= 0).all()
    torch.testing.assert_close(h[1], z[1].clamp(min=0))


def test_replay_check_catches_what_the_trace_does_not_see():
    # The replay multiplies by the Linear layers' weights; a hook on a Linear module is not replayed.
    model = small_chain()
    replay = MlpReplay(model)
    x = torch.randn(10, 6)
    with torch.no_grad(), replay.eval_mode():
        replay.check_replay(model, x)
        model[4].register_forward_hook(lambda mod, args, out: out + 1)
        with pytest.raises(ValueError, match="not the chain of its Linear layers"):
            replay.check_replay(model, x)


def test_replay_refusals():
    with pytest.raises(ValueError, match="hidden layer"):
        MlpReplay(nn.Linear(6, 3))
    with pytest.raises(ValueError, match="runs Softmax after hidden layer 1; lesions need elementwise"):
        MlpReplay(nn.Sequential(nn.Linear(6, 4), nn.Softmax(dim=1), nn.Linear(4, 3)))
    with pytest.raises(ValueError, match="runs softmax after hidden layer 1"):
        class SoftmaxBetween(nn.Module):
            def __init__(self):
                super().__init__()
                self.a, self.b = nn.Linear(6, 4), nn.Linear(4, 3)

            def forward(self, x):
                return self.b(self.a(x).softmax(-1))

        MlpReplay(SoftmaxBetween())
    with pytest.raises(ValueError, match="'add'"):
        MlpReplay(Residual())


def test_lesion_of_functional_model_equals_its_sequential_twin():
    # The Sequential twin's lesions are checked against full forward passes in test_lesions.py.
    class FunctionalMlp(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Linear(784, 24), nn.Linear(24, 16), nn.Linear(16, 10)

        def forward(self, x):
            return self.c(torch.sigmoid(self.b(torch.relu(self.a(x.view(x.size(0), -1))))))

    torch.manual_seed(0)
    functional = FunctionalMlp().double()
    twin = nn.Sequential(copy.deepcopy(functional.a), nn.ReLU(), copy.deepcopy(functional.b), nn.Sigmoid(),
                         copy.deepcopy(functional.c))
    test = netmod.datasets.load_embedded("test")
    images, labels = test.images[:400], test.labels[:400]
    lab = np.full(784 + 24 + 16 + 10, -1)
    lab[784:808] = np.arange(24) % 3
    lab[808:824] = np.arange(16) % 2
    a = netmod.lesion_importance(functional, lab, (images, labels), n_draws=4, seed=1, progress=False)
    b = netmod.lesion_importance(twin, lab, (images, labels), n_draws=4, seed=1, progress=False)
    assert len(a.table) == 5
    assert a.to_dict()["table"] == b.to_dict()["table"]
    np.testing.assert_array_equal(a.null_drops, b.null_drops)


def test_forward_hooks_are_refused_but_pruning_hooks_are_not():
    from torch.nn.utils import prune

    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    prune.l1_unstructured(model[0], "weight", amount=3)  # a forward pre-hook that only refreshes `weight`
    weights = mlp_weights(model)
    assert int((weights[0] == 0).sum()) == 3
    handle = model[2].register_forward_hook(lambda mod, args, out: out + args[0].sum())
    with pytest.raises(ValueError, match=r"module '2' \(Linear\) has a forward hook.*outside forward"):
        mlp_weights(model)
    handle.remove()
    handle = model[1].register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    with pytest.raises(ValueError, match=r"module '1' \(ReLU\) has a forward pre-hook"):
        mlp_weights(model)
    handle.remove()
    handle = nn.modules.module.register_module_forward_hook(lambda mod, args, out: None)
    try:
        with pytest.raises(ValueError, match="a global forward hook is registered"):
            mlp_weights(model)
    finally:
        handle.remove()
    np.testing.assert_array_equal(mlp_weights(model)[1], weights[1])
