"""A PyTorch model's forward traced with torch.fx (or read from torch.export's ATen graph) into layers.

:func:`trace_network` is the one way a torch model becomes a graph in
netmod (``netmod.from_torch``); :func:`trace_mlp` is the MLP-only trace that
lesion analysis replays. ``torch.fx`` records every operation of ``forward``
(modules, functions such as ``torch.relu`` and ``+``, tensor methods), so a
skip connection or a concatenation written as plain code is seen: placed in
the graph by trace_network, refused by trace_mlp, never mistaken for a chain.
A walk over the recorded graph gives every tensor the layer whose units its
features are (see :class:`TracedOp`); one handler per
kind of op (``_HANDLERS``) decides what an op does to them.

:class:`MlpReplay` replays a traced MLP layer by layer with cached
activations and low-rank updates, which lesion analysis needs.

:func:`trace_network` gives any network's unit graph (REFERENCE.md 8) as weight blocks
between layers; :func:`trace_exported` gives the same from a ``torch.export`` program's ATen
graph, a second front end over the same walk (``_NetWalk``).

This module imports torch at top level; netmod imports it only when a torch
model is analysed, so ``import netmod`` stays torch-free. It imports no other
netmod module.
"""

from __future__ import annotations

import builtins
import contextlib
import operator
import os
import re
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import fx, nn
from torch.nn import functional as F

__all__ = ["MlpReplay", "MlpTrace", "NetworkTrace", "TracedOp", "mlp_weights", "trace_exported", "trace_mlp",
           "trace_network", "trace_serialized"]

_BUDGET = 1 << 23  # floats per batched activation tensor (32 MiB in float32)
_CHAIN = "netmod's MLP graph is a chain of Linear layers with elementwise operations between them"

# Parameter-free torch.nn modules, by exact type (a subclass may override
# forward with anything), and what each computes in eval mode: "relu",
# "identity" or "other" (some other elementwise function).
_ELEMENTWISE_MODULES = {
    nn.Identity: "identity",
    nn.Dropout: "identity",
    nn.Dropout1d: "identity",
    nn.Dropout2d: "identity",
    nn.Dropout3d: "identity",
    nn.AlphaDropout: "identity",
    nn.FeatureAlphaDropout: "identity",
    nn.ReLU: "relu",
    **{
        t: "other"
        for t in (
            nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh,
            nn.Sigmoid, nn.LogSigmoid, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Hardshrink,
            nn.Softshrink, nn.Tanhshrink, nn.Softsign, nn.Softplus, nn.Threshold,
        )
    },
}
_SOFTMAX_MODULES = frozenset({nn.Softmax, nn.Softmin, nn.LogSoftmax})
_RESHAPE_MODULES = frozenset({nn.Flatten, nn.Unflatten})

_DROPOUT_FUNCTIONS = frozenset(
    {F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout}
)
_ELEMENTWISE_FUNCTIONS = {
    torch.relu: "relu",
    torch.relu_: "relu",
    F.relu: "relu",
    F.relu_: "relu",
    **{f: "identity" for f in _DROPOUT_FUNCTIONS},  # only with training=False; see _effect
    **{
        f: "other"
        for f in (
            torch.sigmoid, torch.tanh, torch.exp, torch.abs, torch.neg, torch.clamp, torch.clip,
            torch.add, torch.sub, torch.mul, torch.div, torch.true_divide, torch.pow,
            F.sigmoid, F.tanh, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu, F.mish,
            F.hardtanh, F.hardsigmoid, F.hardswish, F.hardshrink, F.softshrink, F.tanhshrink,
            F.softsign, F.softplus, F.threshold, F.logsigmoid,
            operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv,
            operator.pow, operator.neg, operator.pos, operator.abs,
        )
    },
}
_ELEMENTWISE_METHODS = {
    "relu": "relu",
    "relu_": "relu",
    **{
        m: "other"
        for m in (
            "sigmoid", "tanh", "exp", "abs", "neg", "clamp", "clip", "clamp_", "add", "sub", "mul",
            "div", "true_divide", "pow", "add_", "sub_", "mul_", "div_", "float", "double",
        )
    },
}
_SOFTMAX_FUNCTIONS = frozenset({F.softmax, F.softmin, F.log_softmax, torch.softmax, torch.log_softmax})
_SOFTMAX_METHODS = frozenset({"softmax", "log_softmax"})
_RESHAPE_FUNCTIONS = frozenset({torch.flatten, torch.reshape})
_RESHAPE_METHODS = frozenset({"view", "reshape", "flatten", "unflatten", "contiguous"})
_METADATA_METHODS = frozenset({"size", "dim"})
_METADATA_ATTRIBUTES = frozenset({"shape", "ndim"})
# Arithmetic and indexing on shapes and sizes (x.size(0) * 2, x.shape[0]) is metadata too.
_METADATA_FUNCTIONS = frozenset(
    {operator.getitem, operator.add, operator.sub, operator.mul, operator.floordiv, operator.truediv}
)
_COMBINING_FUNCTIONS = frozenset(
    {torch.cat, torch.concat, torch.concatenate, torch.stack, torch.hstack, torch.vstack, torch.matmul,
     torch.mm, torch.bmm, torch.einsum, operator.matmul, F.linear, F.bilinear}
)
_COMBINING_METHODS = frozenset({"matmul", "mm", "bmm", "expand_as", "view_as", "reshape_as"})


@dataclass(frozen=True, eq=False)
class TracedOp:
    """One node of a traced forward and the units its output holds.

    Attributes
    ----------
    node : torch.fx.Node
        The node in :attr:`MlpTrace.graph_module`'s graph.
    kind : str
        ``"input"``, ``"linear"``, ``"elementwise"`` (an activation, dropout,
        or arithmetic with a constant), ``"softmax"`` (softmax, softmin,
        log-softmax over the features), ``"reshape"``, ``"metadata"`` (a
        size or shape, not a tensor) or ``"output"``.
    op : str
        What runs: the module's class name (``"Linear"``, ``"ReLU"``), the
        function's or method's name (``"relu"``, ``"add"``, ``"view"``).
    layer : int or None
        The layer whose units the output's features are: 0 for the input
        (and anything computed from it before the first Linear layer), ``i``
        for the output of the ``i``-th Linear layer and the elementwise ops
        applied to it; None for metadata.
    shape : tuple of int or None
        Shape of the output on the traced input; None for metadata.
    path : str or None
        Module path of a module call (``"0"``, ``"encoder.fc1"``; ``""`` for
        the model itself); None for functions and methods.
    inputs : tuple of torch.fx.Node
        The tensors the op computes from (one for every kind but
        ``"input"``, none for ``"input"`` and for metadata of metadata).
    """

    node: fx.Node
    kind: str
    op: str
    layer: int | None
    shape: tuple | None
    path: str | None
    inputs: tuple


@dataclass(frozen=True, eq=False)
class MlpTrace:
    """The Linear layers of a traced MLP and every op of its forward.

    Attributes
    ----------
    names : tuple of str
        Module path of each Linear layer, in execution order (``("0", "2",
        "4")`` for an ``nn.Sequential``; ``("",)`` for a bare ``nn.Linear``).
    weights : tuple of numpy.ndarray
        Each layer's effective weight, transposed to ``(in_features,
        out_features)``: signed float64, C-contiguous, read-only copies
        (pruning masks and parametrizations applied; biases ignored).
    sizes : tuple of int
        The input size, then each layer's ``out_features``.
    ops : tuple of TracedOp
        Every node of the forward in execution order (the graph's order),
        from the ``"input"`` to the ``"output"``.
    graph_module : torch.fx.GraphModule
        The traced forward. Its submodules are the model's own modules, not
        copies; the trace is of the model in eval mode.
    """

    names: tuple
    weights: tuple
    sizes: tuple
    ops: tuple
    graph_module: fx.GraphModule


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+)')


TORCH_LOCK = threading.RLock()
"""Held while torch.fx traces a model. fx patches ``torch.nn.Module.__call__`` for the whole process while
it traces, so a module run by another thread meanwhile would be recorded into the trace (or return
proxies): netmod traces one model at a time, and its tasks on thread executors hold this lock while they
run torch modules (:func:`netmod.lesion_importance`, :func:`netmod.reproduce.reproduce`)."""


@contextlib.contextmanager
def torch_task(threads: int):
    """Context of a task on an executor that runs torch modules: :data:`TORCH_LOCK` held (one such task at
    a time per process) and torch set to ``threads`` threads, given back after."""
    with TORCH_LOCK:
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)


class _Tracer(fx.Tracer):
    """Keeps Linear layers whole (their parametrizations are read, not traced); can record code locations."""

    def __init__(self, record_stack_traces: bool = False):
        super().__init__()
        self.record_stack_traces = record_stack_traces

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return _is_linear(m) or super().is_leaf_module(m, module_qualified_name)


class _Root(nn.Module):
    """Holds a model that fx would not trace into (a bare Linear, ReLU, ...), so its call is a node."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)


class _Shapes(fx.Interpreter):
    """Runs the traced graph once and keeps the shape of every tensor it computes."""

    def __init__(self, module: fx.GraphModule):
        super().__init__(module)
        self.extra_traceback = False  # the error is reported with the node by the caller
        self.shapes: dict = {}
        self.current = None

    def run_node(self, n: fx.Node) -> Any:
        self.current = n
        out = super().run_node(n)
        self.shapes[n] = tuple(out.shape) if isinstance(out, torch.Tensor) else None
        return out


def _is_linear(m: nn.Module) -> bool:
    """nn.Linear, or a subclass that keeps its forward (a parametrized, lazy or renamed Linear)."""
    return isinstance(m, nn.Linear) and type(m).forward is nn.Linear.forward


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _effective_weight(linear: nn.Linear) -> torch.Tensor:
    """The (out, in) weight a Linear layer multiplies by, detached: pruning masks and parametrizations applied.

    While ``torch.nn.utils.prune`` is active, ``weight`` is a plain attribute
    that only prune's forward pre-hook refreshes; ``weight_orig *
    weight_mask`` does not depend on that hook having run since either last
    changed. A parametrized weight is computed by reading ``weight``.
    """
    with torch.no_grad():
        if hasattr(linear, "weight_orig") and hasattr(linear, "weight_mask"):
            return (linear.weight_orig * linear.weight_mask).detach()
        return linear.weight.detach()


def _numpy_weight(linear: nn.Linear) -> np.ndarray:
    w = _effective_weight(linear).to(device="cpu", dtype=torch.float64)
    # np.array copies, so the result never aliases the model's storage (a
    # transposed (1, n) tensor would otherwise already be contiguous).
    out = np.array(w.numpy().T, dtype=np.float64, order="C")
    out.setflags(write=False)
    return out


class _Graph:
    """The fx graph of a model with the lookups the walk needs; ``path`` maps fx targets to model paths."""

    def __init__(self, model: nn.Module, root: nn.Module, module: fx.GraphModule, wrapped: bool,
                 tracer_cls: type | None = None):
        self.model, self.root, self.module, self.wrapped = model, root, module, wrapped
        self.tracer_cls = tracer_cls or _Tracer  # the same leaves again, so node names match
        self._stack_traces = None

    def path(self, target: str) -> str:
        if not self.wrapped:
            return target
        return "" if target == "model" else target[len("model."):]

    def submodule(self, node: fx.Node) -> nn.Module:
        return self.module.get_submodule(node.target)

    def stack_trace(self, node: fx.Node) -> str | None:
        """Where the node's op is in the source. Only error messages need it: the model is traced again,
        recording stack traces, which costs seconds of imports the first time in a process."""
        if self._stack_traces is None:
            with _eval_mode(self.model), torch.no_grad():
                with TORCH_LOCK:
                    graph = self.tracer_cls(record_stack_traces=True).trace(self.root)
            self._stack_traces = {n.name: n.stack_trace for n in graph.nodes}
        return self._stack_traces.get(node.name)


def _display(path: str) -> str:
    return repr(path) if path else "'' (the model itself)"


def _op_name(g: _Graph, node: fx.Node) -> str:
    if node.op == "call_module":
        return type(g.submodule(node)).__name__
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    if node.op == "call_method":
        return str(node.target)
    return node.op


def _where(g: _Graph, node: fx.Node) -> str:
    """Module path and source line of a node, as far as fx recorded them."""
    parts = []
    if node.op == "call_module":
        path = g.path(node.target)
        parts.append(f"module {path!r}" if path else "the model itself")
    else:
        stack = node.meta.get("nn_module_stack") or {}
        inner = [g.path(path) for path, _ in stack.values() if not (g.wrapped and path == "model")]
        parts.append(f"in the forward of module {inner[-1]!r}" if inner else "in the model's forward")
    location = _source_line(g.stack_trace(node))
    if location:
        parts.append(location)
    return ", ".join(parts)


def _source_line(stack_trace: str | None) -> str | None:
    """``file:line (code)`` of the innermost recorded frame outside torch itself."""
    if not stack_trace:
        return None
    torch_dir = os.path.dirname(torch.__file__)
    lines = stack_trace.strip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        match = _FRAME.match(lines[i].strip())
        if not match or match["file"].startswith(torch_dir):
            continue
        code = lines[i + 1].strip() if i + 1 < len(lines) and not _FRAME.match(lines[i + 1].strip()) else ""
        return f"{match['file']}:{match['line']}" + (f" ({code})" if code else "")
    return None


def _refuse(g: _Graph, node: fx.Node, why: str) -> ValueError:
    return ValueError(
        f"model's forward runs op {_op_name(g, node)!r} (fx node {node.name!r}, {_where(g, node)}), which {why}"
    )


def _tensor_args(node: fx.Node, data: set) -> list:
    """The tensors among a node's arguments, once per occurrence (``h * h`` has two)."""
    found: list = []
    fx.node.map_arg((node.args, node.kwargs), lambda n: found.append(n) if n in data else None)
    return found


def _classify(g: _Graph, node: fx.Node, data: set, metadata: set) -> str:
    """The kind of a node (see TracedOp.kind), from its op and which of its inputs are tensors.

    ``data`` and ``metadata`` hold the nodes already classified as tensors and
    as sizes/shapes. Raises ValueError for ops netmod does not understand.
    """
    if node.op == "placeholder":
        return "input"
    if node.op == "output":
        out = node.args[0]
        if not isinstance(out, fx.Node) or out not in data:
            raise ValueError(
                f"model's forward must return one tensor, but it returns {type(out).__name__} "
                f"{_describe_output(out)}; {_CHAIN}"
            )
        return "output"
    if node.op == "get_attr" and node.target.startswith("_tensor_constant"):
        raise _refuse(g, node, f"is a tensor made in forward (a constant tensor, not a number); {_CHAIN}")
    if node.op == "get_attr":
        raise ValueError(
            f"model's forward reads the parameter or buffer {g.path(node.target)!r} itself (fx node "
            f"{node.name!r}, op 'get_attr', {_where(g, node)}), for example through F.linear or a Linear "
            f"subclass with its own forward; {_CHAIN}, each called as a torch.nn.Linear module"
        )
    tensors = _tensor_args(node, data)
    shapes = [n for n in node.all_input_nodes if n in metadata]
    if node.op == "call_module":
        module = g.submodule(node)
        if len(tensors) != 1 or shapes:
            raise _refuse(g, node, f"is called with {len(tensors)} tensors and {len(shapes)} sizes; {_CHAIN}")
        if _is_linear(module):
            return "linear"
        if any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
            raise _refuse(
                g, node,
                f"has parameters or buffers and is not a torch.nn.Linear (convolutions, normalisation, "
                f"embeddings and Linear subclasses with their own forward are not part of the graph); {_CHAIN}",
            )
        if type(module) in _ELEMENTWISE_MODULES:
            return "elementwise"
        if type(module) in _SOFTMAX_MODULES:
            return "softmax"
        if type(module) in _RESHAPE_MODULES:
            return "reshape"
        raise _refuse(g, node, f"is not known to be elementwise or shape-only; {_CHAIN}")
    target = node.target
    is_method = node.op == "call_method"
    if (is_method and target in _METADATA_METHODS) or (
        target is builtins.getattr and len(node.args) == 2 and node.args[1] in _METADATA_ATTRIBUTES
    ):
        return "metadata"
    if not tensors:
        if not is_method and target in _METADATA_FUNCTIONS and shapes:
            return "metadata"
        raise _refuse(g, node, f"does not compute from the input (it makes a tensor or a value of its own); "
                               f"{_CHAIN}")
    if len(tensors) > 1 or (target in (_COMBINING_METHODS if is_method else _COMBINING_FUNCTIONS)):
        raise _refuse(
            g, node,
            "is functional code that combines two tensors (a skip connection, a merge or a concatenation "
            f"has no place in the graph); {_CHAIN}",
        )
    if not is_method and target is operator.getitem:
        raise _refuse(g, node, f"indexes or slices a tensor; {_CHAIN}")
    if is_method:
        kind = ("elementwise" if target in _ELEMENTWISE_METHODS else "softmax" if target in _SOFTMAX_METHODS
                else "reshape" if target in _RESHAPE_METHODS else None)
    else:
        kind = ("elementwise" if target in _ELEMENTWISE_FUNCTIONS else "softmax" if target in _SOFTMAX_FUNCTIONS
                else "reshape" if target in _RESHAPE_FUNCTIONS else None)
    if kind is None:
        raise _refuse(g, node, f"is not known to be elementwise or shape-only; {_CHAIN}")
    if shapes and kind != "reshape":
        raise _refuse(g, node, f"computes with a tensor's size as a value; {_CHAIN}")
    return kind


