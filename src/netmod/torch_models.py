"""PyTorch MLPs as per-layer weight matrices and neuron graphs.

This is the only netmod module that imports torch at top level; the rest of
the package stays usable without torch installed.
"""

from __future__ import annotations

import collections
import io
import pickle

import numpy as np
import torch
from torch import nn


__all__ = ["from_torch", "keras_like_mlp", "layer_weights_from_module", "load_weights"]

_CHAIN_ERROR = "not a chain of Linear layers with elementwise activations between them"

# Exact types, not isinstance: a subclass may override forward with anything.
_ALLOWED_BETWEEN = frozenset(
    {
        nn.Identity,
        nn.Flatten,
        nn.Dropout,
        nn.Dropout1d,
        nn.Dropout2d,
        nn.Dropout3d,
        nn.AlphaDropout,
        nn.FeatureAlphaDropout,
        nn.ReLU,
        nn.ReLU6,
        nn.LeakyReLU,
        nn.ELU,
        nn.SELU,
        nn.CELU,
        nn.GELU,
        nn.SiLU,
        nn.Mish,
        nn.Tanh,
        nn.Sigmoid,
        nn.LogSigmoid,
        nn.Hardtanh,
        nn.Hardsigmoid,
        nn.Hardswish,
        nn.Hardshrink,
        nn.Softshrink,
        nn.Tanhshrink,
        nn.Softsign,
        nn.Softplus,
        nn.Threshold,
        nn.Softmax,
        nn.Softmin,
        nn.LogSoftmax,
    }
)


def _traced_modules(model):
    """Name every module whose calls must be observed.

    Linear layers count as units: their own children (parametrizations, for
    example) run whenever the weight is read and say nothing about the chain.
    """
    names = {}

    def visit(module, name):
        if id(module) in names:
            return
        names[id(module)] = (module, name or "<model>")
        if isinstance(module, nn.Linear):
            return
        for child_name, child in module.named_children():
            visit(child, f"{name}.{child_name}" if name else child_name)

    visit(model, "")
    return list(names.values())


def _describe(module, name):
    return f"{name!r} ({type(module).__name__})"


def _trace(model, traced, example_input):
    """Run one forward pass and return the modules in the order they finished."""
    calls = []
    handles = []
    try:
        for module, name in traced:
            handles.append(
                module.register_forward_hook(
                    lambda mod, args, out, _name=name: calls.append((mod, _name))
                )
            )
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _linear_calls(traced, calls):
    """Check that every Linear ran exactly once; return them in execution order."""
    linears = [(m, n) for m, n in traced if isinstance(m, nn.Linear)]
    counts = {}
    for module, _ in calls:
        counts[id(module)] = counts.get(id(module), 0) + 1
    for module, name in linears:
        count = counts.get(id(module), 0)
        if count > 1:
            raise ValueError(
                f"model must call each Linear layer once (shared weights are not a "
                f"layered MLP), but Linear {name!r} ran {count} times"
            )
        if count == 0:
            raise ValueError(
                f"model must call every Linear layer in forward, but Linear {name!r} "
                f"never ran"
            )
    return [(m, n) for m, n in calls if isinstance(m, nn.Linear)]


def _check_chain(calls):
    positions = [i for i, (m, _) in enumerate(calls) if isinstance(m, nn.Linear)]
    first, last = positions[0], positions[-1]
    for i, (module, name) in enumerate(calls):
        if isinstance(module, nn.Linear):
            continue
        has_state = any(True for _ in module.parameters(recurse=False)) or any(
            True for _ in module.buffers(recurse=False)
        )
        if has_state:
            raise ValueError(
                f"model is {_CHAIN_ERROR}: module {_describe(module, name)} has "
                f"parameters or buffers and runs in forward"
            )
        is_leaf = next(module.children(), None) is None
        if is_leaf and first < i < last and type(module) not in _ALLOWED_BETWEEN:
            raise ValueError(
                f"model is {_CHAIN_ERROR}: module {_describe(module, name)} runs "
                f"between Linear layers and is not a known elementwise or "
                f"shape-only module"
            )


