"""PyTorch MLPs: Keras-like initialisation and weights read from saved files.

A model object in Python becomes layers through :mod:`netmod.tracing`, which
traces its forward. This module reads files, whose code is never run. It
imports torch at top level and is imported by netmod only when torch is
used, so the rest of the package stays usable without torch installed.
"""

from __future__ import annotations

import collections
import io
import pickle

import torch
from torch import nn

__all__ = ["keras_like_mlp", "load_weights"]


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


# The torch.nn modules a TorchScript archive may hold. The archive's forward
# code is never run, so netmod trusts only modules whose forward it knows:
# an nn.Sequential runs its children in index order, and these children are
# Linear layers or parameter-free elementwise (or, as Flatten on 2-D data,
# shape-only) modules.
_ARCHIVE_MODULES = frozenset(
    f"{t.__module__}.{t.__name__}"
    for t in (
        nn.Sequential, nn.Linear, nn.Identity, nn.Flatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
        nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU,
        nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh, nn.Sigmoid, nn.LogSigmoid, nn.Hardtanh,
        nn.Hardsigmoid, nn.Hardswish, nn.Hardshrink, nn.Softshrink, nn.Tanhshrink, nn.Softsign,
        nn.Softplus, nn.Threshold, nn.Softmax, nn.Softmin, nn.LogSoftmax,
    )
)


class _ScriptObject:
    """The attributes of one pickled TorchScript object (module), without its code."""

    qualname = ""

    def __init__(self, *args):
        self.attrs = {}

    def __setstate__(self, state):
        self.attrs = dict(state) if isinstance(state, dict) else {}


class _ScriptUnpickler(pickle.Unpickler):
    """Reads a TorchScript archive's data.pkl: TorchScript classes become plain
    attribute holders that remember their class name, tensors are rebuilt from
    the archive's storages, and every other global is refused, so nothing from
    the file is executed."""

    def __init__(self, data, archive, prefix):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if module.startswith("__torch__."):
            # TorchScript mangles the names of distinct types of one class: ...container.___torch_mangle_3.Sequential.
            parts = [p for p in module[len("__torch__."):].split(".") if not p.startswith("___torch_mangle_")]
            return type(name, (_ScriptObject,), {"qualname": ".".join([*parts, name])})
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