def _describe_output(out: Any) -> str:
    if isinstance(out, (tuple, list)):
        return f"of {len(out)} values (multiple outputs)"
    if isinstance(out, dict):
        return f"with keys {list(out)} (multiple outputs)"
    return "that is not a tensor computed from the input"


def _check_structure(g: _Graph, nodes: list, kinds: dict, data: set) -> None:
    """Refusals that need the whole graph: branches, shared or unused Linear layers, unused inputs."""
    inputs = [n for n in nodes if kinds[n] == "input"]
    used = [n for n in inputs if n.users]
    if len(used) != 1 or any(not n.args for n in inputs if not n.users):
        raise ValueError(
            f"model's forward must take exactly one tensor input, got {len(inputs)} "
            f"({', '.join(n.name for n in inputs)}); pass a module whose forward takes one tensor"
        )
    for n in nodes:
        if n not in data:
            continue
        consumers = [u for u in n.users if kinds[u] != "metadata"]
        if len(consumers) > 1:
            raise ValueError(
                f"model's forward uses the tensor of fx node {n.name!r} ({_op_name(g, n)}, {_where(g, n)}) in "
                f"{len(consumers)} places ({', '.join(repr(u.name) for u in consumers)}): a branch; {_CHAIN}"
            )
    calls: dict = {}
    for n in nodes:
        if kinds[n] == "linear":
            calls.setdefault(n.target, []).append(n)
    for target, nodes_of in calls.items():
        if len(nodes_of) > 1:
            raise ValueError(
                f"model must call each Linear layer once (shared weights are not a layered MLP), but Linear "
                f"{g.path(target)!r} is called {len(nodes_of)} times in forward (fx nodes "
                f"{', '.join(repr(n.name) for n in nodes_of)})"
            )
    called = {id(g.submodule(nodes_of[0])) for nodes_of in calls.values()}
    for name, m in g.model.named_modules():
        if _is_linear(m) and id(m) not in called:
            raise ValueError(f"model must call every Linear layer in forward, but Linear {name!r} never runs")


def _softmax_dim(g: _Graph, node: fx.Node, ndim: int) -> int | None:
    if node.op == "call_module":
        dim = g.submodule(node).dim
    else:
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    if dim is None:  # torch's legacy implicit choice
        dim = 0 if ndim in (0, 1, 3) else 1
    return dim % ndim if isinstance(dim, int) and ndim else None


class _Walk:
    """Gives every tensor node the layer whose units its features are (TracedOp.layer).

    ``layer`` maps each tensor node walked so far to its layer; ``inputs``
    maps every node to the tensors it computes from. One handler per kind of
    op (``_HANDLERS``) returns a node's layer and checks what needs shapes.
    """

    def __init__(self, g: _Graph, shapes: dict, inputs: dict):
        self.g, self.shapes, self.inputs = g, shapes, inputs
        self.layer: dict = {}
        self.linears: list = []

    def source(self, node: fx.Node) -> fx.Node:
        (src,) = self.inputs[node]
        return src

    def input(self, node):
        return 0

    def linear(self, node):
        src = self.source(node)
        shape = self.shapes[src]
        if len(shape) != 2:
            raise ValueError(
                f"the input of Linear {_display(self.g.path(node.target))} (fx node {node.name!r}) must be 2-D (batch, "
                f"features), got shape {shape}; flatten the input before the first Linear layer"
            )
        self.linears.append(node)
        return self.layer[src] + 1

    def elementwise(self, node):
        src = self.source(node)
        if self.shapes[node] != self.shapes[src]:
            raise _refuse(self.g, node, f"changes the shape {self.shapes[src]} into {self.shapes[node]} "
                                        f"(broadcasting); {_CHAIN}")
        return self.layer[src]

    def softmax(self, node):
        src = self.source(node)
        shape = self.shapes[node]
        if _softmax_dim(self.g, node, len(shape)) != len(shape) - 1:
            raise _refuse(self.g, node, f"normalises over a dimension other than the features (the last of "
                                        f"{shape}); {_CHAIN}")
        return self.layer[src]

    def reshape(self, node):
        src = self.source(node)
        if self.layer[src] > 0 and self.shapes[node] != self.shapes[src]:
            raise _refuse(
                self.g, node,
                f"reshapes {self.shapes[src]} into {self.shapes[node]} after a Linear layer (flatten and "
                f"reshape are only input preprocessing before the first Linear layer); {_CHAIN}",
            )
        return self.layer[src]

    def metadata(self, node):
        return None

    def output(self, node):
        return self.layer[self.source(node)]


# One handler per kind of op: what the op does to the units of its input. A
# kind without a handler is refused in _classify, before the model runs.
_HANDLERS = {
    "input": _Walk.input,
    "linear": _Walk.linear,
    "elementwise": _Walk.elementwise,
    "softmax": _Walk.softmax,
    "reshape": _Walk.reshape,
    "metadata": _Walk.metadata,
    "output": _Walk.output,
}


def _symbolic_trace(model: nn.Module, tracer_cls: type | None = None) -> _Graph:
    tracer_cls = tracer_cls or _Tracer
    tracer = tracer_cls()
    wrapped = tracer.is_leaf_module(model, "")
    root = _Root(model) if wrapped else model
    try:
        with TORCH_LOCK:
            graph = tracer.trace(root)
    except Exception as err:
        raise ValueError(
            f"model's forward cannot be traced by torch.fx (netmod follows every op of forward): "
            f"{type(err).__name__}: {err}. Data-dependent control flow (if/for on tensor values), len() or "
            f"iteration over a tensor cannot be traced; write forward as a fixed sequence of ops"
        ) from err
    return _Graph(model, root, fx.GraphModule(root, graph), wrapped, tracer_cls)


def _default_input(g: _Graph, nodes: list, kinds: dict) -> tuple:
    first = next(n for n in nodes if kinds[n] == "linear")
    linear = g.submodule(first)
    w = linear.weight
    return torch.zeros(2, linear.in_features, dtype=w.dtype, device=w.device), g.path(first.target)


def _materialises(module: nn.Module, hook: Any) -> bool:
    """Whether ``hook`` is a lazy module's own parameter-creating pre-hook."""
    return (isinstance(module, nn.modules.lazy.LazyModuleMixin) and getattr(hook, "__self__", None) is module
            and getattr(hook, "__name__", "") == "_infer_parameters")


def _check_hooks(model: nn.Module) -> None:
    """Refuse forward hooks: they run around a module's forward, where torch.fx does not look.

    A hook can replace what a module returns (a skip connection in a hook is
    as invisible to the trace as to module hooks), so none is allowed but the
    pre-hooks of ``torch.nn.utils.prune``, which only refresh ``weight`` from
    ``weight_orig * weight_mask`` (netmod reads that product itself), and the
    one a lazy module runs once to create its parameters.
    """
    from torch.nn.modules import module as torch_module
    from torch.nn.utils.prune import BasePruningMethod

    for kind in ("forward", "forward_pre"):
        if getattr(torch_module, f"_global_{kind}_hooks", None):
            raise ValueError(
                f"a global {kind.replace('_', ' ')} hook is registered (torch.nn.modules.module."
                f"register_module_{kind}_hook); hooks run outside forward, where torch.fx cannot see what they "
                "do: remove it before tracing"
            )
    for name, m in model.named_modules():
        hooks = [("forward hook", h) for h in getattr(m, "_forward_hooks", {}).values()]
        hooks += [("forward pre-hook", h) for h in getattr(m, "_forward_pre_hooks", {}).values()
                  if not (isinstance(h, BasePruningMethod) or _materialises(m, h))]
        if hooks:
            kind, hook = hooks[0]
            raise ValueError(
                f"module {_display(name)} ({type(m).__name__}) has a {kind} ({getattr(hook, '__name__', hook)!r}); "
                "hooks run outside forward, where torch.fx cannot see what they do (a hook can replace a "
                "module's output): remove it before tracing"
            )