def _effective_weight(linear):
    # While torch.nn.utils.prune is active, `weight` is a plain attribute that
    # only prune's forward pre-hook refreshes; the product does not depend on
    # that hook having run since weight_orig or the mask last changed.
    if hasattr(linear, "weight_orig") and hasattr(linear, "weight_mask"):
        weight = linear.weight_orig * linear.weight_mask
    else:
        weight = linear.weight
    weight = weight.detach().to(device="cpu", dtype=torch.float64)
    # np.array copies, so the result never aliases the model's storage (a
    # transposed (1, n) tensor would otherwise already be contiguous).
    return np.array(weight.numpy().T, dtype=np.float64, order="C")


def _default_inputs(traced):
    seen = set()
    for module, _ in traced:
        if isinstance(module, nn.Linear) and module.in_features not in seen:
            seen.add(module.in_features)
            weight = module.weight
            yield torch.zeros(1, module.in_features, dtype=weight.dtype, device=weight.device)


def _trace_default(model, traced):
    """Trace with the first zero input that runs and calls every Linear once."""
    first_error = None
    for candidate in _default_inputs(traced):
        try:
            calls = _trace(model, traced, candidate)
        except Exception:
            continue
        try:
            _linear_calls(traced, calls)
        except ValueError as err:
            first_error = first_error or err
            continue
        return calls
    if first_error is not None:
        raise first_error
    raise ValueError(
        "model does not run on torch.zeros(1, in_features) for the in_features of "
        "any of its Linear layers; pass example_input"
    )