def _script_root(path):
    """The root module object of a TorchScript archive, read without running it."""
    import warnings
    import zipfile

    with zipfile.ZipFile(path) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation
        name = next(n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl"))
        root = _ScriptUnpickler(archive.read(name), archive, name[: -len("data.pkl")]).load()
    if not isinstance(root, _ScriptObject):
        raise ValueError(f"the archive holds a {type(root).__name__}, not a module")
    return root


def _script_state(root, path):
    """Tensors of a TorchScript module by attribute path ("0.weight"), in execution order.

    Refuses archives of modules other than an nn.Sequential of the modules in
    _ARCHIVE_MODULES: a custom forward could hold skips, which the attributes
    do not show.
    """
    state = collections.OrderedDict()

    def walk(obj, prefix):
        if obj.qualname not in _ARCHIVE_MODULES:
            where = f"module {prefix[:-1]!r}" if prefix else "its root module"
            raise ValueError(
                f"path {path!r} is a TorchScript archive whose {where} is a {obj.qualname or 'TorchScript object'}, "
                f"not a built-in torch.nn module; netmod never runs an archive's code, so it reads only "
                f"nn.Sequential archives of Linear layers and parameter-free elementwise modules (a custom "
                f"forward could hold skip connections). Save the model's state_dict instead, or analyse the "
                f"model object in Python with netmod.from_torch, which traces its forward"
            )
        # A Sequential runs its children in index order, whatever the order of the pickled attributes.
        items = sorted(obj.attrs.items(), key=lambda kv: (0, int(kv[0])) if kv[0].isdigit() else (1, 0))
        for key, value in items:
            if isinstance(value, _ScriptObject):
                walk(value, f"{prefix}{key}.")
            elif torch.is_tensor(value):
                state[prefix + key] = value

    if root.qualname != "torch.nn.modules.container.Sequential":
        kind = root.qualname or "TorchScript object"
        raise ValueError(
            f"path {path!r} is a TorchScript archive of a {kind}, not of an nn.Sequential; netmod never runs "
            f"an archive's code, so it cannot know the order and connections of a custom forward (skip "
            f"connections). Save an nn.Sequential (or the state_dict), or analyse the model object in Python "
            f"with netmod.from_torch, which traces its forward"
        )
    walk(root, "")
    return state


def _chain_orders(shapes, limit):
    """Up to ``limit`` orders (tuples of indices) of the (in, out) ``shapes`` in which each out equals the next in."""
    n = len(shapes)
    found = []
    used = [False] * n

    def extend(order):
        if len(found) >= limit:
            return
        if len(order) == n:
            found.append(tuple(order))
            return
        for j in range(n):
            if not used[j] and (not order or shapes[order[-1]][1] == shapes[j][0]):
                used[j] = True
                order.append(j)
                extend(order)
                order.pop()
                used[j] = False

    if _may_chain(shapes):
        extend([])
    return found


def _may_chain(shapes):
    """Whether the shapes, as edges in -> out of a multigraph of sizes, admit a trail using each once (Euler)."""
    out_deg = collections.Counter(a for a, _ in shapes)
    in_deg = collections.Counter(b for _, b in shapes)
    sizes = set(out_deg) | set(in_deg)
    starts = [s for s in sizes if out_deg[s] - in_deg[s] == 1]
    ends = [s for s in sizes if in_deg[s] - out_deg[s] == 1]
    balanced = all(abs(out_deg[s] - in_deg[s]) <= 1 for s in sizes)
    if not balanced or len(starts) > 1 or len(ends) > 1 or len(starts) != len(ends):
        return False
    neighbours = collections.defaultdict(set)
    for a, b in shapes:
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen, todo = set(), [shapes[0][0]]
    while todo:
        s = todo.pop()
        if s not in seen:
            seen.add(s)
            todo.extend(neighbours[s])
    return seen == sizes


def _sequential_index(key):
    """("net.", (5, 0)) for the key "net.5.0.weight" of nested nn.Sequential layers; None unless the module
    path ends in integers (other names do not say in which order the modules run)."""
    parts = key.split(".")
    if parts[-1] not in ("weight", "weight_orig"):
        return None
    head = parts[:-1]
    n_int = 0
    while n_int < len(head) and head[len(head) - 1 - n_int].isdigit():
        n_int += 1
    if n_int == 0:
        return None
    prefix = ".".join(head[: len(head) - n_int])
    return prefix, tuple(int(p) for p in head[len(head) - n_int:])


def _check_chain(path, keys, weights):
    for i in range(1, len(weights)):
        if weights[i].shape[0] != weights[i - 1].shape[1]:
            raise ValueError(
                f"path {path!r}: weight {keys[i]!r} has {weights[i].shape[0]} inputs but the layer before it, "
                f"{keys[i - 1]!r}, has {weights[i - 1].shape[1]} outputs; not a chain of Linear layers"
            )


def _order_weights(path, keys, weights):
    """The weights in chain order: the one order that chains by shape, or Sequential index order; else refuse."""
    shapes = [w.shape for w in weights]
    orders = _chain_orders(shapes, limit=64)
    if not orders:
        listed = ", ".join(f"{k} {tuple(s)}" for k, s in zip(keys, shapes))
        raise ValueError(
            f"path {path!r}: the 2-D weights (as (in, out): {listed}) do not chain in any order (out_features "
            f"of one layer = in_features of the next); not a chain of Linear layers"
        )
    if len(orders) == 1:
        return [weights[i] for i in orders[0]]
    indices = [_sequential_index(k) for k in keys]
    if all(indices) and len({prefix for prefix, _ in indices}) == 1:
        by_index = sorted(range(len(keys)), key=lambda i: indices[i][1])
        if all(shapes[a][1] == shapes[b][0] for a, b in zip(by_index, by_index[1:])):
            return [weights[i] for i in by_index]
    counts = collections.Counter(shapes)
    ambiguous = sorted(
        {keys[i] for i in range(len(keys)) if counts[shapes[i]] > 1}
        | {keys[o[p]] for o in orders for p in range(len(keys)) if o[p] != orders[0][p]}
    )
    raise ValueError(
        f"path {path!r}: the 2-D weights {', '.join(map(repr, ambiguous))} chain in more than one order "
        f"(equal-shaped or cyclic layers), and their names do not give it (nn.Sequential keys such as "
        f"'0.weight', 'net.2.weight', one prefix for all); a state_dict does not record the execution order. "
        f"Save the model as an nn.Sequential, or analyse the model object in Python with netmod.from_torch, "
        f"which traces its forward"
    )


def _linear_weights(path, state):
    """(keys, (in, out) float64 weights) of the Linear layers of a state_dict, in key order.

    Every tensor must belong to a Linear layer: a 2-D ``weight`` (or a pruned
    ``weight_orig`` with its ``weight_mask``) and a 1-D ``bias`` of its
    out_features. Anything else (BatchNorm statistics, convolution kernels,
    LayerNorm scales) would be left out of the graph without a word, so it is
    refused.
    """
    def module(key):
        return key.rpartition(".")[0]

    linears, foreign = {}, []
    for key, value in state.items():
        if not torch.is_tensor(value):
            continue
        leaf = key.rpartition(".")[2]
        if leaf in ("weight", "weight_orig") and value.dim() == 2:
            if module(key) in linears:
                foreign.append(f"{key} (a second weight of {module(key) or 'the model'!r})")
            linears[module(key)] = key
        elif leaf in ("weight_mask", "bias"):
            continue  # checked against their layer's weight below
        else:
            foreign.append(f"{key} ({value.dim()}-D)")
    keys, weights = [], []
    for name, key in linears.items():
        value = state[key]
        prefix = f"{name}." if name else ""
        if key.endswith("weight_orig"):
            mask = state.get(prefix + "weight_mask")
            if not (torch.is_tensor(mask) and mask.shape == value.shape):
                foreign.append(f"{key} (pruned, without a weight_mask of its shape)")
                continue
            value = value * mask
        bias = state.get(prefix + "bias")
        if bias is not None and not (torch.is_tensor(bias) and bias.shape == (value.shape[0],)):
            foreign.append(f"{prefix}bias (shape {tuple(bias.shape)} for a weight of shape {tuple(value.shape)})")
        keys.append(key)
        weights.append(value.detach().to(torch.float64).cpu().numpy().T.copy())
    for key, value in state.items():
        leaf, name = key.rpartition(".")[2], module(key)
        if torch.is_tensor(value) and leaf in ("weight_mask", "bias") and name not in linears:
            foreign.append(f"{key} ({value.dim()}-D, without a Linear weight)")
    if foreign:
        raise ValueError(
            f"path {path!r} holds tensors that are not Linear weights or biases: {', '.join(foreign[:6])}"
            f"{', ...' if len(foreign) > 6 else ''}. netmod reads saved MLPs (Linear layers only) from files; "
            "for any other network pass the model object to netmod.from_torch, which traces its forward"
        )
    if not weights:
        raise ValueError(f"path {path!r} holds no 2-D weight tensors")
    return keys, weights


def load_weights(path, *, sizes=None):
    """Per-layer (in, out) weights of an MLP saved as a state_dict or TorchScript file.

    A state_dict is read with ``torch.load(..., weights_only=True)``, which
    never runs code from the file; its 2-D ``*.weight`` tensors are the
    layers, and pruned entries (``*.weight_orig`` with ``*.weight_mask``) give
    the effective weights. A TorchScript archive is read the same way from
    its pickled attributes, without ``torch.jit.load``: its code is never run,
    an archive whose pickle names anything but TorchScript objects and tensors
    is refused, and so is an archive of anything but an ``nn.Sequential`` of
    built-in Linear and parameter-free elementwise modules (a custom forward
    could hold skip connections that the attributes do not show).

    A file does not record the order in which the layers run, so it is
    found from the shapes: when exactly one order of the matrices chains
    (each layer's out_features = the next one's in_features) it is used,
    whatever the order of the keys. When several orders chain (equal-shaped
    hidden layers), the names must give it: ``nn.Sequential`` keys
    ``<prefix><index>.weight`` (``"0.weight"``, ``"net.2.weight"``, nested
    ``"net.1.0.weight"``) with one common prefix are ordered by index;
    anything else is refused. A TorchScript ``nn.Sequential`` runs in index
    order, which is used.

    Parameters
    ----------
    path : str or os.PathLike
    sizes : sequence of int, optional
        Expected layer sizes, inputs first; checked when given.

    Returns
    -------
    list of ndarray
        float64 ``(in, out)`` matrices, in chain order.

    Raises
    ------
    ValueError
        If the file cannot be read safely, holds no 2-D weights, a
        TorchScript archive holds modules other than the above, the weights
        do not chain, or chain in several orders that the names do not
        settle, or do not have the given sizes.

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
            root = _script_root(path)
        except Exception as exc:  # noqa: BLE001 - refused global or corrupt archive, re-raised with its cause
            raise ValueError(
                f"path {path!r} is not a loadable TorchScript archive (its code is never run): {exc}"
            ) from exc
        state = _script_state(root, path)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling refusal or corrupt file, re-raised with its cause
            raise ValueError(f"path {path!r} is not a loadable state_dict (weights_only=True): {exc}") from exc
    if isinstance(state, nn.Module):
        state = state.state_dict()
    if not isinstance(state, dict):
        raise ValueError(f"path {path!r} holds a {type(state).__name__}, not a state_dict")
    keys, weights = _linear_weights(path, state)
    if is_script:
        _check_chain(path, keys, weights)  # an nn.Sequential of known modules: its order is the execution order
    else:
        weights = _order_weights(path, keys, weights)
    found = [weights[0].shape[0]] + [w.shape[1] for w in weights]
    if sizes is not None and [int(s) for s in sizes] != found:
        raise ValueError(f"sizes {list(sizes)} do not match the saved layers {found}")
    return weights