def trace_mlp(model: nn.Module, *, example_input: torch.Tensor | None = None) -> MlpTrace:
    """Trace an MLP's forward with torch.fx: its Linear layers in execution order and every op between them.

    ``forward`` is traced symbolically (``torch.fx``) in eval mode, and the
    traced graph is run once on `example_input` under ``torch.no_grad()`` to
    know every tensor's shape; the training flags of all modules are restored
    afterwards. Every op is checked: the model must be a chain of Linear
    layers with elementwise operations between them.

    Accepted:

    - exactly one tensor input and one tensor output;
    - ``torch.nn.Linear`` modules (or subclasses that keep its forward, such
      as parametrized Linear layers), each called exactly once; every Linear
      layer of the model must run;
    - parameter-free elementwise ops as modules (ReLU, Tanh, Sigmoid, GELU,
      SiLU, ELU, LeakyReLU, Softplus, Hardtanh, Dropout, Identity, ...), as
      functions (``torch.relu``, ``torch.nn.functional.gelu``,
      ``F.dropout``, ``torch.sigmoid``, ...) or as tensor methods
      (``x.relu()``, ``x.sigmoid()``); arithmetic of the tensor with numbers
      (``x * 2``, ``x / 255``, ``x - 0.5``);
    - softmax, softmin and log-softmax over the features (they add no edges);
    - ``flatten``, ``view``, ``reshape``, ``nn.Flatten`` and ``nn.Unflatten``
      before the first Linear layer (``(N, 1, 28, 28)`` into ``(N, 784)``),
      or elsewhere when they leave the shape unchanged; sizes and shapes
      (``x.size(0)``, ``x.shape``, ``x.dim()``) as their arguments.

    Everything else is refused with a ValueError naming the op, the fx node
    and where it is: ops on two tensors (``+`` of a skip connection,
    ``torch.cat``, ``matmul``), indexing and slicing, parameters or buffers
    read in forward (``F.linear``), modules with parameters or buffers other
    than Linear (convolutions, BatchNorm, LayerNorm, Embedding), unknown
    modules and functions, a Linear layer called twice, a tensor used twice
    (a branch), several outputs, and a Linear layer whose input is not 2-D.

    Parameters
    ----------
    model : torch.nn.Module
        The MLP.
    example_input : torch.Tensor, optional
        One input batch the model accepts. If None, ``torch.zeros(2,
        in_features)`` for the first Linear layer that runs (in its dtype and
        on its device).

    Returns
    -------
    MlpTrace

    Raises
    ------
    TypeError
        If `model` is not a ``torch.nn.Module`` or `example_input` is not a
        tensor.
    ValueError
        If `model` has no Linear layer, cannot be traced by torch.fx
        (data-dependent control flow), runs an op that is refused (above),
        has uninitialized lazy parameters and no `example_input` is given,
        or does not run on `example_input` (or on the default input; the
        message then carries the error and asks for `example_input`).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from netmod.tracing import trace_mlp
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> trace = trace_mlp(model)
    >>> trace.names, trace.sizes
    (('0', '2'), (4, 3, 2))
    >>> [(op.kind, op.op, op.layer) for op in trace.ops]  # doctest: +NORMALIZE_WHITESPACE
    [('input', 'input', 0), ('linear', 'Linear', 1), ('elementwise', 'ReLU', 1), ('linear', 'Linear', 2),
     ('output', 'output', 2)]

    A skip connection written in forward is seen, and refused:

    >>> class Residual(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.a, self.b = nn.Linear(10, 10), nn.Linear(10, 10)
    ...     def forward(self, x):
    ...         h = torch.relu(self.a(x))
    ...         return self.b(h) + h
    >>> trace_mlp(Residual())
    Traceback (most recent call last):
    ...
    ValueError: model's forward runs op 'add' (fx node 'add', in the model's forward, ...
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if example_input is not None and not isinstance(example_input, torch.Tensor):
        raise TypeError(f"example_input must be a torch.Tensor, got {type(example_input).__name__}")
    if not any(_is_linear(m) for m in model.modules()):
        raise ValueError(
            f"model must contain at least one torch.nn.Linear layer, got a {type(model).__name__} with none"
        )
    if example_input is None and any(
        nn.parameter.is_lazy(t) for t in (*model.parameters(), *model.buffers())
    ):
        raise ValueError(
            "model has uninitialized lazy parameters; pass example_input so a forward pass can materialize them"
        )
    _check_hooks(model)
    with _eval_mode(model), torch.no_grad():
        g = _symbolic_trace(model)
        nodes = list(g.module.graph.nodes)
        kinds, inputs = {}, {}
        data, metadata = set(), set()
        for node in nodes:
            kind = _classify(g, node, data, metadata)
            kinds[node] = kind
            inputs[node] = tuple(n for n in node.all_input_nodes if n in data)
            (metadata if kind == "metadata" else data).add(node)
        _check_structure(g, nodes, kinds, data)
        shapes = _run_for_shapes(g, nodes, kinds, example_input)
    walk = _Walk(g, shapes, inputs)
    ops = []
    for node in nodes:
        kind = kinds[node]
        layer = _HANDLERS[kind](walk, node)
        if kind != "metadata":
            walk.layer[node] = layer
        ops.append(TracedOp(
            node=node, kind=kind, op=kind if kind in ("input", "output") else _op_name(g, node), layer=layer,
            shape=None if kind == "metadata" else shapes[node],
            path=g.path(node.target) if node.op == "call_module" else None, inputs=inputs[node],
        ))
    weights = tuple(_numpy_weight(g.submodule(n)) for n in walk.linears)
    names = tuple(g.path(n.target) for n in walk.linears)
    sizes = (int(weights[0].shape[0]),) + tuple(int(w.shape[1]) for w in weights)
    return MlpTrace(names=names, weights=weights, sizes=sizes, ops=tuple(ops), graph_module=g.module)


def _run_for_shapes(g: _Graph, nodes: list, kinds: dict, example_input: torch.Tensor | None) -> dict:
    default = example_input is None
    if default:
        example_input, first = _default_input(g, nodes, kinds)
    runner = _Shapes(g.module)
    try:
        runner.run(example_input)
    except Exception as err:
        at = runner.current
        where = f" at fx node {at.name!r} ({_op_name(g, at)}, {_where(g, at)})" if at is not None else ""
        if default:
            raise ValueError(
                f"model does not run on the default input torch.zeros{tuple(example_input.shape)} (in_features of "
                f"its first Linear layer {first!r}){where}: {type(err).__name__}: {err}; pass example_input"
            ) from err
        raise ValueError(
            f"example_input could not be passed through model{where}: {type(err).__name__}: {err}"
        ) from err
    return runner.shapes


def mlp_weights(model: nn.Module, *, example_input: torch.Tensor | None = None) -> list:
    """Signed weight matrices of an MLP's Linear layers, in execution order.

    The forward is traced with torch.fx (see :func:`trace_mlp`, which also
    lists what is accepted and refused); the Linear layers are returned in
    the order they run, which need not be the order they were registered in.
    Biases are ignored.

    Parameters
    ----------
    model : torch.nn.Module
        A chain of ``nn.Linear`` layers, each called exactly once, with only
        parameter-free elementwise operations between them (as modules,
        functions or tensor methods). Pruning masks from
        ``torch.nn.utils.prune`` and parametrizations are applied.
    example_input : torch.Tensor, optional
        One input batch; see :func:`trace_mlp`.

    Returns
    -------
    list of numpy.ndarray
        One float64 C-contiguous read-only array per Linear layer, of shape
        ``(in_features, out_features)``: the transpose of the effective
        weight, signed. The arrays are copies.

    Raises
    ------
    TypeError, ValueError
        As :func:`trace_mlp`.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from netmod.tracing import mlp_weights
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> [w.shape for w in mlp_weights(model)]
    [(4, 3), (3, 2)]
    >>> bool((mlp_weights(model)[1] == model[2].weight.detach().numpy().T).all())
    True
    """
    return list(trace_mlp(model, example_input=example_input).weights)


def _run_node(module: fx.GraphModule, node: fx.Node, env: dict) -> Any:
    args = fx.node.map_arg(node.args, env.__getitem__)
    kwargs = fx.node.map_arg(node.kwargs, env.__getitem__)
    if node.op == "call_module":
        return module.get_submodule(node.target)(*args, **kwargs)
    if node.op == "call_function":
        return node.target(*args, **kwargs)
    obj, *rest = args
    return getattr(obj, node.target)(*rest, **kwargs)


def _effect(module: fx.GraphModule, op: TracedOp) -> str:
    """What an elementwise or reshape op computes in eval mode: "relu", "identity" or "other"."""
    node = op.node
    if op.kind == "reshape":
        return "identity" if op.layer > 0 else "other"  # after a Linear layer only when it keeps the shape
    if op.kind != "elementwise":
        return "other"
    if node.op == "call_module":
        return _ELEMENTWISE_MODULES[type(module.get_submodule(node.target))]
    if node.op == "call_method":
        return _ELEMENTWISE_METHODS[node.target]
    if node.target in _DROPOUT_FUNCTIONS:
        training = node.args[2] if len(node.args) > 2 else node.kwargs.get("training", True)
        return "identity" if training is False else "other"
    return _ELEMENTWISE_FUNCTIONS[node.target]


def _in_place(module: fx.GraphModule, node: fx.Node) -> bool:
    """Whether an op may write into its input (then the replay runs it on a copy)."""
    if node.op == "call_module":
        return bool(getattr(module.get_submodule(node.target), "inplace", False))
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    return bool(node.kwargs.get("inplace")) or (name.endswith("_") and not name.endswith("__")) or any(
        a is True for a in node.args[1:]
    )


class MlpReplay:
    """An MLP replayed layer by layer from its trace: the Linear layers and the ops between them.

    Every hidden layer's pre-activations ``z`` and activations ``h`` are kept,
    so a lesion (a set of a hidden layer's units whose incoming weights and
    biases are zero) recomputes only the layers above it, the first of them
    by a low-rank update; many lesions are evaluated at once as a batch. The
    ops between Linear layers are replayed from the fx trace, functional ones
    (``torch.relu(self.a(x))``) included. Unit-mixing ops (softmax) are
    refused between Linear layers: a lesion's effect would then depend on the
    other units' values, which the low-rank update does not model.

    Parameters
    ----------
    model : torch.nn.Module
        An MLP with a hidden layer, as accepted by :func:`trace_mlp`.
    example_input : torch.Tensor, optional
        See :func:`trace_mlp`.

    Attributes
    ----------
    model : torch.nn.Module
    trace : MlpTrace
    sizes : list of int
        Units per layer, inputs first.
    weights, biases : list of torch.Tensor
        Each Linear layer's effective (out, in) weight and bias (zeros if it
        has none), detached, on the CPU, in the model's dtype.
    dtype : torch.dtype

    Raises
    ------
    TypeError, ValueError
        As :func:`trace_mlp`; ValueError if the model has one Linear layer
        or runs softmax between Linear layers.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from netmod.tracing import MlpReplay
    >>> _ = torch.manual_seed(0)
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.a, self.b = nn.Linear(4, 3), nn.Linear(3, 2)
    ...     def forward(self, x):
    ...         return self.b(torch.relu(self.a(x)))
    >>> net = Net()
    >>> replay = MlpReplay(net)
    >>> x = torch.randn(5, 4)
    >>> with torch.no_grad(), replay.eval_mode():
    ...     h, z = replay.forward_cache(x)
    ...     torch.allclose(replay.output(z[2]), net(x))
    True
    >>> replay.sizes
    [4, 3, 2]
    """

    def __init__(self, model: nn.Module, *, example_input: torch.Tensor | None = None) -> None:
        self.model = model
        self.trace = trace = trace_mlp(model, example_input=example_input)
        if len(trace.names) < 2:
            raise ValueError(f"model must have a hidden layer (at least two Linear layers), got {len(trace.names)}")
        module = self._module = trace.graph_module
        first = next(i for i, op in enumerate(trace.ops) if op.kind == "linear")
        self._input = trace.ops[0].node
        self._first_input = trace.ops[first].inputs[0]
        # Before the first Linear layer the ops run as traced (sizes and shapes included) on the input.
        self._pre = [op.node for op in trace.ops[1:first]]
        self._pre_in_place = any(_in_place(module, n) for n in self._pre)
        steps: list = [[] for _ in trace.names]  # steps[l - 1]: the ops applied to layer l's units
        for op in trace.ops:
            if op.layer and op.kind in ("elementwise", "softmax", "reshape"):
                steps[op.layer - 1].append(op)
        for i, ops in enumerate(steps[:-1], start=1):
            for op in ops:
                if op.kind == "softmax":
                    raise ValueError(f"model runs {op.op} after hidden layer {i}; lesions need elementwise "
                                     f"activations between Linear layers")
        effects = [[_effect(module, op) for op in ops] for ops in steps]
        # In eval mode these are ReLU or the identity, so the batched path may apply ReLU in place.
        self.relu_only = [all(e in ("relu", "identity") for e in eff) and "relu" in eff for eff in effects[:-1]]
        # Reshapes after the first Linear layer keep the shape (trace_mlp checks it): left out.
        self._steps = [[(op.node, op.inputs[0]) for op in ops if op.kind != "reshape"] for ops in steps]
        self._in_place = [any(_in_place(module, node) for node, _ in s) for s in self._steps]
        self.weights, self.biases = [], []
        for name in trace.names:
            m = model.get_submodule(name)
            w = _effective_weight(m).cpu()
            self.weights.append(w)
            self.biases.append(m.bias.detach().cpu() if m.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype))
        self.dtype = self.weights[0].dtype
        self.sizes = [int(s) for s in trace.sizes]
        with torch.no_grad(), self.eval_mode():
            # What a lesioned unit outputs: the activation of a zero pre-activation.
            self.dead_output = [self.activation(a, torch.zeros(1, n, dtype=self.dtype))[0]
                                for a, n in enumerate(self.sizes[1:-1], start=1)]

    def eval_mode(self):
        """Context manager: the model in eval mode, every module's training flag restored on exit."""
        return _eval_mode(self.model)

    @property
    def n_layers(self) -> int:
        """Number of layers, inputs and outputs included."""
        return len(self.sizes)

    def _apply(self, steps: list, z):
        for node, source in steps:
            z = _run_node(self._module, node, {source: z})
        return z

    def activation(self, layer: int, z):
        """The activations of hidden layer ``layer`` (1-based) from its pre-activations ``z`` (rows, units)."""
        if self._in_place[layer - 1]:
            z = z.clone()  # the caller keeps z (the cache of pre-activations)
        return self._apply(self._steps[layer - 1], z)

    def linear(self, i: int, h):
        """Pre-activations of layer ``i + 1`` from the activations ``h`` of layer ``i``."""
        return h @ self.weights[i].T + self.biases[i]

    def output(self, z):
        """The model's output from the last layer's pre-activations (what runs after the last Linear)."""
        return self._apply(self._steps[-1], z)

    def preprocess(self, x):
        """The first Linear layer's input from the model's input ``x`` (flatten, scaling, ...)."""
        if self._pre_in_place:
            x = x.clone()
        env = {self._input: x}
        for node in self._pre:
            env[node] = _run_node(self._module, node, env)
        return env[self._first_input]

    def forward_cache(self, x):
        """Activations h[l] of every layer and pre-activations z[l] of every non-input layer."""
        h, z = {0: self.preprocess(x)}, {}
        for i in range(self.n_layers - 1):
            z[i + 1] = self.linear(i, h[i])
            if i + 1 < self.n_layers - 1:
                h[i + 1] = self.activation(i + 1, z[i + 1])
        return h, z

    def lesion_cache(self, h, z, layer: int, units):
        """h and z with ``units`` of ``layer`` lesioned (a fixed lesion), layers above recomputed."""
        units = torch.as_tensor(units, dtype=torch.long)
        h, z = dict(h), dict(z)
        zl = z[layer].clone()
        zl[:, units] = 0
        z[layer] = zl
        h[layer] = self.activation(layer, zl)
        for i in range(layer, self.n_layers - 1):
            z[i + 1] = self.linear(i, h[i])
            if i + 1 < self.n_layers - 1:
                h[i + 1] = self.activation(i + 1, z[i + 1])
        return h, z

    def _activation_batched(self, layer: int, z):
        """Activation of a (draws, rows, units) block; ops see the 2-D (draws * rows, units) shape they expect."""
        if self.relu_only[layer - 1]:
            return z.clamp_(min=0)
        return self.activation(layer, z.reshape(-1, z.shape[-1])).view(z.shape)

    def lesioned_correct(self, h, z, layer: int, draws, onehot, labels, fixed=None):
        """Correct answers per class, (n_draws, n_classes), for each row of ``draws`` lesioned in ``layer``.

        ``h``, ``z``: a cache from :meth:`forward_cache` (possibly with fixed
        lesions below ``layer`` already applied). ``fixed``: {layer: units}
        lesioned in every draw, for layers above ``layer``.
        """
        draws = torch.as_tensor(draws, dtype=torch.long)
        n_draws, size = draws.shape
        masks = {}
        for b, units in (fixed or {}).items():
            mask = torch.ones(self.sizes[b], dtype=self.dtype)
            mask[torch.as_tensor(units, dtype=torch.long)] = 0
            masks[b] = mask
        n = h[layer].shape[0]
        width = max(self.sizes[layer + 1:])
        # Blocks of a few MiB: bigger tensors cost more in page faults and cache misses than they save.
        rows = max(1, min(n, _BUDGET // width))
        per_chunk = max(1, _BUDGET // (rows * width))
        w_next = self.weights[layer].T.contiguous()  # (n_layer, n_next): rows are gathered per draw
        dead = self.dead_output[layer - 1]
        shift = bool(dead.any())
        counts = torch.zeros(n_draws, onehot.shape[1], dtype=torch.float64)
        # Large lesions are recomputed from the masked layer: no cheaper, and exact for a whole layer,
        # where the update z - delta would leave rounding noise in place of exact ties.
        low_rank = 2 * size <= self.sizes[layer]
        for r0 in range(0, n, rows):
            h_rows = h[layer][r0:r0 + rows]
            h_t = h_rows.T.contiguous() if low_rank else None  # (n_layer, rows)
            z_rows = z[layer + 1][r0:r0 + rows]
            m = z_rows.shape[0]
            for d0 in range(0, n_draws, per_chunk):
                idx = draws[d0:d0 + per_chunk]
                if low_rank:
                    lost = h_t[idx]  # (d, size, rows)
                    if shift:
                        lost = lost - dead[idx].unsqueeze(-1)
                    zz = torch.baddbmm(z_rows.expand(len(idx), m, -1), lost.transpose(1, 2), w_next[idx],
                                       alpha=-1)
                else:
                    keep = torch.ones(len(idx), self.sizes[layer], dtype=self.dtype)
                    keep.scatter_(1, idx, 0.0)
                    kept = h_rows.unsqueeze(0) * keep.unsqueeze(1)
                    if shift:
                        kept = kept + (dead * (1 - keep)).unsqueeze(1)
                    zz = torch.matmul(kept, w_next) + self.biases[layer]
                for b in range(layer + 1, self.n_layers - 1):
                    if b in masks:
                        zz.mul_(masks[b])
                    zz = self._activation_batched(b, zz)
                    zz = torch.addmm(self.biases[b], zz.reshape(-1, zz.shape[-1]), self.weights[b].T)
                    zz = zz.view(len(idx), m, -1)
                pred = self.output(zz.reshape(-1, zz.shape[-1])).argmax(dim=-1).view(len(idx), m)
                correct = (pred == labels[r0:r0 + rows]).to(torch.float64)
                counts[d0:d0 + per_chunk] += correct @ onehot[r0:r0 + rows]
        return counts.numpy()

    def check_replay(self, model: nn.Module, x) -> None:
        """Raise ValueError unless the replay reproduces ``model(x)``: catches forwards that do more than their ops
        (hooks, randomness)."""
        expected = model(x)
        got = self.output(self.forward_cache(x)[1][self.n_layers - 1])
        if expected.shape != got.shape or not torch.allclose(expected, got, rtol=1e-4, atol=1e-5):
            raise ValueError("model's forward is not the chain of its Linear layers and activations (functional "
                             "code in forward?); lesion analysis needs a plain MLP")


# --- any network: the filter/unit graph of Linear and conv layers (REFERENCE.md 8) -----------------

NORMS = ("l1", "l2", "induced-l1", "spectral")
_CONV_TYPES = {nn.Conv1d: "conv1d", nn.Conv2d: "conv2d", nn.Conv3d: "conv3d"}
_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_NET = ("netmod's weight graph takes Linear and Conv1d/2d/3d layers, eval-mode BatchNorm, elementwise "
        "activations, dropout, pooling, padding, + and - of tensors, channel concatenation and flatten")
_NET_HINT = ("trace a sub-module made of those (for example the convolutional trunk, with include='conv' "
             "to keep its conv filters), or describe the network by its activations instead")

# Parameter-free modules and functions that keep each channel (or feature) where it is: activations,
# dropout, pooling and padding. Only the units matter for the graph, not what is computed on them.
# Pooling and padding modules: parameter-free, each output channel computed from its input channel alone.
POOL_PAD_MODULES = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.LPPool1d, nn.LPPool2d,
    nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d, nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d,
    nn.ReflectionPad1d, nn.ReflectionPad2d, nn.ReflectionPad3d, nn.ReplicationPad1d, nn.ReplicationPad2d,
    nn.ReplicationPad3d, nn.CircularPad1d, nn.CircularPad2d, nn.CircularPad3d,
)
_KEEP_MODULES = tuple(_ELEMENTWISE_MODULES) + tuple(_SOFTMAX_MODULES) + POOL_PAD_MODULES
_KEEP_FUNCTIONS = (set(_ELEMENTWISE_FUNCTIONS) | set(_SOFTMAX_FUNCTIONS) | {
    F.max_pool1d, F.max_pool2d, F.max_pool3d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
    F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d, F.adaptive_max_pool1d,
    F.adaptive_max_pool2d, F.adaptive_max_pool3d, F.lp_pool1d, F.lp_pool2d, F.pad,
    torch.max_pool1d, torch.max_pool2d, torch.max_pool3d, torch.avg_pool1d, torch.adaptive_avg_pool1d,
}) - {torch.add, torch.sub, operator.add, operator.sub, torch.mul, operator.mul, torch.div, operator.truediv,
      torch.true_divide, operator.floordiv, torch.pow, operator.pow}
_KEEP_METHODS = (set(_ELEMENTWISE_METHODS) | set(_SOFTMAX_METHODS) | {"contiguous", "clone", "detach"}) - {
    "add", "sub", "mul", "div", "true_divide", "pow", "add_", "sub_", "mul_", "div_"}
_ADD = {operator.add: 1.0, torch.add: 1.0, operator.iadd: 1.0, operator.sub: -1.0, torch.sub: -1.0,
        operator.isub: -1.0}
_ADD_METHODS = {"add": 1.0, "add_": 1.0, "sub": -1.0, "sub_": -1.0}
# Arithmetic with numbers (x * 2, x / 255, x ** 2): the weight graph is of weights, as for MLPs.
_NUMBER_OPS = {operator.mul, torch.mul, operator.truediv, torch.div, torch.true_divide, operator.floordiv,
               operator.pow, torch.pow, operator.imul, operator.itruediv}
_NUMBER_METHODS = {"mul", "div", "true_divide", "pow", "mul_", "div_"}
_CAT = {torch.cat, torch.concat, torch.concatenate}
_FLATTEN_FUNCTIONS = {torch.flatten, torch.reshape, torch.squeeze}
_FLATTEN_METHODS = {"view", "reshape", "flatten", "squeeze"}
_MEAN_METHODS = {"mean", "sum", "amax", "amin"}
_MEAN_FUNCTIONS = {torch.mean, torch.sum, torch.amax, torch.amin}


@dataclass(frozen=True, eq=False)
class NetworkTrace:
    """The layers of units of a traced network and the weight blocks between them.

    Attributes
    ----------
    names : tuple of str
        ``"input"``, then each parametrised layer's module path, in execution order.
    kinds : tuple of str
        ``"input"``, ``"linear"``, ``"conv1d"``, ``"conv2d"`` or ``"conv3d"`` per layer.
    sizes : tuple of int
        Units per layer: input channels (or features), out_channels, out_features.
    pairs : tuple of (int, int)
        ``(src, dst)`` layers of each block, src < dst, each pair once, in order.
    blocks : tuple of numpy.ndarray
        ``(sizes[src], sizes[dst])`` float64, read-only. Between a Linear layer and the
        features it reads the signed weights (edge weight ``|w|``); every other block
        holds the norm of each kernel slice (conv) or of each channel's ``h*w`` weights
        (a flattened map read by a Linear layer), non-negative.
    kernel_norm : str
    folded : tuple of str
        What each BatchNorm was folded into, one line per BatchNorm.
    unused : tuple of str
        Parametrised layers of the model that do not run in forward (no units).
    """

    names: tuple
    kinds: tuple
    sizes: tuple
    pairs: tuple
    blocks: tuple
    kernel_norm: str
    folded: tuple
    unused: tuple


@dataclass(eq=False)
class _Units:
    """What the feature positions (dim 1) of a tensor are: a sum of terms, each a layer's units.

    Term ``(layer, unit, scale)``: position p carries ``scale[p]`` times unit ``unit[p]`` of
    ``layer`` (unit -1: nothing of that layer). ``coord``: after a flatten, position p is
    spatial location ``coord[p]`` of a map of shape ``spatial``; None before. ``fresh``: the
    layer whose output this is through single-use ops that keep channels (BatchNorm folds
    into it), else None.
    """

    terms: list
    size: int
    coord: np.ndarray | None = None
    spatial: tuple = ()
    fresh: int | None = None


def _slice_norms(m: np.ndarray, norm: str) -> np.ndarray:
    """Norms of the trailing slices of ``m`` (shape (a, b, *slice)) -> (a, b), as kernel_norms defines them."""
    a = np.abs(m)
    spatial = a.ndim - 2
    flat = a.reshape(a.shape[0], a.shape[1], -1)
    if norm == "l1" or (norm == "induced-l1" and spatial <= 1):
        return flat.sum(axis=2)
    if norm == "l2" or (norm == "spectral" and spatial <= 1):
        return np.sqrt(np.square(flat).sum(axis=2))
    if spatial != 2:
        raise ValueError(f"kernel_norm {norm!r} is defined for 1-D and 2-D slices, got {spatial}-D ones; "
                         "use 'l1' or 'l2'")
    if norm == "induced-l1":
        return a.sum(axis=2).max(axis=2)
    return np.linalg.norm(a, ord=2, axis=(2, 3)) if a.size else np.zeros(a.shape[:2])


def _is_conv(m: nn.Module) -> bool:
    return any(isinstance(m, t) and type(m).forward is t.forward for t in _CONV_TYPES)


def _is_bn(m: nn.Module) -> bool:
    return any(isinstance(m, t) and type(m).forward is t.forward for t in _BN_TYPES)


class _NetTracer(_Tracer):
    """Keeps Linear, conv and BatchNorm layers whole, parametrized or pruned ones too."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return _is_conv(m) or _is_bn(m) or super().is_leaf_module(m, module_qualified_name)


def _net_refuse(g: _Graph, node: fx.Node, why: str) -> ValueError:
    return ValueError(
        f"model's forward runs op {_op_name(g, node)!r} (fx node {node.name!r}, {_where(g, node)}), which {why}; "
        f"{_NET}. To analyse such a network, {_NET_HINT}"
    )


def _dim_arg(node: fx.Node, position: int, name: str, default: Any) -> Any:
    if len(node.args) > position:
        return node.args[position]
    return node.kwargs.get(name, default)


class _NetWalk:
    """Walks a graph of fx nodes in order, giving every tensor its _Units and building the blocks.

    Front ends (torch.fx of a module, the ATen graph of an exported program) read the weights
    and settings of each op and call the handlers; ``refuse(node, why)`` makes their error.
    """

    def __init__(self, refuse: Any, shapes: dict, norm: str, keep: Any, node_word: str = "fx nodes"):
        self.refuse, self.shapes, self.norm, self.keep, self.node_word = refuse, shapes, norm, keep, node_word
        self.metadata: set = set()
        self.values: dict = {}
        self.names, self.kinds, self.sizes = [], [], []
        self.parts: dict = {}  # (src, dst) -> list of (term unit, scale, weight, how)
        self.blocks: dict = {}
        self.scale: dict = {}  # layer -> per-unit factor of a BatchNorm folded into it
        self.folded: list = []
        self.called: dict = {}

    # -- helpers
    def data_users(self, node: fx.Node) -> list:
        return [u for u in node.users if u in self.values or u not in self.metadata]

    def new_layer(self, name: str, kind: str, size: int) -> int:
        self.names.append(name)
        self.kinds.append(kind)
        self.sizes.append(int(size))
        return len(self.sizes) - 1

    def source(self, node: fx.Node) -> fx.Node:
        found = [n for n in node.all_input_nodes if n in self.values]
        if len(found) != 1:
            raise self.refuse(node, f"computes from {len(found)} tensors where one was expected")
        return found[0]

    def keep_units(self, node: fx.Node, src: fx.Node) -> _Units:
        """An op that keeps channels: same units; checks the channel count."""
        before, after = self.shapes[src], self.shapes[node]
        v = self.values[src]
        if after is None or len(after) < 2 or after[1] != before[1] or len(after) != len(before):
            raise self.refuse(node, f"changes the shape {before} into {after}, moving features or "
                                            "channels")
        if v.coord is not None and after != before:
            raise self.refuse(node, f"changes the shape {before} into {after} of flattened features")
        fresh = v.fresh if len(self.data_users(src)) == 1 else None
        return _Units(v.terms, v.size, v.coord, v.spatial, fresh)

    # -- handlers
    def placeholder(self, node):
        shape = self.shapes[node]
        if shape is None or len(shape) < 2:
            raise ValueError(f"example_input must be a batch of shape (N, features) or (N, channels, ...), got "
                             f"shape {shape}")
        layer = self.new_layer("input", "input", shape[1])
        return _Units([(layer, np.arange(shape[1]), np.ones(shape[1]))], shape[1])

    def layer(self, node, name: str, kind: str, weight: np.ndarray, groups: int, what: str):
        """A Linear (``weight`` (out, in)) or conv (``weight`` (out, in / groups, *k)) layer named ``name``."""
        if name in self.called:
            raise ValueError(
                f"model must call each layer once (a layer called twice has no one set of units), but "
                f"{what} {_display(name)} is called again in forward ({self.node_word} "
                f"{self.called[name]!r} and {node.name!r})"
            )
        self.called[name] = node.name
        src = self.source(node)
        v, shape = self.values[src], self.shapes[src]
        if kind == "linear":
            if len(shape) != 2:
                raise self.refuse(node, f"is a Linear layer applied to a tensor of shape {shape} (it "
                                        "mixes the last dimension, not the features): flatten first")
        else:
            spatial = {"conv1d": 1, "conv2d": 2, "conv3d": 3}[kind]
            if len(shape) != 2 + spatial or v.coord is not None:
                raise self.refuse(node, f"is a {what} applied to shape {shape}")
        out = int(weight.shape[0])
        layer = self.new_layer(name, kind, out)
        for term in v.terms:
            self.parts.setdefault((term[0], layer), []).append((term, weight, kind, groups, v))
        return _Units([(layer, np.arange(out), np.ones(out))], out, fresh=layer)

    def batchnorm(self, node, name: str, var: np.ndarray | None, gamma: np.ndarray | None, eps: float):
        """An eval-mode BatchNorm named ``name``: running variance ``var``, scale ``gamma`` (None: affine=False)."""
        src = self.source(node)
        v = self.values[src]
        if var is None:
            raise self.refuse(node, "has no running statistics (track_running_stats=False): in eval "
                                    "mode it normalises with the batch's statistics, which no fixed "
                                    "weight can stand for")
        if self.shapes[src][1] != var.shape[0]:
            raise self.refuse(node, "normalises a number of channels other than the tensor's")
        if gamma is None:
            gamma = np.ones_like(var)
        factor = gamma / np.sqrt(var + eps)
        path = name
        if v.fresh is not None and v.fresh > 0 and len(self.data_users(src)) == 1 and v.coord is None:
            layer = v.fresh
            self.scale[layer] = self.scale.get(layer, 1.0) * factor
            self.folded.append(f"BatchNorm {path!r} into the layer it follows, {self.names[layer]!r}")
            return _Units(v.terms, v.size, None, (), layer)
        self.folded.append(f"BatchNorm {path!r} into the layers that read it (it follows "
                           f"{'the input' if v.fresh == 0 else 'several layers or a branch'})")
        return _Units([(l, u, s * factor) for l, u, s in v.terms], v.size, v.coord, v.spatial, None)

    def add(self, node, sign: float, in_place: bool = False):
        srcs = [a for a in node.args[:2] if isinstance(a, fx.Node) and a in self.values]
        if len(srcs) == 1:  # a number added: the units stay
            return self.keep_units(node, srcs[0])
        a, b = (self.values[s] for s in srcs)
        shape = self.shapes[node]
        if self.shapes[srcs[0]] != shape or self.shapes[srcs[1]] != shape:
            raise self.refuse(node, f"adds tensors of shapes {self.shapes[srcs[0]]} and "
                                            f"{self.shapes[srcs[1]]} (broadcasting)")
        if (a.coord is None) != (b.coord is None) or (a.coord is not None and not np.array_equal(a.coord, b.coord)):
            raise self.refuse(node, "adds flattened features of different maps")
        if in_place:
            others = [u for u in srcs[0].users if u is not node]
            if others:
                raise self.refuse(node, f"adds in place into a tensor that {others[0].name!r} also "
                                                "reads (that op would see the sum or not depending on order)")
        terms = list(a.terms)
        for layer, unit, scale in b.terms:
            terms.append((layer, unit, sign * scale))
        merged: list = []
        for layer, unit, scale in terms:
            for i, (l2, u2, s2) in enumerate(merged):
                if l2 == layer and np.array_equal(u2, unit):
                    merged[i] = (l2, u2, s2 + scale)
                    break
            else:
                merged.append((layer, unit, scale))
        return _Units(merged, a.size, a.coord, a.spatial, None)

    def cat(self, node):
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = _dim_arg(node, 1, "dim", 0)
        if not isinstance(tensors, (list, tuple)) or not all(isinstance(t, fx.Node) and t in self.values
                                                             for t in tensors):
            raise self.refuse(node, "concatenates something other than a list of tensors")
        ndim = len(self.shapes[node])
        if not isinstance(dim, int) or dim % ndim != 1:
            raise self.refuse(node, f"concatenates along dim {dim}, not the channels (dim 1): the "
                                            "units would not stay whole")
        vals = [self.values[t] for t in tensors]
        if any(v.coord is not None for v in vals):
            raise self.refuse(node, "concatenates flattened features")
        total = sum(v.size for v in vals)
        terms, at = [], 0
        for v in vals:
            for layer, unit, scale in v.terms:
                u = np.full(total, -1)
                s = np.zeros(total)
                u[at:at + v.size], s[at:at + v.size] = unit, scale
                terms.append((layer, u, s))
            at += v.size
        return _Units(terms, total)

    def flatten(self, node):
        src = self.source(node)
        before, after = self.shapes[src], self.shapes[node]
        v = self.values[src]
        if after == before:
            return self.keep_units(node, src)
        if self.flattens_input(src, before, after):
            # Flattening the input before any layer is preprocessing: the input units are its features
            # (an MLP's pixels), as for from_layers.
            self.sizes[0] = int(after[1])
            return _Units([(0, np.arange(after[1]), np.ones(after[1]))], after[1])
        if (v.coord is None and len(before) >= 3 and len(after) == 2 and after[0] == before[0]
                and after[1] == int(np.prod(before[1:]))):
            spatial = tuple(before[2:])
            per = int(np.prod(spatial))
            terms = [(l, np.repeat(u, per), np.repeat(s, per)) for l, u, s in v.terms]
            return _Units(terms, after[1], np.tile(np.arange(per), before[1]), spatial, None)
        raise self.refuse(node, f"reshapes {before} into {after}; only flattening (N, C, ...) into "
                                        "(N, C * ...) keeps each unit's features together")

    def flattens_input(self, src: fx.Node, before: tuple, after: tuple) -> bool:
        if len(self.sizes) != 1 or len(after) != 2 or after[1] != int(np.prod(before[1:])):
            return False
        node = src
        while True:  # back to the input through single-use ops, so nothing else reads the raw input
            if len(self.data_users(node)) != 1:
                return False
            if node.op == "placeholder":
                return True
            node = self.source(node)

    def reduce(self, node):
        src = self.source(node)
        before, after = self.shapes[src], self.shapes[node]
        dims = _dim_arg(node, 1, "dim", None)
        dims = (dims,) if isinstance(dims, int) else dims
        if (dims is None or not isinstance(dims, (list, tuple)) or any(not isinstance(d, int) for d in dims)
                or any(d % len(before) < 2 for d in dims) or self.values[src].coord is not None):
            raise self.refuse(node, f"reduces {before} to {after} over the channels or batch")
        v = self.values[src]
        return _Units(v.terms, v.size)

    # -- the blocks, once every layer is known
    def build(self) -> None:
        for (s, d), parts in self.parts.items():
            if not (self.keep(s) and self.keep(d)):
                continue
            total = None
            for (_layer, unit, scale), w, kind, groups, v in parts:
                m = self._map(unit, scale, w, kind, groups, v, self.sizes[s])
                total = m if total is None else total + m
            signed = total.ndim == 2
            block = total if signed else _slice_norms(total, self.norm)
            if d in self.scale:
                block = block * (self.scale[d] if signed else np.abs(self.scale[d]))[None, :]
            self.blocks[(s, d)] = block

    def _map(self, unit, scale, w, kind, groups, v, n_src):
        """The linear map from each unit of the source layer to each output unit: (n_src, out[, *slice])."""
        import scipy.sparse as sparse

        ok = (unit >= 0) & (scale != 0)
        pos = np.nonzero(ok)[0]
        if kind == "linear":
            out = w.shape[0]
            per = int(np.prod(v.spatial)) if v.coord is not None else 1
            rows = unit[pos] * per + (v.coord[pos] if v.coord is not None else 0)
            sel = sparse.csr_matrix((scale[pos], (rows, pos)), shape=(n_src * per, w.shape[1]))
            m = np.asarray(sel @ w.T)  # (n_src * per, out)
            if v.coord is None:
                return m
            return m.reshape(n_src, per, out).transpose(0, 2, 1).reshape((n_src, out) + tuple(v.spatial))
        out, ipg = w.shape[0], w.shape[1]
        k = w.shape[2:]
        opg = out // groups
        if np.unique(unit[pos]).size == pos.size:  # each unit read once: scale the kernels' own slices
            m = np.zeros((n_src, out) + k)
            for g in range(groups):
                gp = pos[(pos >= g * ipg) & (pos < (g + 1) * ipg)]
                sl = w[g * opg:(g + 1) * opg][:, gp - g * ipg]  # (opg, len(gp), *k)
                m[unit[gp], g * opg:(g + 1) * opg] = np.moveaxis(sl, 1, 0) * scale[gp].reshape((-1, 1) + (1,) * len(k))
            return m
        full = np.zeros((ipg * groups, out) + k)
        for g in range(groups):
            full[g * ipg:(g + 1) * ipg, g * opg:(g + 1) * opg] = np.moveaxis(w[g * opg:(g + 1) * opg], 1, 0)
        sel = sparse.csr_matrix((scale[pos], (unit[pos], pos)), shape=(n_src, ipg * groups))
        return np.asarray(sel @ full.reshape(ipg * groups, -1)).reshape((n_src, out) + k)


def _numpy(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().to(device="cpu", dtype=torch.float64).numpy()


def _module_layer(w: _NetWalk, g: _Graph, node: fx.Node, module: nn.Module, kind: str) -> _Units:
    return w.layer(node, g.path(node.target), kind, _numpy(_effective_weight(module)), getattr(module, "groups", 1),
                   type(module).__name__)


def _module_batchnorm(w: _NetWalk, g: _Graph, node: fx.Node, module: nn.Module) -> _Units:
    if w.shapes[w.source(node)][1] != module.num_features:
        raise w.refuse(node, "normalises a number of channels other than the tensor's")
    gamma = _numpy(module.weight) if module.affine else None
    return w.batchnorm(node, g.path(node.target), _numpy(module.running_var), gamma, module.eps)


def _net_walk_node(w: _NetWalk, g: _Graph, node: fx.Node) -> _Units | None:
    """The units of a node's output (None for sizes and shapes), or a ValueError naming the op."""
    if node.op == "placeholder":
        if w.names:
            if node.users:
                raise ValueError(f"model's forward must take exactly one tensor input, but it also reads "
                                 f"{node.name!r}; pass a module whose forward takes one tensor")
            return None
        return w.placeholder(node)
    if node.op == "output":
        return None
    if node.op == "get_attr":
        raise ValueError(
            f"model's forward reads the parameter or buffer {g.path(node.target)!r} itself (fx node {node.name!r}, "
            f"{_where(g, node)}), for example through F.conv2d, F.linear or a layer subclass with its own "
            f"forward: netmod reads weights from Linear and Conv modules only. To analyse such a network, "
            f"{_NET_HINT}"
        )
    data = [n for n in node.all_input_nodes if n in w.values]
    if node.op == "call_module":
        module = g.submodule(node)
        if _is_linear(module):
            return _module_layer(w, g, node, module, "linear")
        if _is_conv(module):
            return _module_layer(w, g, node, module, _CONV_TYPES[next(t for t in _CONV_TYPES if isinstance(module, t))])
        if _is_bn(module):
            return _module_batchnorm(w, g, node, module)
        if any(True for _ in module.parameters()) or any(True for _ in module.buffers()):
            raise _net_refuse(g, node, "has parameters or buffers netmod cannot place in a weight graph "
                                       "(only Linear, Conv1d/2d/3d and BatchNorm are)")
        if type(module) in _KEEP_MODULES:
            return w.keep_units(node, w.source(node))
        if type(module) is nn.Flatten:
            return w.flatten(node)
        raise _net_refuse(g, node, "is not known to keep channels in place")
    target, is_method = node.target, node.op == "call_method"
    if not data:
        return None  # sizes, shapes, numbers and tensors made in forward: no units
    if (is_method and target in _METADATA_METHODS) or (
            target is builtins.getattr and len(node.args) == 2 and node.args[1] in _METADATA_ATTRIBUTES):
        w.metadata.add(node)
        return None
    if (target in _ADD_METHODS) if is_method else (target in _ADD):
        sign = _ADD_METHODS[target] if is_method else _ADD[target]
        if len(data) > 2:
            raise _net_refuse(g, node, "adds more than two tensors in one op")
        in_place = (is_method and target.endswith("_")) or target in (operator.iadd, operator.isub)
        return w.add(node, sign, in_place)
    if len(data) > 1 and not (not is_method and target in _CAT):
        raise _net_refuse(g, node, "combines two tensors other than by + or - (a product of two tensors is "
                                   "gating or attention, not a weight)")
    if not is_method and target in _CAT:
        return w.cat(node)
    if (target in _NUMBER_METHODS) if is_method else (target in _NUMBER_OPS):
        return w.keep_units(node, w.source(node))
    if (target in _FLATTEN_METHODS) if is_method else (target in _FLATTEN_FUNCTIONS):
        return w.flatten(node)
    if (target in _MEAN_METHODS) if is_method else (target in _MEAN_FUNCTIONS):
        return w.reduce(node)
    if (target in _KEEP_METHODS) if is_method else (target in _KEEP_FUNCTIONS):
        return w.keep_units(node, w.source(node))
    if not is_method and target is operator.getitem:
        raise _net_refuse(g, node, "indexes or slices a tensor (a slice of the channels is not a whole layer)")
    raise _net_refuse(g, node, "is not known to keep channels in place")


def trace_network(model: nn.Module, *, example_input: torch.Tensor | None = None, kernel_norm: str = "l1",
                  include: Any = "all") -> NetworkTrace:
    """Trace any network's forward with torch.fx into layers of units and the weight blocks between them.

    One layer of units per parametrised layer (a Linear layer's out-features, a conv layer's
    output channels), in execution order, after the input's channels (or features). Each
    layer's output is followed through parameter-free ops to the parametrised layers that
    read it (REFERENCE.md 8): activations, dropout, pooling and padding keep the channels;
    ``a + b`` (and ``a - b``) joins channel c of both to whatever reads channel c, so a
    residual skip gives edges from both summands' layers; ``torch.cat(..., dim=1)`` offsets
    the channels; flattening a map ``(N, C, h, w)`` into ``(N, C*h*w)`` gives channel c the
    ``h*w`` columns a Linear layer reads, and flattening the input before any layer makes
    its features the input units (an MLP on images). Grouped and depthwise convolutions
    join only channels of the same group. An eval-mode BatchNorm folds in as
    ``gamma / sqrt(running_var + eps)`` per channel: into the layer it follows (that
    layer's kernels into the channel) when it reads that layer's output alone, else into
    the layers that read it. Arithmetic with numbers is ignored, as for MLPs: the graph
    is one of weights.

    The edge weight between unit i of layer P and unit j of layer Q is the norm of the
    linear map from i to j: ``kernel_norm`` of the kernel slice ``K_Q[j, i]`` (conv), of
    channel i's ``h*w`` weights of a Linear layer after a flatten (shaped as the map),
    ``|W_Q[j, i]|`` for a Linear layer on features. Where one unit reaches Q through
    several channels (``cat([x, x])``, ``x + x``) the slices are summed before the norm.

    Parameters
    ----------
    model : torch.nn.Module
    example_input : torch.Tensor, optional
        One input batch. Required unless the first layer that runs is a Linear layer
        (then ``torch.zeros(2, in_features)``).
    kernel_norm : {"l1", "l2", "induced-l1", "spectral"}
        See :func:`netmod.kernel_norms`; "induced-l1" is what the 2021 authors computed.
    include : "all", "conv", "linear" or a sequence of layer names
        Which layers of units become the graph: all of them with the input ("all"),
        the conv layers only (the 2021 CNN graphs), the Linear layers only, or the named
        ones (``"input"`` and module paths). Blocks between the included layers only;
        nothing is bridged through a layer left out.

    Returns
    -------
    NetworkTrace

    Raises
    ------
    TypeError
        If `model` is not a module or `example_input` not a tensor.
    ValueError
        For an op or module netmod cannot place (named, with where it is in the source),
        a layer called twice, data-dependent control flow, a model that does not run on
        `example_input`, or an `include` that selects fewer than one layer.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from netmod.tracing import trace_network
    >>> class Block(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)
    ...         self.c = nn.Conv2d(4, 2, 1)
    ...     def forward(self, x):
    ...         h = torch.relu(self.a(x))
    ...         return self.c(torch.relu(self.b(h) + h))
    >>> t = trace_network(Block(), example_input=torch.zeros(1, 3, 8, 8))
    >>> t.names, t.sizes, t.pairs
    (('input', 'a', 'b', 'c'), (3, 4, 4, 2), ((0, 1), (1, 2), (1, 3), (2, 3)))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if example_input is not None and not isinstance(example_input, torch.Tensor):
        raise TypeError(f"example_input must be a torch.Tensor, got {type(example_input).__name__}")
    _check_settings(kernel_norm, include)
    if not any(_is_linear(m) or _is_conv(m) for m in model.modules()):
        raise ValueError(f"model must contain at least one torch.nn.Linear or Conv layer, got a "
                         f"{type(model).__name__} with none")
    if example_input is None and any(nn.parameter.is_lazy(t) for t in (*model.parameters(), *model.buffers())):
        raise ValueError("model has uninitialized lazy parameters; pass example_input so a forward pass can "
                         "materialize them")
    _check_hooks(model)
    with _eval_mode(model), torch.no_grad():
        g = _symbolic_trace(model, _NetTracer)
        nodes = list(g.module.graph.nodes)
        if example_input is None:
            example_input = _net_default_input(g, nodes)
        shapes = _run_for_shapes(g, nodes, {}, example_input)
        walk = _NetWalk(lambda node, why: _net_refuse(g, node, why), shapes, kernel_norm, _Keep(include))
        for node in nodes:
            units = _net_walk_node(walk, g, node)
            if units is not None:
                walk.values[node] = units
        walk.keep.check(walk)
        walk.build()
    unused = tuple(name for name, m in model.named_modules()
                   if (_is_linear(m) or _is_conv(m)) and name not in walk.called)
    return _network_trace(walk, include, kernel_norm, unused)


def _check_settings(kernel_norm: Any, include: Any) -> None:
    if not isinstance(kernel_norm, str) or kernel_norm not in NORMS:
        raise ValueError(f"kernel_norm must be one of {', '.join(map(repr, NORMS))}, got {kernel_norm!r}")
    if isinstance(include, str):
        if include not in ("all", "conv", "linear"):
            raise ValueError(f"include must be 'all', 'conv', 'linear' or a sequence of layer names, got {include!r}")
    elif not (isinstance(include, (list, tuple, set, frozenset)) and include and all(isinstance(n, str)
                                                                                       for n in include)):
        raise TypeError(f"include must be 'all', 'conv', 'linear' or a sequence of layer names, got {include!r}")


class _Keep:
    """Whether layer i of a walk is one of the included layers (known once the walk has named them)."""

    def __init__(self, include: Any):
        self.include, self.kinds = include, {}

    def check(self, walk: _NetWalk) -> None:
        self.kinds.update({i: (k, n) for i, (k, n) in enumerate(zip(walk.kinds, walk.names))})
        if not isinstance(self.include, str):
            missing = sorted(set(self.include) - set(walk.names))
            if missing:
                raise ValueError(f"include names layers the model does not have: {missing}; its layers are "
                                 f"{list(walk.names)}")

    def __call__(self, layer: int) -> bool:
        kind, name = self.kinds[layer]
        if self.include == "all":
            return True
        if self.include == "conv":
            return kind.startswith("conv")
        if self.include == "linear":
            return kind == "linear"
        return name in self.include


def _network_trace(walk: _NetWalk, include: Any, kernel_norm: str, unused: tuple) -> NetworkTrace:
    """The NetworkTrace of a finished walk: the included layers, renumbered, and the blocks between them."""
    kept = [i for i in range(len(walk.sizes)) if walk.keep(i)]
    if not kept:
        raise ValueError(f"include={include!r} selects no layer of the model (its layers: "
                         f"{list(zip(walk.names, walk.kinds))})")
    new = {old: i for i, old in enumerate(kept)}
    pairs, blocks = [], []
    for (s, d) in sorted(walk.blocks):
        b = np.array(walk.blocks[(s, d)], dtype=np.float64, order="C")
        b.setflags(write=False)
        pairs.append((new[s], new[d]))
        blocks.append(b)
    return NetworkTrace(
        names=tuple(walk.names[i] or "<model>" for i in kept), kinds=tuple(walk.kinds[i] for i in kept),
        sizes=tuple(walk.sizes[i] for i in kept), pairs=tuple(pairs), blocks=tuple(blocks),
        kernel_norm=kernel_norm, folded=tuple(walk.folded), unused=unused,
    )


def _net_default_input(g: _Graph, nodes: list) -> torch.Tensor:
    for node in nodes:
        if node.op == "call_module":
            m = g.submodule(node)
            if _is_linear(m):
                return torch.zeros(2, m.in_features, dtype=m.weight.dtype, device=m.weight.device)
            if _is_conv(m):
                raise ValueError(
                    f"model's first layer {_display(g.path(node.target))} is a {type(m).__name__}, whose input size "
                    f"netmod cannot guess: pass example_input (one batch, e.g. torch.zeros(1, {m.in_channels}, 32, 32))"
                )
    raise ValueError("model runs no Linear or Conv layer that netmod could infer an input size from; pass "
                     "example_input")


# --- exported programs: the same walk over the ATen graph of torch.export ---------------------------

_NET_HINT_ATEN = ("export a sub-module made of those (for example the convolutional trunk, with include='conv' "
                  "to keep its conv filters), or describe the network by its activations instead")


def _aten_set(*names: str) -> frozenset:
    return frozenset(f"aten.{n}" for n in names)


# One data input, the channels stay where they are: activations, dropout at inference, pooling, padding,
# copies and casts. Only the units matter for the graph, not what is computed on them.
_ATEN_KEEP = _aten_set(
    *(f"{op}{suffix}" for op in ("relu", "gelu", "silu", "sigmoid", "tanh", "hardtanh", "leaky_relu", "elu",
                                 "selu", "celu", "mish", "hardswish", "hardsigmoid", "threshold", "exp", "abs",
                                 "neg", "clamp", "clamp_min", "clamp_max", "relu6")
      for suffix in (".default", "_.default")),
    "softplus.default", "hardshrink.default", "softshrink.default", "log_sigmoid.default",
    "clamp.Tensor", "_softmax.default", "softmax.int", "_log_softmax.default", "log_softmax.int",
    "dropout.default", "feature_dropout.default", "alpha_dropout.default", "feature_alpha_dropout.default",
    "native_dropout.default", "clone.default", "contiguous.default", "detach.default", "alias.default",
    "lift_fresh_copy.default", "_to_copy.default", "to.dtype", "to.dtype_layout", "to.device",
    "max_pool1d.default", "max_pool2d.default", "max_pool3d.default", "max_pool2d_with_indices.default",
    "max_pool3d_with_indices.default", "avg_pool1d.default", "avg_pool2d.default", "avg_pool3d.default",
    "adaptive_avg_pool1d.default", "adaptive_avg_pool2d.default", "adaptive_avg_pool3d.default",
    "_adaptive_avg_pool2d.default", "_adaptive_avg_pool3d.default", "adaptive_max_pool1d.default",
    "adaptive_max_pool2d.default", "adaptive_max_pool3d.default", "pad.default", "constant_pad_nd.default",
    "reflection_pad1d.default", "reflection_pad2d.default", "reflection_pad3d.default",
    "replication_pad1d.default", "replication_pad2d.default", "replication_pad3d.default", "_pad_circular.default",
)
# Dropout that runs only when its train argument is False (at inference).
_ATEN_DROPOUT = {"aten.dropout.default": 2, "aten.feature_dropout.default": 2, "aten.alpha_dropout.default": 2,
                 "aten.feature_alpha_dropout.default": 2, "aten.native_dropout.default": 2}
# Arithmetic with numbers (x * 2, x / 255): the weight graph is of weights, as for MLPs.
_ATEN_NUMBER = _aten_set(
    "mul.Tensor", "mul.Scalar", "mul_.Tensor", "mul_.Scalar", "div.Tensor", "div.Scalar", "div.Tensor_mode",
    "div_.Tensor", "div_.Scalar", "pow.Tensor_Scalar", "add.Scalar", "sub.Scalar", "rsub.Scalar",
    "floor_divide.default", "floor_divide.Scalar",
)
_ATEN_ADD = {"aten.add.Tensor": 1.0, "aten.add_.Tensor": 1.0, "aten.sub.Tensor": -1.0, "aten.sub_.Tensor": -1.0}
_ATEN_FLATTEN = _aten_set("view.default", "reshape.default", "_unsafe_view.default", "flatten.using_ints",
                          "squeeze.dim", "squeeze.dims", "squeeze.default")
_ATEN_SPATIAL = _aten_set("unsqueeze.default", "squeeze.dim", "squeeze.dims")
_ATEN_REDUCE = _aten_set("mean.dim", "sum.dim_IntList", "amax.default", "amin.default")
# name -> (position of groups, position of transposed or None)
_ATEN_CONV = {**{f"aten.conv{d}d.{o}": (6, None) for d in (1, 2, 3) for o in ("default", "padding")},
              "aten.convolution.default": (8, 6)}
# name -> (positions of running_var, of the training flag (None: none), of eps)
_ATEN_BN = {"aten.batch_norm.default": (4, 5, 7), "aten._native_batch_norm_legit_no_training.default": (4, None, 6)}
_ATEN_MATMUL = _aten_set("linear.default", "addmm.default", "mm.default", "matmul.default")
# Ops a parameter may go through on its way to a layer (a transpose for addmm, a pruning mask).
_ATEN_WEIGHT_OPS = _aten_set("t.default", "permute.default", "transpose.int", "numpy_T.default", "mul.Tensor",
                             "detach.default", "clone.default", "alias.default", "_to_copy.default", "to.dtype",
                             "contiguous.default", "view.default", "reshape.default")
# Tensors made in forward from sizes and numbers only: no units, like numbers.
_ATEN_CREATE = _aten_set("zeros.default", "ones.default", "full.default", "empty.memory_format", "arange.default",
                         "arange.start", "arange.start_step", "scalar_tensor.default", "zeros_like.default",
                         "ones_like.default", "full_like.default", "empty_like.default")
_ATEN_NOOP = _aten_set("_assert_tensor_metadata.default", "_assert_scalar.default", "sym_constrain_range.default",
                       "sym_constrain_range_for_size.default")
_ATEN_TUPLE = _aten_set("_native_batch_norm_legit_no_training.default", "max_pool2d_with_indices.default",
                        "max_pool3d_with_indices.default", "adaptive_max_pool1d.default",
                        "adaptive_max_pool2d.default", "adaptive_max_pool3d.default", "native_dropout.default")
# Known ops that cannot be placed, with the reason.
_ATEN_REFUSED = {
    "aten._native_batch_norm_legit.no_stats": "is a BatchNorm without running statistics "
                                              "(track_running_stats=False): it normalises with the batch's "
                                              "statistics, which no fixed weight can stand for",
    "aten._native_batch_norm_legit.default": "is a BatchNorm in training mode (batch statistics): export "
                                             "model.eval()",
    "aten._native_batch_norm_legit_functional.default": "is a BatchNorm in training mode (batch statistics): "
                                                        "export model.eval()",
    "aten.native_batch_norm.default": "is a BatchNorm in training mode (batch statistics): export model.eval()",
    "aten.slice.Tensor": "slices a tensor (a slice of the channels is not a whole layer)",
    "aten.select.int": "indexes a tensor (a slice of the channels is not a whole layer)",
    "aten.index.Tensor": "indexes a tensor (a slice of the channels is not a whole layer)",
    "aten.bmm.default": "multiplies two batches of matrices (attention), not a tensor by a weight",
    "aten.conv_transpose1d.default": "is a transposed convolution, which netmod's weight graph does not take",
    "aten.conv_transpose2d.input": "is a transposed convolution, which netmod's weight graph does not take",
    "aten.conv_transpose3d.input": "is a transposed convolution, which netmod's weight graph does not take",
}
_ATEN_OPS = (_ATEN_KEEP | _ATEN_NUMBER | set(_ATEN_ADD) | _ATEN_FLATTEN | _ATEN_SPATIAL | _ATEN_REDUCE
             | {"aten.cat.default"} | set(_ATEN_CONV) | set(_ATEN_BN) | _ATEN_MATMUL | _ATEN_WEIGHT_OPS
             | _ATEN_CREATE | _ATEN_NOOP | set(_ATEN_REFUSED))
_LAYER_KIND_NAMES = {"linear": "Linear", "conv1d": "Conv1d", "conv2d": "Conv2d", "conv3d": "Conv3d"}


def _aten_target(name: str) -> Any:
    """The ATen op named ``name`` ("aten.conv2d.default") if netmod knows it, else None.

    Only names in netmod's own tables are looked up, so a name read from a file never reaches anything but
    a built-in ATen operator.
    """
    if name not in _ATEN_OPS:
        return None
    _, op, overload = name.split(".")
    packet = getattr(torch.ops.aten, op, None)
    return getattr(packet, overload, None) if packet is not None else None


def _unknown_aten_op(*args: Any, **kwargs: Any) -> None:
    """Stands for an op of a .pt2 file netmod does not know (named in the node's meta); never run."""
    raise RuntimeError("an op netmod does not know is never run")


def _aten_name(node: fx.Node) -> str:
    if node.target is _unknown_aten_op:
        return node.meta["aten_op"]
    if node.target is operator.getitem:
        return "getitem"
    if isinstance(node.target, torch._ops.OpOverload):
        return str(node.target)
    return getattr(node.target, "__name__", str(node.target))


@dataclass(eq=False)
class _AtenProgram:
    """The ATen graph of an exported program as the walk reads it, from an ExportedProgram or a .pt2 file.

    ``shapes``: node -> shape of its (first) tensor output, static ints. ``tensors``: placeholder -> (fully
    qualified name, tensor) of the parameters, buffers and constants. ``what``: how errors name the program.
    """

    graph: fx.Graph
    shapes: dict
    tensors: dict
    user_input: fx.Node
    what: str


def _layer_name(fqn: str) -> str:
    """The module path of a layer from its weight's name ("layer1.0.conv1.weight" -> "layer1.0.conv1")."""
    for suffix in (".parametrizations.weight.original", ".weight_orig", ".weight"):
        if ("." + fqn).endswith(suffix):
            return fqn[: max(0, len(fqn) - len(suffix))]
    return fqn


def _aten_where(meta: dict) -> str:
    parts = []
    stack = meta.get("nn_module_stack") or {}
    paths = [v[0] for v in stack.values() if isinstance(v, (tuple, list)) and v and v[0]]
    parts.append(f"in the forward of module {paths[-1]!r}" if paths else "in the model's forward")
    location = _source_line(meta.get("stack_trace"))
    if location:
        parts.append(location)
    return ", ".join(parts)


def _aten_error(what: str, op: str, node_name: str, meta: dict, why: str) -> ValueError:
    return ValueError(
        f"{what} runs ATen op {op!r} (node {node_name!r}, {_aten_where(meta)}), which {why}; {_NET}. To analyse "
        f"such a network, {_NET_HINT_ATEN}"
    )


def _aten_refuse(prog: _AtenProgram, node: fx.Node, why: str) -> ValueError:
    return _aten_error(prog.what, _aten_name(node), node.name, node.meta, why)


def _aten_in_place(name: str) -> bool:
    """Whether an ATen op ("aten.add_.Tensor") writes into its first argument."""
    parts = name.split(".")
    return len(parts) == 3 and parts[1].endswith("_")


class _AtenWalk:
    """Reads each ATen op's weights and settings and drives a _NetWalk."""

    def __init__(self, prog: _AtenProgram, walk: _NetWalk):
        self.prog, self.w = prog, walk
        self.weights: dict = {}  # node -> (fqn, tensor): parameters and what is computed from them alone
        self.consts: set = set()  # tensors made from numbers in forward
        self.side: dict = {}  # getitem node -> index: indices and statistics of multi-output ops

    def refuse(self, node, why):
        return _aten_refuse(self.prog, node, why)

    def tensor_inputs(self, node: fx.Node) -> list:
        found: list = []
        fx.node.map_arg((node.args, node.kwargs), found.append)
        return found

    def weight(self, node: fx.Node, arg: Any, what: str, ndim: tuple | None = None) -> torch.Tensor | None:
        """The parameter an op reads as its ``what`` (None where the op has none); refuses data or other tensors."""
        if arg is None:
            return None
        if not isinstance(arg, fx.Node) or arg not in self.weights:
            raise self.refuse(node, f"takes its {what} from a tensor computed in forward, not a parameter")
        t = self.weights[arg][1]
        if ndim is not None and t.dim() not in ndim:
            raise self.refuse(node, f"takes a {t.dim()}-D {what} {self.weights[arg][0]!r}")
        return t

    def check_inputs(self, node: fx.Node, allowed_weights: tuple = ()) -> list:
        """The data inputs of an op; refuses any parameter outside ``allowed_weights`` and any side output."""
        data = []
        for n in self.tensor_inputs(node):
            if n in self.w.values:
                data.append(n)
            elif n in self.weights:
                if n not in allowed_weights and _aten_in_place(_aten_name(node)):
                    raise self.refuse(node, f"changes the parameter or buffer {self.weights[n][0]!r} in place "
                                            "while it runs (a BatchNorm in training mode?): export model.eval()")
                if n not in allowed_weights:
                    raise ValueError(
                        f"{self.prog.what} reads the parameter or buffer {self.weights[n][0]!r} itself in ATen "
                        f"op {_aten_name(node)!r} (node {node.name!r}, {_aten_where(node.meta)}), not as the weight "
                        f"of a Linear or conv layer or the statistics of a BatchNorm: netmod reads weights from "
                        f"those only. To analyse such a network, {_NET_HINT_ATEN}"
                    )
            elif n in self.side:
                raise self.refuse(node, f"reads output {self.side[n]} of {n.args[0].name!r} (indices or batch "
                                        "statistics), not a tensor of units")
        return data

    def layer(self, node: fx.Node, name: str, kind: str, weight: torch.Tensor, groups: int) -> _Units:
        return self.w.layer(node, name, kind, _numpy(weight), int(groups), _LAYER_KIND_NAMES[kind])

    def walk(self, node: fx.Node) -> _Units | None:
        prog, w = self.prog, self.w
        if node.op == "placeholder":
            if node in prog.tensors:
                self.weights[node] = prog.tensors[node]
                return None
            if node is not prog.user_input:
                raise ValueError(f"{prog.what} takes the input {node.name!r}, which its signature does not name as "
                                 "a parameter, buffer, constant or its one tensor input")
            shape = prog.shapes.get(node)
            if shape is None or len(shape) < 2:
                raise ValueError(f"{prog.what} must take one batch of shape (N, features) or (N, channels, ...), "
                                 f"got an input of shape {shape}")
            return w.placeholder(node)
        if node.op == "output" or node in self.side:
            return None
        if node.op != "call_function":
            raise self.refuse(node, f"is a {node.op} node, which an exported ATen graph does not have")
        name = _aten_name(node)
        if name in _ATEN_NOOP:
            return None
        if name in _ATEN_REFUSED:
            raise self.refuse(node, _ATEN_REFUSED[name])
        if name != "getitem" and name not in _ATEN_OPS:
            raise self.refuse(node, "is not an op netmod knows")
        inputs = self.tensor_inputs(node)
        if not any(n in w.values for n in inputs):
            return self.no_data(node, name, inputs)
        if name == "getitem":
            self.check_inputs(node)
            if _aten_name(node.args[0]) not in _ATEN_TUPLE or node.args[1] != 0:
                raise self.refuse(node, f"takes output {node.args[1]} of {_aten_name(node.args[0])!r}, which is not "
                                        "a tensor of units")
            return w.keep_units(node, node.args[0])
        if name in _ATEN_CONV:
            return self.conv(node, name)
        if name in _ATEN_MATMUL:
            return self.matmul(node, name)
        if name in _ATEN_BN:
            return self.batchnorm(node, name)
        if name in _ATEN_DROPOUT and _dim_arg(node, _ATEN_DROPOUT[name], "train", False) is not False:
            raise self.refuse(node, "drops units at random (train=True): export the model in eval mode")
        data = self.check_inputs(node)
        if name in _ATEN_ADD:
            sign = _ATEN_ADD[name] * _dim_arg(node, 2, "alpha", 1)
            if len(data) > 2:
                raise self.refuse(node, "adds more than two tensors in one op")
            return w.add(node, sign, in_place=_aten_in_place(name))
        if name == "aten.cat.default":
            return w.cat(node)
        if len(data) > 1:
            raise self.refuse(node, "combines two tensors other than by + or - (a product of two tensors is "
                                    "gating or attention, not a weight)")
        if name in _ATEN_SPATIAL and self.spatial_only(node, data[0]):
            # 1-D pooling decomposes to unsqueeze, 2-D pooling, squeeze: the channels stay.
            v = w.values[data[0]]
            return _Units(v.terms, v.size, fresh=v.fresh if len(w.data_users(data[0])) == 1 else None)
        if name in _ATEN_FLATTEN:
            return w.flatten(node)
        if name in _ATEN_REDUCE:
            return w.reduce(node)
        if name in _ATEN_KEEP or name in _ATEN_NUMBER:
            return w.keep_units(node, data[0])
        raise self.refuse(node, "is not known to keep channels in place")

    def spatial_only(self, node: fx.Node, src: fx.Node) -> bool:
        before, after = self.prog.shapes[src], self.prog.shapes[node]
        return (self.w.values[src].coord is None and len(before) >= 3 and len(after) >= 3
                and before[:2] == after[:2])

    def no_data(self, node: fx.Node, name: str, inputs: list) -> None:
        """An op on parameters (a transpose, a pruning mask) or on numbers only: no units."""
        self.check_inputs(node, tuple(inputs) if name in _ATEN_WEIGHT_OPS else ())
        weights = [n for n in inputs if n in self.weights]
        if weights:
            if any(n not in self.weights for n in inputs):
                raise self.refuse(node, "computes a weight from a parameter and a tensor made in forward")
            args, kwargs = fx.node.map_arg((node.args, node.kwargs), lambda n: self.weights[n][1])
            names = [self.weights[n][0] for n in weights]
            # weight_orig * weight_mask (pruning) is named for the layer, not its mask.
            name = next((n for n in names if _layer_name(n) != n), names[0])
            try:
                with torch.no_grad():
                    self.weights[node] = (name, node.target(*args, **kwargs))
            except (RuntimeError, TypeError, ValueError) as err:
                raise self.refuse(node, f"cannot be computed on the parameters it reads ({type(err).__name__}: "
                                        f"{str(err).splitlines()[0] if str(err) else ''})") from err
            return None
        if inputs and name not in _ATEN_CREATE and not all(n in self.consts for n in inputs):
            raise self.refuse(node, "computes from tensors netmod cannot place")
        self.consts.add(node)
        return None

    def conv(self, node: fx.Node, name: str) -> _Units:
        groups_at, transposed_at = _ATEN_CONV[name]
        if transposed_at is not None and _dim_arg(node, transposed_at, "transposed", False):
            raise self.refuse(node, "is a transposed convolution, which netmod's weight graph does not take")
        wnode, bias = _dim_arg(node, 1, "weight", None), _dim_arg(node, 2, "bias", None)
        weight = self.weight(node, wnode, "weight", (3, 4, 5))
        if weight is None:
            raise self.refuse(node, "has no weight")
        self.weight(node, bias, "bias", (1,))
        self.check_inputs(node, (wnode, bias))
        return self.layer(node, _layer_name(self.weights[wnode][0]), f"conv{weight.dim() - 2}d", weight,
                          _dim_arg(node, groups_at, "groups", 1))

    def matmul(self, node: fx.Node, name: str) -> _Units:
        """linear(x, W, b), addmm(b, x, W.T), mm(x, W.T), matmul(x, W.T): a Linear layer of weight W (out, in)."""
        if name == "aten.linear.default":
            x_at, w_at, bias, transposed = 0, 1, _dim_arg(node, 2, "bias", None), False
        elif name == "aten.addmm.default":
            x_at, w_at, bias, transposed = 1, 2, node.args[0], True
        else:
            x_at, w_at, bias, transposed = 0, 1, None, True
        x, wnode = node.args[x_at], node.args[w_at]
        if not (isinstance(x, fx.Node) and x in self.w.values):
            raise self.refuse(node, "multiplies a parameter by the data from the left (not a Linear layer)")
        weight = self.weight(node, wnode, "weight", (2,))
        self.weight(node, bias, "bias", (1,))
        self.check_inputs(node, (wnode, bias))
        if transposed:
            weight = weight.T
        if name == "aten.addmm.default":
            weight = weight * _dim_arg(node, 4, "alpha", 1)
        return self.layer(node, _layer_name(self.weights[wnode][0]), "linear", weight, 1)

    def batchnorm(self, node: fx.Node, name: str) -> _Units:
        var_at, training_at, eps_at = _ATEN_BN[name]
        if training_at is not None and _dim_arg(node, training_at, "training", False):
            if _dim_arg(node, var_at, "running_var", None) is None:
                raise self.refuse(node, _ATEN_REFUSED["aten._native_batch_norm_legit.no_stats"])
            raise self.refuse(node, _ATEN_REFUSED["aten.native_batch_norm.default"])
        slots = [_dim_arg(node, i, n, None) for i, n in enumerate(("input", "weight", "bias", "running_mean",
                                                                   "running_var"))]
        gamma = self.weight(node, slots[1], "weight", (1,))
        for i, what in ((2, "bias"), (3, "running_mean")):
            self.weight(node, slots[i], what, (1,))
        var = self.weight(node, slots[4], "running_var", (1,))
        self.check_inputs(node, tuple(slots[1:]))
        named = slots[4] if var is not None else slots[1]
        bn = self.weights[named][0].rpartition(".")[0] if named is not None else ""
        return self.w.batchnorm(node, bn, _numpy(var), _numpy(gamma), float(_dim_arg(node, eps_at, "eps", 1e-5)))


def _trace_aten(prog: _AtenProgram, kernel_norm: str, include: Any) -> NetworkTrace:
    """The NetworkTrace of an exported program's ATen graph (see :func:`trace_exported`)."""
    _check_settings(kernel_norm, include)
    walk = _NetWalk(lambda node, why: _aten_refuse(prog, node, why), prog.shapes, kernel_norm, _Keep(include),
                    node_word="nodes")
    aten = _AtenWalk(prog, walk)
    nodes = list(prog.graph.nodes)
    for node in nodes:
        if (node.op == "call_function" and node.target is operator.getitem and node.args[1] != 0
                and _aten_name(node.args[0]) in _ATEN_TUPLE):
            aten.side[node] = node.args[1]
            walk.metadata.add(node)
        elif node.op == "call_function" and _aten_name(node) in _ATEN_NOOP:
            walk.metadata.add(node)
    with torch.no_grad():
        for node in nodes:
            units = aten.walk(node)
            if units is not None:
                walk.values[node] = units
    if not walk.called:
        raise ValueError(f"{prog.what} runs no Linear or conv layer")
    walk.keep.check(walk)
    walk.build()
    used = {n for n in nodes if n in prog.tensors and n.users}
    unused = tuple(_layer_name(fqn) for n, (fqn, t) in prog.tensors.items()
                   if n not in used and t.dim() >= 2 and _layer_name(fqn) != fqn)
    return _network_trace(walk, include, kernel_norm, unused)


def _static_shape(value: Any, what: str) -> tuple | None:
    """The shape of a node's (first) tensor value as ints; refuses symbolic (dynamic) sizes."""
    if isinstance(value, (tuple, list)):
        value = value[0] if value else None
    if not isinstance(value, torch.Tensor):
        return None
    shape = []
    for d in value.shape:
        if not isinstance(d, int):
            raise ValueError(f"{what} was exported with dynamic shapes (a size {d} is symbolic); netmod reads "
                             "exported programs with static shapes: export without dynamic_shapes")
        shape.append(d)
    return tuple(shape)


def _program_of(program: Any) -> _AtenProgram:
    """An ExportedProgram as the ATen walk reads it: its graph, shapes from node.meta and its tensors."""
    from torch.export.graph_signature import InputKind, OutputKind

    what = "the exported program"
    sig = program.graph_signature
    tensors, user = {}, []
    by_name = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    for spec in sig.input_specs:
        node = by_name.get(getattr(spec.arg, "name", None))
        if spec.kind == InputKind.USER_INPUT:
            if node is not None:
                user.append(node)
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
            source = program.constants if spec.target in program.constants else program.state_dict
            tensors[node] = (spec.target, source[spec.target])
        else:
            raise ValueError(f"{what} takes a {spec.kind.name.lower()} input {spec.target!r}, which netmod "
                             "cannot read (it reads parameters, buffers, tensor constants and one input tensor)")
    for spec in sig.output_specs:
        if spec.kind != OutputKind.USER_OUTPUT:
            raise ValueError(f"{what} has a {spec.kind.name.lower()} output ({spec.target!r}): it changes its "
                             "state while it runs (a BatchNorm in training mode?); export model.eval()")
    if len(user) != 1:
        raise ValueError(f"{what} must take exactly one tensor input, got {len(user)} user inputs")
    shapes = {n: _static_shape(n.meta.get("val"), what) for n in program.graph.nodes}
    return _AtenProgram(program.graph, shapes, tensors, user[0], what)


def trace_exported(program: Any, *, kernel_norm: str = "l1", include: Any = "all") -> NetworkTrace:
    """The layers of units and weight blocks of a ``torch.export`` program, read from its ATen graph.

    The same graph as :func:`trace_network` gives for the module that was exported (REFERENCE.md 8),
    read from the exported program's ATen ops instead of the module's forward: one layer of units per
    convolution (``aten.conv1d/2d/3d``, ``aten.convolution`` with groups) and per Linear layer
    (``aten.linear``, ``aten.addmm`` / ``aten.mm`` of a transposed parameter), named by the module
    path of its weight (``"layer1.0.conv1"`` for ``"layer1.0.conv1.weight"``); inference-mode batch
    norm folded in; activations, dropout, pooling, padding, ``add`` / ``sub`` of tensors, ``cat`` on
    channels, ``view`` / ``reshape`` / ``flatten`` and means over spatial dimensions followed as
    :func:`trace_network` follows them. The graph signature tells which placeholders are parameters
    and buffers. Nothing is run: shapes come from the program's recorded metadata.

    Parameters
    ----------
    program : torch.export.ExportedProgram
        ``torch.export.export(model.eval(), (x,))``, before or after ``run_decompositions()``, with
        static shapes. To read a saved ``.pt2`` file, use :func:`netmod.torch_models.load_network`,
        which reads the archive without ``torch.export.load`` (which can run code from the file).
    kernel_norm, include
        As for :func:`trace_network`.

    Returns
    -------
    NetworkTrace

    Raises
    ------
    TypeError
        If `program` is not an ExportedProgram.
    ValueError
        For an ATen op netmod does not know or cannot place (named, with the module and source line
        it comes from), a parameter read other than as a layer's weight, a layer run twice, dynamic
        shapes, inputs other than one tensor, or a program that changes its buffers (training mode).

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from netmod.tracing import trace_exported
    >>> m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2))
    >>> ep = torch.export.export(m.eval(), (torch.zeros(1, 3, 4, 4),))
    >>> t = trace_exported(ep)
    >>> t.names, t.sizes, t.pairs
    (('input', '0', '4'), (3, 4, 2), ((0, 1), (1, 2)))
    """
    from torch.export import ExportedProgram

    if not isinstance(program, ExportedProgram):
        raise TypeError(f"program must be a torch.export.ExportedProgram, got {type(program).__name__}")
    return _trace_aten(_program_of(program), kernel_norm, include)


# torch.export's serialization schema (torch/_export/serde/schema.py): ScalarType and MemoryFormat codes.
_SERDE_DTYPES = {1: torch.uint8, 2: torch.int8, 3: torch.int16, 4: torch.int32, 5: torch.int64, 6: torch.float16,
                 7: torch.float32, 8: torch.float64, 12: torch.bool, 13: torch.bfloat16}
_SERDE_MEMORY_FORMATS = {1: torch.contiguous_format, 2: torch.channels_last, 3: torch.channels_last_3d,
                         4: torch.preserve_format}
_SERDE_PLAIN = ("as_int", "as_ints", "as_float", "as_floats", "as_bool", "as_bools", "as_string", "as_strings")


class _Serialized:
    """Builds the fx graph of a serialized exported program (JSON, torch.export's schema); runs nothing."""

    def __init__(self, document: Any, tensors: dict, source: str):
        self.source, self.tensors = source, tensors
        try:
            module = document["graph_module"]
            self.g, self.signature = module["graph"], module["signature"]
            self.nodes, self.values = self.g["nodes"], self.g["tensor_values"]
        except (KeyError, TypeError):
            self.fail("it is not an exported program in torch.export's serialization schema")

    def fail(self, why: str):
        raise ValueError(f"{self.source} cannot be read: {why}")

    def dim(self, value: Any, what: str) -> int:
        if isinstance(value, dict) and isinstance(value.get("as_int"), int):
            return value["as_int"]
        raise ValueError(f"{self.source} was exported with dynamic shapes ({what} has the symbolic size {value!r}); "
                         "netmod reads exported programs with static shapes: export without dynamic_shapes")

    def shape(self, name: str) -> tuple:
        meta = self.values.get(name)
        if not isinstance(meta, dict):
            self.fail(f"the graph has no metadata for the tensor {name!r}")
        return tuple(self.dim(s, f"the tensor {name!r}") for s in meta.get("sizes", []))

    def arg(self, arg: Any, env: dict) -> Any:
        """A node argument as fx takes it: nodes for tensors, plain values for the rest."""
        if not isinstance(arg, dict) or len(arg) != 1:
            self.fail(f"a node argument {arg!r} is not in torch.export's schema")
        (kind, value), = arg.items()

        def tensor(v):
            name = v.get("name") if isinstance(v, dict) else None
            if name not in env:
                self.fail(f"a node reads the tensor {name!r} before any node computes it")
            return env[name]

        def optional(v):
            return None if isinstance(v, dict) and "as_none" in v else tensor(v.get("as_tensor"))

        if kind == "as_none":
            return None
        if kind == "as_tensor":
            return tensor(value)
        if kind == "as_tensors":
            return [tensor(v) for v in value]
        if kind == "as_optional_tensors":
            return [optional(v) for v in value]
        if kind == "as_optional_tensor":
            return optional(value)
        if kind in _SERDE_PLAIN:
            return list(value) if isinstance(value, list) else value
        if kind in ("as_sym_int", "as_sym_ints"):
            ints = [self.dim(v, "a node argument") for v in (value if kind == "as_sym_ints" else [value])]
            return ints if kind == "as_sym_ints" else ints[0]
        if kind == "as_scalar_type" and value in _SERDE_DTYPES:
            return _SERDE_DTYPES[value]
        if kind == "as_memory_format" and value in _SERDE_MEMORY_FORMATS:
            return _SERDE_MEMORY_FORMATS[value]
        if kind == "as_device":
            return torch.device("cpu")  # the graph is read, never run on a device
        if kind == "as_layout" and value == 7:
            return torch.strided
        self.fail(f"a node argument of kind {kind!r} ({value!r}) is not one netmod reads")

    @staticmethod
    def module_stack(text: Any) -> dict:
        """The serialized nn_module_stack ("key,path,type;...") as fx's {key: (path, type)}."""
        stack = {}
        for item in (text if isinstance(text, str) else "").split(";"):
            parts = item.split(",")
            if len(parts) == 3:
                stack[parts[0]] = (parts[1], parts[2])
        return stack

    def inputs(self) -> tuple:
        """({placeholder name: (fqn, tensor)}, user input name) from the graph signature."""
        specs, user = {}, []
        fields = {"parameter": "parameter_name", "buffer": "buffer_name", "tensor_constant": "tensor_constant_name"}
        for spec in self.signature.get("input_specs", []):
            (kind, body), = spec.items()
            if kind == "user_input":
                arg = body.get("arg", {})
                if "as_tensor" not in arg:
                    raise ValueError(f"{self.source} takes a non-tensor input {arg!r}; netmod reads programs of one "
                                     "tensor input")
                user.append(arg["as_tensor"]["name"])
            elif kind in fields:
                fqn = body.get(fields[kind])
                if fqn not in self.tensors:
                    self.fail(f"the {kind} {fqn!r} of its graph signature is not stored")
                specs[body["arg"]["name"]] = (fqn, self.tensors[fqn])
            else:
                raise ValueError(f"{self.source} takes a {kind} input, which netmod cannot read (it reads parameters, "
                                 "buffers, tensor constants and one input tensor)")
        for spec in self.signature.get("output_specs", []):
            (kind, _), = spec.items()
            if kind != "user_output":
                raise ValueError(f"{self.source} has a {kind} output: it changes its state while it runs (a "
                                 "BatchNorm in training mode?); export model.eval()")
        if len(user) != 1:
            raise ValueError(f"{self.source} must take exactly one tensor input, got {len(user)} user inputs")
        return specs, user[0]

    def program(self) -> _AtenProgram:
        specs, user = self.inputs()
        used = set()
        for item in [*self.nodes, {"inputs": [{"arg": a} for a in self.g.get("outputs", [])]}]:
            for inp in item.get("inputs", []):
                arg = inp.get("arg", {})
                for v in (arg.get("as_tensors") or arg.get("as_optional_tensors") or [arg.get("as_tensor") or {}]):
                    if isinstance(v, dict):
                        used.add((v.get("as_tensor") or v).get("name"))
        graph, env, shapes, tensors = fx.Graph(), {}, {}, {}
        for arg in self.g.get("inputs", []):
            if "as_tensor" not in arg:
                self.fail(f"a graph input {arg!r} is not a tensor")
            name = arg["as_tensor"]["name"]
            node = env[name] = graph.placeholder(name)
            shapes[node] = self.shape(name)
            if name in specs:
                tensors[node] = specs[name]
        if user not in env:
            self.fail(f"the user input {user!r} is not a graph input")
        for item in self.nodes:
            self.node(item, graph, env, shapes, used)
        graph.output(tuple(self.arg(a, env) for a in self.g.get("outputs", [])))
        return _AtenProgram(graph, shapes, tensors, env[user], self.source)

    def node(self, item: dict, graph: fx.Graph, env: dict, shapes: dict, used: set) -> None:
        target_name = str(item.get("target", ""))
        op = target_name[len("torch.ops."):] if target_name.startswith("torch.ops.") else target_name
        meta = item.get("metadata") or {}
        args, kwargs = [], {}
        for inp in item.get("inputs", []):
            value = self.arg(inp.get("arg"), env)
            if inp.get("kind") == 2:
                kwargs[inp["name"]] = value
            else:
                args.append(value)
        # An op netmod does not know is kept under a stand-in that is never run, so that the walk refuses
        # the first op it cannot place, in the graph's order, as for a live program.
        node = graph.create_node("call_function", _aten_target(op) or _unknown_aten_op, tuple(args), kwargs,
                                 name=str(item.get("name")))
        node.meta.update(stack_trace=meta.get("stack_trace"), aten_op=op,
                         nn_module_stack=self.module_stack(meta.get("nn_module_stack")))
        outputs = item.get("outputs", [])
        if len(outputs) == 1 and isinstance(outputs[0], dict) and "as_tensors" in outputs[0]:
            outputs = [{"as_tensor": t} for t in outputs[0]["as_tensors"]] + [{"as_none": True}]  # a list
        names = [o["as_tensor"]["name"] for o in outputs if isinstance(o, dict) and "as_tensor" in o]
        if len(names) != len([o for o in outputs if not (isinstance(o, dict) and "as_none" in o)]):
            self.fail(f"node {node.name!r} has outputs {outputs!r}, not tensors")
        shapes[node] = self.shape(names[0]) if names else None
        if len(names) == 1 and len(outputs) == 1:
            env[names[0]] = node
            return
        for i, name in enumerate(names):  # a tuple: getitem nodes for the outputs read, as fx has them
            if name in used:
                part = env[name] = graph.create_node("call_function", operator.getitem, (node, i), name=name)
                shapes[part] = self.shape(name)


def trace_serialized(document: Any, tensors: dict, *, kernel_norm: str = "l1", include: Any = "all",
                     source: str = "the serialized exported program") -> NetworkTrace:
    """The NetworkTrace of a serialized exported program: the JSON graph of a .pt2 archive and its tensors.

    What :func:`trace_exported` computes from an ExportedProgram, computed from the program as
    ``torch.export.save`` writes it: ``document`` is its ``models/model.json`` (torch.export's
    serialization schema: the ATen graph, each tensor's shape, the graph signature) and ``tensors``
    its parameters, buffers and constants by name. Nothing is run or unpickled: op names are looked
    up in netmod's own tables of ATen ops, and an op not there is refused by name when the walk
    reaches it. :func:`netmod.torch_models.load_network` reads both from a file safely.

    Parameters
    ----------
    document : dict
        The parsed JSON of ``models/model.json``.
    tensors : dict of str to torch.Tensor
        Every parameter, buffer and tensor constant the graph signature names.
    kernel_norm, include
        As for :func:`trace_network`.
    source : str
        How error messages name the program (a file's path).

    Returns
    -------
    NetworkTrace

    Raises
    ------
    ValueError
        For a document outside the schema, dynamic shapes, a signature netmod cannot read, and all
        that :func:`trace_exported` refuses.

    Examples
    --------
    >>> import io, json, zipfile, torch
    >>> from torch import nn
    >>> from netmod.tracing import trace_serialized
    >>> m = nn.Sequential(nn.Linear(3, 2))
    >>> buf = io.BytesIO()
    >>> torch.export.save(torch.export.export(m.eval(), (torch.zeros(1, 3),)), buf)
    >>> name = next(n for n in zipfile.ZipFile(buf).namelist() if n.endswith("models/model.json"))
    >>> document = json.loads(zipfile.ZipFile(buf).read(name))
    >>> t = trace_serialized(document, dict(m.state_dict()))
    >>> t.names, t.sizes, t.blocks[0].shape
    (('input', '0'), (3, 2), (3, 2))
    """
    if not isinstance(document, dict):
        raise TypeError(f"document must be the dict of a parsed models/model.json, got {type(document).__name__}")
    if not (isinstance(tensors, dict) and all(isinstance(t, torch.Tensor) for t in tensors.values())):
        raise TypeError("tensors must be a dict of names to torch.Tensor")
    _check_settings(kernel_norm, include)
    return _trace_aten(_Serialized(document, tensors, source).program(), kernel_norm, include)


# --- where each hidden unit's activation is read (netmod.from_activations; REFERENCE.md 6e) ---------

# Elementwise ops linear in the tensor (arithmetic with numbers, dtype casts): they make no post-activation.
# Every other elementwise op of the tables above is an activation function.
_ARITHMETIC_NAMES = frozenset({"add", "sub", "mul", "div", "true_divide", "truediv", "floordiv", "neg", "pos",
                               "add_", "sub_", "mul_", "div_", "float", "double"})
_REDUCE_BYTES = 1 << 25  # float64 copy of a conv map reduced at once (32 MiB)


def _act_metadata(node: fx.Node) -> bool:
    if node.op == "call_method" and node.target in _METADATA_METHODS:
        return True
    return (node.op == "call_function" and node.target is builtins.getattr
            and tuple(node.args[1:2]) in (("shape",), ("ndim",)))


def _act_users(node: fx.Node) -> list:
    return [u for u in node.users if not _act_metadata(u)]


def _act_elementwise(g: _Graph, node: fx.Node, src: fx.Node) -> str | None:
    """What an op reading only ``src`` is: "identity", "linear" or "nonlinear"; None if not elementwise."""
    if [n for n in node.all_input_nodes if not _act_metadata(n)] != [src]:
        return None
    if node.op == "call_module":
        effect = _ELEMENTWISE_MODULES.get(type(g.submodule(node)))
        return None if effect is None else ("identity" if effect == "identity" else "nonlinear")
    if node.op == "call_method":
        if node.target not in _ELEMENTWISE_METHODS:
            return None
        return "linear" if node.target in _ARITHMETIC_NAMES else "nonlinear"
    if node.op == "call_function" and node.target in _ELEMENTWISE_FUNCTIONS:
        if node.target in _DROPOUT_FUNCTIONS:
            return "identity"
        return "linear" if getattr(node.target, "__name__", "") in _ARITHMETIC_NAMES else "nonlinear"
    return None


def _act_no_post(g: _Graph, name: str, kind: str, layer_node: fx.Node, pre: fx.Node, users: list) -> ValueError:
    def describe(u: fx.Node) -> str:
        op = _op_name(g, u)
        return f"{op} {g.path(u.target)!r}" if u.op == "call_module" else f"{op!r} (fx node {u.name!r})"

    after = f" (after {_op_name(g, pre)} {g.path(pre.target)!r})" if pre is not layer_node else ""
    if len(users) != 1:
        why = f"its output{after} is read by {len(users)} ops ({', '.join(describe(u) for u in users)})"
    else:
        adds = ("add", "add_", "iadd", "sub", "sub_", "isub")
        verb = "is added to another tensor by" if _op_name(g, users[0]) in adds else "goes into"
        why = f"its output{after} {verb} {describe(users[0])}"
    if kind == "linear":
        option, alternative = "linear_activation='post'", "linear_activation='pre' (the layer's output itself)"
    else:
        option = "conv_activation='l2-post'"
        alternative = "conv_activation='l1-pre' (the L1 norm of its pre-activation)"
    return ValueError(f"layer {name!r} ({type(g.submodule(layer_node)).__name__}) has no post-activation of its "
                      f"own: {why} before any activation function, so {option} is not defined for it. Use "
                      f"{alternative}")


def _act_reduce(t: torch.Tensor, how: str) -> torch.Tensor:
    """(N, C) float64 on the CPU: a Linear layer's output as it is, or a norm over a conv map's positions."""
    if how == "value":
        return t.detach().to(device="cpu", dtype=torch.float64)
    dims = tuple(range(2, t.dim()))
    per = max(1, _REDUCE_BYTES // max(1, 8 * t[0].numel()))
    out = []
    for a in range(0, t.shape[0], per):
        x = t[a:a + per].detach().to(device="cpu", dtype=torch.float64)
        out.append(x.abs().sum(dim=dims) if how == "l1" else x.square().sum(dim=dims).sqrt())
    return torch.cat(out)


class ActivationReader:
    """Reads every hidden unit's activation, one number per example, from a traced network's forward.

    Made by :func:`activation_reader`. Attributes: ``names``, ``kinds``, ``sizes`` of the hidden
    layers (module paths, "linear"/"conv2d"/..., units) in execution order; ``layers``, their
    indices in :func:`trace_network`'s layers (input = 0); ``reads``, how each is read ("post" or
    "pre" for Linear layers, "l2-post" or "l1-pre" for conv layers); ``n_units``; ``flatten``:
    whether inputs are flattened to (N, in_features) before the first (Linear) layer.
    """

    def __init__(self, model, g, captures, last, flatten):
        self.model, self._g, self._captures, self._last, self.flatten = model, g, captures, last, flatten
        self.names = tuple(c[1] for c in captures)
        self.kinds = tuple(c[2] for c in captures)
        self.sizes = tuple(c[3] for c in captures)
        self.layers = tuple(c[0] for c in captures)
        self.reads = tuple(c[5] for c in captures)
        self.n_units = int(sum(self.sizes))
        self._nodes = list(g.module.graph.nodes)[:last + 1]
        self._last_use = {}
        for i, node in enumerate(self._nodes):
            for inp in node.all_input_nodes:
                self._last_use[inp] = i

    def eval_mode(self):
        """Context manager: the model in eval mode, every module's training flag restored on exit."""
        return _eval_mode(self.model)

    def read(self, x: torch.Tensor) -> np.ndarray:
        """The (N, n_units) float64 activations of a batch ``x``, in eval mode, without gradients."""
        if self.flatten and x.dim() > 2:
            x = x.reshape(x.shape[0], -1)
        wanted = {c[4]: (c, start) for c, start in zip(self._captures, np.cumsum((0,) + self.sizes[:-1]))}
        out = np.empty((x.shape[0], self.n_units))
        env: dict = {}
        with TORCH_LOCK, _eval_mode(self.model), torch.no_grad():
            for i, node in enumerate(self._nodes):
                env[node] = x if node.op == "placeholder" else _run_node(self._g.module, node, env)
                hit = wanted.get(node)
                if hit is not None:
                    (_, name, _, size, _, how), start = hit
                    # Read at once: an in-place op later in forward (ReLU(inplace=True), +=) may overwrite it.
                    vals = _act_reduce(env[node], "value" if how in ("post", "pre") else how[:2]).numpy()
                    if vals.shape != (x.shape[0], size):
                        raise ValueError(f"layer {name!r} gives activations of shape {vals.shape}, expected "
                                         f"{(x.shape[0], size)}")
                    if not np.isfinite(vals).all():
                        raise ValueError(f"layer {name!r} has non-finite activations (nan or inf) on this data")
                    out[:, start:start + size] = vals
                for inp in node.all_input_nodes:
                    if self._last_use.get(inp) == i:
                        env.pop(inp, None)
        return out


def activation_reader(model: nn.Module, *, example_input: torch.Tensor, conv_activation: str = "l2-post",
                      linear_activation: str = "post") -> ActivationReader:
    """Where each hidden unit's activation is read in a network's forward (for :func:`netmod.from_activations`).

    The hidden layers are the layers of :func:`trace_network` but the input and the output layers
    (those whose output reaches the model's output through parameter-free ops only). A layer's
    pre-activation is its output, followed by an eval-mode BatchNorm that reads it alone (as the
    weight graph folds it); its post-activation is the end of the chain of single-use elementwise
    ops after the pre-activation (activations, dropout, arithmetic with numbers), which must hold a
    nonlinearity: otherwise (a skip added before the ReLU, pooling first, no activation) the layer
    is refused for the "post" choices. A Linear unit's activation is its post- or pre-activation
    (``linear_activation``); a conv filter's is the L2 norm over positions of its post-activation
    map ("l2-post") or the L1 norm of its pre-activation map ("l1-pre").

    Parameters
    ----------
    model : torch.nn.Module
    example_input : torch.Tensor
        One input batch (at least one example); flattened first when the first layer is a Linear
        layer whose in_features is the size of one example.
    conv_activation : {"l2-post", "l1-pre"}
    linear_activation : {"post", "pre"}

    Returns
    -------
    ActivationReader

    Raises
    ------
    TypeError, ValueError
        As :func:`trace_network`; ValueError for a model without hidden layers, a unit with no
        post-activation of its own under a "post" choice, and dropout applied in eval mode.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from netmod.tracing import activation_reader
    >>> m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5),
    ...                   nn.Tanh(), nn.Linear(5, 2))
    >>> r = activation_reader(m, example_input=torch.zeros(2, 1, 8, 8))
    >>> r.names, r.kinds, r.sizes, r.layers, r.reads
    (('0', '4'), ('conv2d', 'linear'), (4, 5), (1, 2), ('l2-post', 'post'))
    >>> r.read(torch.rand(3, 1, 8, 8)).shape
    (3, 9)
    """
    if conv_activation not in ("l2-post", "l1-pre"):
        raise ValueError(f"conv_activation must be one of 'l2-post', 'l1-pre', got {conv_activation!r}")
    if linear_activation not in ("post", "pre"):
        raise ValueError(f"linear_activation must be one of 'post', 'pre', got {linear_activation!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(example_input, torch.Tensor):
        raise TypeError(f"example_input must be a torch.Tensor, got {type(example_input).__name__}")
    with TORCH_LOCK:
        g = _symbolic_trace(model, _NetTracer)
        nodes = list(g.module.graph.nodes)
        layers = {g.path(n.target) or "<model>": n for n in nodes
                  if n.op == "call_module" and (_is_linear(g.submodule(n)) or _is_conv(g.submodule(n)))}
        first = next((g.submodule(n) for n in layers.values()), None)
        flatten = (_is_linear(first) and example_input.dim() > 2
                   and int(np.prod(example_input.shape[1:])) == first.in_features)
        if flatten:
            example_input = example_input.reshape(example_input.shape[0], -1)
        trace = trace_network(model, example_input=example_input)
    for node in nodes:
        if node.op == "call_function" and node.target in _DROPOUT_FUNCTIONS:
            training = node.args[2] if len(node.args) > 2 else node.kwargs.get("training", True)
            if training is not False:
                raise ValueError(f"model's forward calls {_op_name(g, node)} with training=True (fx node "
                                 f"{node.name!r}), so it drops units at random in eval mode too; pass "
                                 "training=self.training")
    params = set(layers.values())
    outputs, seen = set(), set()
    stack = [n for n in nodes if n.op == "output"]
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            if n in params:
                outputs.add(n)
            else:
                stack.extend(n.all_input_nodes)
    captures = []
    for index, (name, kind, size) in enumerate(zip(trace.names, trace.kinds, trace.sizes)):
        if kind == "input" or layers[name] in outputs:
            continue
        node = pre = layers[name]
        users = _act_users(pre)
        if len(users) == 1 and users[0].op == "call_module" and _is_bn(g.submodule(users[0])):
            pre = users[0]
        how = linear_activation if kind == "linear" else conv_activation
        read = pre
        if how.endswith("post"):
            nonlinear = False
            while True:
                users = _act_users(read)
                effect = _act_elementwise(g, users[0], read) if len(users) == 1 else None
                if effect is None:
                    break
                nonlinear |= effect == "nonlinear"
                read = users[0]
            if not nonlinear:
                raise _act_no_post(g, name, kind, node, pre, users)
        captures.append((index, name, kind, int(size), read, how))
    if not captures:
        raise ValueError(f"model has no hidden layer: its parametrised layers {list(trace.names[1:])} all feed its "
                         "output directly")
    return ActivationReader(model, g, captures, max(nodes.index(c[4]) for c in captures), flatten)


__all__ += ["ActivationReader", "activation_reader"]