def layer_weights_from_module(model, *, example_input=None):
    """Signed weight matrices of an MLP's Linear layers, in execution order.

    Forward hooks record which modules run during one forward pass (in eval
    mode, without gradients); the Linear layers are returned in the order they
    ran, which need not be the order they were registered in. Biases are
    ignored.

    Parameters
    ----------
    model : torch.nn.Module
        A chain of ``nn.Linear`` layers, each called exactly once, with only
        parameter-free elementwise or shape-only modules (ReLU, Tanh, Sigmoid,
        GELU, Softmax, Dropout, Flatten, Identity, ...) between them. Pruning
        masks from ``torch.nn.utils.prune`` are applied. Functional code in a
        ``forward`` (skip connections, ``torch.cat``) is invisible to hooks
        and is not detected.
    example_input : torch.Tensor, optional
        Passed as ``model(example_input)`` to find the execution order. If
        None, ``torch.zeros(1, in_features)`` is tried for the Linear layers
        in registration order and the first input that runs and calls every
        Linear layer once is used.

    Returns
    -------
    list of numpy.ndarray
        One float64 C-contiguous array per Linear layer, of shape
        ``(in_features, out_features)``: the transpose of ``weight``, signed,
        with any pruning mask applied. The arrays are copies.

    Raises
    ------
    TypeError
        If `model` is not a ``torch.nn.Module``.
    ValueError
        If `model` has no Linear layer; if `example_input` cannot be passed
        through `model` (or, without it, no zero input runs); if a Linear layer
        runs more than once or never; if consecutive Linear layers do not
        chain (``out_features`` of one != ``in_features`` of the next); if a
        module with parameters or buffers other than Linear runs, or a module
        that is not known to be elementwise or shape-only runs between Linear
        layers.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from netmod.torch_models import layer_weights_from_module
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> [w.shape for w in layer_weights_from_module(model)]
    [(4, 3), (3, 2)]
    >>> bool((layer_weights_from_module(model)[1] == model[2].weight.detach().numpy().T).all())
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    traced = _traced_modules(model)
    if not any(isinstance(m, nn.Linear) for m, _ in traced):
        raise ValueError(
            f"model must contain at least one torch.nn.Linear layer, got a "
            f"{type(model).__name__} with none"
        )
    if example_input is None and any(
        nn.parameter.is_lazy(p) for p in model.parameters()
    ):
        raise ValueError(
            "model has uninitialized lazy parameters; pass example_input so a "
            "forward pass can materialize them"
        )

    training = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        if example_input is None:
            calls = _trace_default(model, traced)
        else:
            try:
                calls = _trace(model, traced, example_input)
            except Exception as err:
                raise ValueError(
                    f"example_input could not be passed through model: "
                    f"{type(err).__name__}: {err}"
                ) from err
    finally:
        for module, mode in training:
            module.training = mode

    linears = _linear_calls(traced, calls)
    _check_chain(calls)
    weights = [_effective_weight(m) for m, _ in linears]
    for (w_in, (_, name_in)), (w_out, (_, name_out)) in zip(
        zip(weights, linears), zip(weights[1:], linears[1:])
    ):
        if w_in.shape[1] != w_out.shape[0]:
            raise ValueError(
                f"model is {_CHAIN_ERROR}: Linear {name_in!r} has out_features="
                f"{w_in.shape[1]} but the next Linear to run, {name_out!r}, has "
                f"in_features={w_out.shape[0]}"
            )
    return weights


def from_torch(model, *, example_input=None):
    """The neuron graph of an MLP.

    One vertex per unit of every layer (inputs first, then each Linear
    layer's outputs, in execution order) and an edge of weight ``|w|`` for
    every nonzero weight, as built by :func:`netmod.graphs.from_layers` from
    :func:`layer_weights_from_module`.

    Parameters
    ----------
    model : torch.nn.Module
        A chain of Linear layers with elementwise activations between them;
        see :func:`layer_weights_from_module`.
    example_input : torch.Tensor, optional
        Input for the forward pass that finds the execution order; see
        :func:`layer_weights_from_module`.

    Returns
    -------
    igraph.Graph
        Undirected graph with vertex attributes ``layer`` and ``unit``, edge
        attribute ``weight`` and graph attributes ``layer_sizes`` and
        ``layer_weights`` (the signed ``(in, out)`` matrices).

    Raises
    ------
    TypeError
        If `model` is not a ``torch.nn.Module``.
    ValueError
        If `model` is not a chain of Linear layers, or `example_input` cannot
        be passed through it; see :func:`layer_weights_from_module`.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from netmod.torch_models import from_torch
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> graph = from_torch(model)
    >>> graph.vcount(), graph.ecount()
    (9, 18)
    >>> list(graph["layer_sizes"])
    [4, 3, 2]
    """
    from .graphs import from_layers

    return from_layers(layer_weights_from_module(model, example_input=example_input))


def keras_like_mlp(sizes, *, dropout=0.0, seed=0):
    """An MLP initialised as the Keras models of the modularity papers.

    ``Linear`` layers of the given sizes with ReLU between them (and dropout
    after each hidden layer when ``dropout > 0``); weights Glorot/Xavier-uniform
    and biases zero, which is Keras' ``Dense`` default and not PyTorch's
    (REFERENCE: the weight distribution is what the n-cut measures).

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first, e.g. ``[784, 256, 256, 256, 256, 10]``.
    dropout : float, default 0.0
        Dropout probability after each hidden layer, in [0, 1).
    seed : int, default 0
        Seed of the initialisation (a private ``torch.Generator``; the global
        RNG is left alone).

    Returns
    -------
    torch.nn.Sequential

    Raises
    ------
    ValueError
        If fewer than two sizes are given, a size is < 1, or dropout is out of
        range.

    Examples
    --------
    >>> from netmod.torch_models import keras_like_mlp
    >>> m = keras_like_mlp([4, 3, 2], seed=0)
    >>> [tuple(p.shape) for p in m.parameters()]
    [(3, 4), (3,), (2, 3), (2,)]
    >>> float(m[0].bias.detach().abs().sum())
    0.0
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must hold at least two positive layer sizes, got {sizes}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    gen = torch.Generator().manual_seed(int(seed))
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = nn.Linear(n_in, n_out)
        with torch.no_grad():
            bound = (6.0 / (n_in + n_out)) ** 0.5
            lin.weight.copy_(torch.rand(n_out, n_in, generator=gen, dtype=lin.weight.dtype) * 2 * bound - bound)
            lin.bias.zero_()
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(float(dropout)))
    return nn.Sequential(*layers)


class _ScriptObject:
    """The attributes of one pickled TorchScript object (module), without its code."""

    def __init__(self, *args):
        self.attrs = {}

    def __setstate__(self, state):
        self.attrs = dict(state) if isinstance(state, dict) else {}


class _ScriptUnpickler(pickle.Unpickler):
    """Reads a TorchScript archive's data.pkl: TorchScript classes become plain
    attribute holders, tensors are rebuilt from the archive's storages, and
    every other global is refused, so nothing from the file is executed."""

    def __init__(self, data, archive, prefix):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if module.startswith("__torch__."):
            return type(name, (_ScriptObject,), {})
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return torch._utils._rebuild_tensor_v2
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" and name.endswith("Storage") and isinstance(getattr(torch, name, None), type):
            return getattr(torch, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a weights file")

    def persistent_load(self, pid):
        _, storage_type, key, _, _ = pid
        raw = self.archive.read(f"{self.prefix}data/{key}")
        return torch.TypedStorage(wrap_storage=torch.UntypedStorage.from_buffer(raw, dtype=torch.uint8),
                                  dtype=storage_type.dtype, _internal=True)


def _script_state(path):
    """Tensors of a TorchScript archive by attribute path ("0.weight"), in order."""
    import warnings
    import zipfile

    with zipfile.ZipFile(path) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation
        name = next(n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl"))
        root = _ScriptUnpickler(archive.read(name), archive, name[: -len("data.pkl")]).load()
    state = collections.OrderedDict()

    def walk(obj, prefix):
        for key, value in obj.attrs.items():
            if isinstance(value, _ScriptObject):
                walk(value, f"{prefix}{key}.")
            elif torch.is_tensor(value):
                state[prefix + key] = value

    if not isinstance(root, _ScriptObject):
        raise ValueError(f"the archive holds a {type(root).__name__}, not a module")
    walk(root, "")
    return state


def load_weights(path, *, sizes=None):
    """Per-layer (in, out) weights of an MLP saved as a state_dict or TorchScript file.

    A state_dict is read with ``torch.load(..., weights_only=True)``, which
    never runs code from the file. Its 2-D ``*.weight`` tensors are taken in
    the order they were saved (PyTorch saves in module registration order);
    pruned entries (``*.weight_orig`` with ``*.weight_mask``) give the
    effective weights. A TorchScript archive is read the same way from its
    pickled attributes, without ``torch.jit.load``: its code is never run,
    and an archive whose pickle names anything but TorchScript objects and
    tensors is refused.

    Parameters
    ----------
    path : str or os.PathLike
    sizes : sequence of int, optional
        Expected layer sizes, inputs first; checked when given.

    Returns
    -------
    list of ndarray

    Raises
    ------
    ValueError
        If the file holds no chain of Linear weights, or not the given sizes.

    Examples
    --------
    >>> import tempfile, os, torch
    >>> from netmod.torch_models import keras_like_mlp, load_weights
    >>> path = os.path.join(tempfile.mkdtemp(), "m.pt")
    >>> torch.save(keras_like_mlp([5, 4, 3]).state_dict(), path)
    >>> [w.shape for w in load_weights(path, sizes=[5, 4, 3])]
    [(5, 4), (4, 3)]
    """
    import zipfile

    path = str(path)
    is_script = False
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            is_script = any("/code/" in name or name.startswith("code/") for name in archive.namelist())
    if is_script:
        try:
            state = _script_state(path)
        except Exception as exc:  # noqa: BLE001 - refused global or corrupt archive
            raise ValueError(f"path {path!r} is not a loadable TorchScript archive (its code is never run): {exc}") from exc
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling refusal or corrupt file
            raise ValueError(f"path {path!r} is not a loadable state_dict (weights_only=True): {exc}") from exc
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise ValueError(f"path {path!r} holds a {type(state).__name__}, not a state_dict")
    weights = []
    for key, value in state.items():
        if not torch.is_tensor(value) or value.dim() != 2:
            continue
        if key.endswith(".weight_orig"):
            mask = state.get(key[: -len("_orig")] + "_mask")
            value = value * mask if mask is not None else value
        elif not key.endswith("weight") or key.endswith("_mask"):
            continue
        weights.append(value.detach().to(torch.float64).cpu().numpy().T.copy())
    if not weights:
        raise ValueError(f"path {path!r} holds no 2-D weight tensors")
    for i in range(1, len(weights)):
        if weights[i].shape[0] != weights[i - 1].shape[1]:
            raise ValueError(
                f"path {path!r}: weight {i} has {weights[i].shape[0]} inputs but weight {i - 1} "
                f"has {weights[i - 1].shape[1]} outputs; not a chain of Linear layers"
            )
    found = [weights[0].shape[0]] + [w.shape[1] for w in weights]
    if sizes is not None and [int(s) for s in sizes] != found:
        raise ValueError(f"sizes {list(sizes)} do not match the saved layers {found}")
    return weights
