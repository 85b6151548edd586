"""PyTorch models: Keras-like MLPs, and networks read from saved files without running their code.

A model object in Python becomes layers through :mod:`netmod.tracing`, which
traces its forward. This module reads files, whose code is never run:
:func:`load_weights` the layers of a saved MLP (state_dict or TorchScript),
:func:`load_network` the unit graph of any network saved with torch.export
(``.pt2``) or as a TorchScript ``nn.Sequential`` CNN. It imports torch at top
level and is imported by netmod only when torch is used, so the rest of the
package stays usable without torch installed.
"""

from __future__ import annotations

import collections
import io
import pickle

import torch
from torch import nn

from .tracing import POOL_PAD_MODULES

__all__ = ["keras_like_mlp", "load_network", "load_weights", "saved_model_kind"]


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
    source = ("", "")  # (module, class name) as pickled: where the class's code file declares its constants

    def __init__(self, *args):
        self.attrs = {}

    def __setstate__(self, state):
        self.attrs = dict(state) if isinstance(state, dict) else {}


def _script_list(kind):
    def build(data):
        if not (isinstance(data, list) and all(isinstance(x, kind) for x in data)):
            raise pickle.UnpicklingError(f"a TorchScript list of {kind} holds {type(data).__name__}")
        return list(data)

    return build


# torch.jit._pickle's list builders are identity functions; these are netmod's own, checking the items.
_SCRIPT_LISTS = {
    "build_intlist": _script_list(int), "build_doublelist": _script_list(float), "build_boollist": _script_list(bool),
    "build_tensorlist": _script_list(torch.Tensor), "restore_type_tag": lambda value, type_str: value,
}


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
            return type(name, (_ScriptObject,), {"qualname": ".".join([*parts, name]), "source": (module, name)})
        if module == "torch.jit._pickle" and name in _SCRIPT_LISTS:
            return _SCRIPT_LISTS[name]
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
    return _script_archive(path)[0]


def _script_archive(path):
    """(root module object, {code file name: text}) of a TorchScript archive, read without running it.

    The code files are only ever read as text, for the constants their classes declare.
    """
    import warnings
    import zipfile

    with zipfile.ZipFile(path) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation
        name = next(n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl"))
        prefix = name[: -len("data.pkl")]
        root = _ScriptUnpickler(archive.read(name), archive, prefix).load()
        codes = {n[len(prefix):]: archive.read(n).decode("utf-8", "replace") for n in archive.namelist()
                 if n.startswith(prefix + "code/") and n.endswith(".py")}
    if not isinstance(root, _ScriptObject):
        raise ValueError(f"the archive holds a {type(root).__name__}, not a module")
    return root, codes


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
            if obj.qualname in _NETWORK_TYPES:
                raise ValueError(
                    f"path {path!r} is a TorchScript archive of a network whose {where} is a "
                    f"{obj.qualname.rpartition('.')[2]}, not an MLP; read it with netmod.torch_models.load_network "
                    f"(netmod compare and null do)"
                )
            raise ValueError(
                f"path {path!r} is a TorchScript archive whose {where} is a {obj.qualname or 'TorchScript object'}, "
                f"not a built-in torch.nn module; netmod never runs an archive's code, and a TorchScript module's "
                f"code cannot be read without running it (a custom forward could hold skip connections). "
                f"Save the model with torch.export instead (torch.export.save(torch.export.export(model.eval(), "
                f"(x,)), 'model.pt2')), or analyse the model object in Python with netmod.from_torch, which "
                f"traces its forward"
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
            f"an archive's code, and a TorchScript module's code cannot be read without running it, so it cannot "
            f"know the order and connections of a custom forward (skip connections). Save the model with "
            f"torch.export instead (torch.export.save(torch.export.export(model.eval(), (x,)), 'model.pt2')), or "
            f"analyse the model object in Python with netmod.from_torch, which traces its forward"
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

    kernels = {key: tuple(value.shape) for key, value in state.items() if torch.is_tensor(value)
               and key.rpartition(".")[2] in ("weight", "weight_orig") and value.dim() in (3, 4, 5)}
    if kernels:
        listed = [f"{key} {shape}" for key, shape in kernels.items()]
        others = [key for key, value in state.items() if torch.is_tensor(value) and key not in kernels]
        raise ValueError(
            f"path {path!r} is a state_dict of a convolutional network (conv kernels {', '.join(listed[:6])}"
            f"{', ...' if len(listed) > 6 else ''}; {len(others)} other tensors: {', '.join(others[:6])}"
            f"{', ...' if len(others) > 6 else ''}). A state_dict holds tensors only and cannot say the "
            f"architecture (the order of the layers, skips, concatenations, strides, pooling). Save the model "
            f"as a torch.export archive, torch.export.save(torch.export.export(model.eval(), (x,)), 'model.pt2'), "
            f"or as TorchScript of an nn.Sequential, torch.jit.save(torch.jit.script(model), 'model.pt'); netmod "
            f"reads both without running code. In Python, netmod.tracing.trace_network reads the model object "
            f"(netmod.from_torch reads MLPs)"
        )
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


# --- any network: torch.export archives (.pt2) and TorchScript nn.Sequential CNNs ---------------------

_SEQUENTIAL = "torch.nn.modules.container.Sequential"
_CNN_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d) + POOL_PAD_MODULES
# The modules a TorchScript archive of a network may hold, by qualified name: an nn.Sequential runs its
# children in index order, and these are rebuilt as torch's own modules from their pickled tensors and the
# constants their classes declare.
_NETWORK_TYPES = {
    f"{t.__module__}.{t.__name__}": t
    for t in (*_CNN_MODULES, *(getattr(nn, q.rpartition(".")[2]) for q in _ARCHIVE_MODULES))
}
_SAVE_HINT = ("save the model with torch.export instead: torch.export.save(torch.export.export(model.eval(), "
              "(x,)), 'model.pt2') records every op of its forward, and netmod reads it without running code")
_MISSING = object()


def _script_refusal(path, obj, where):
    kind = obj.qualname or "TorchScript object"
    if not where:
        return ValueError(
            f"path {path!r} is a TorchScript archive of a {kind}, not of an nn.Sequential; netmod never runs an "
            f"archive's code, and a TorchScript module's code cannot be read without running it, so it cannot "
            f"know the order and connections of a custom forward (skip connections). To analyse it, {_SAVE_HINT}"
        )
    return ValueError(
        f"path {path!r} is a TorchScript archive whose module {where[:-1]!r} is a {kind}, not a built-in torch.nn "
        f"module netmod can rebuild (Linear, Conv1d/2d/3d, BatchNorm1d/2d/3d, pooling, padding, Flatten, "
        f"dropout, elementwise activations, nested nn.Sequential); a TorchScript module's code cannot be read "
        f"without running it. To analyse it, {_SAVE_HINT}"
    )


def _class_constants(path, codes, obj, where):
    """The ``name : Final[...] = literal`` constants of a TorchScript class, read from its code as text."""
    import ast

    module, name = obj.source
    text = codes.get("code/" + module.replace(".", "/") + ".py")
    lines = text.splitlines() if text is not None else []
    start = next((i for i, line in enumerate(lines) if line.startswith(f"class {name}(")), None)
    if start is None:
        raise ValueError(f"path {path!r}: the TorchScript archive has no code declaring the class of module "
                         f"{where[:-1]!r} ({obj.qualname}), whose settings (strides, padding, eps) it holds")
    constants = {}
    for line in lines[start + 1:]:
        if line and not line.startswith(" "):
            break
        if not line.startswith("  ") or line.startswith("   ") or " : Final[" not in line:
            continue
        try:
            stmt = ast.parse(line.strip()).body[0]
            if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value):
                raise ValueError("not an annotated assignment")
            constants[stmt.target.id] = ast.literal_eval(stmt.value)
        except (SyntaxError, ValueError) as exc:
            raise ValueError(f"path {path!r}: constant line {line.strip()!r} of module {where[:-1]!r} is not a "
                             f"literal ({exc})") from None
    return constants


def _plain(value):
    return tuple(_plain(v) for v in value) if isinstance(value, (list, tuple)) else value


def _rebuild(path, obj, where, codes):
    """torch's own module for one object of a TorchScript archive: its tensors and declared constants."""
    import inspect

    cls = _NETWORK_TYPES.get(obj.qualname)
    if cls is None:
        raise _script_refusal(path, obj, where)
    if cls is nn.Sequential:
        children = [(k, v) for k, v in obj.attrs.items() if isinstance(v, _ScriptObject)]
        if not all(k.isdigit() for k, _ in children):
            raise _script_refusal(path, obj, where)
        children.sort(key=lambda kv: int(kv[0]))  # a Sequential runs its children in index order
        return nn.Sequential(*(_rebuild(path, v, f"{where}{k}.", codes) for k, v in children))
    label = f"module {where[:-1]!r} ({cls.__name__})"
    constants = _class_constants(path, codes, obj, where)
    tensors = {k: v for k, v in obj.attrs.items() if torch.is_tensor(v)}
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in constants.items() if k in params}
    if "bias" in params:
        kwargs["bias"] = "bias" in tensors
    try:
        module = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"path {path!r}: {label} cannot be rebuilt from its constants {constants}: {exc}") from None
    for k, v in constants.items():
        if _plain(getattr(module, k, _MISSING)) != _plain(v):
            raise ValueError(f"path {path!r}: {label} declares {k} = {v!r}, which torch's {cls.__name__} does not "
                             f"take; not a built-in module netmod can rebuild")
    state = module.state_dict()
    if set(state) != set(tensors) or any(state[k].shape != tensors[k].shape for k in state):
        have = {k: tuple(v.shape) for k, v in tensors.items()}
        want = {k: tuple(v.shape) for k, v in state.items()}
        raise ValueError(f"path {path!r}: {label} holds tensors {have}, but a {cls.__name__} with its constants "
                         f"{constants} has {want}")
    floats = [t.dtype for t in tensors.values() if t.is_floating_point()]
    if floats:
        module.to(floats[0])  # keep the saved precision: the graph is of the saved weights
    module.load_state_dict(tensors)
    return module


def _script_network(path):
    """The nn.Sequential a TorchScript archive holds, rebuilt from its attributes without running its code."""
    try:
        root, codes = _script_archive(path)
    except Exception as exc:  # noqa: BLE001 - refused global or corrupt archive, re-raised with its cause
        raise ValueError(f"path {path!r} is not a loadable TorchScript archive (its code is never run): {exc}") from exc
    if root.qualname != _SEQUENTIAL:
        raise _script_refusal(path, root, "")
    return _rebuild(path, root, "", codes)


def _example_input(path, model, input_shape):
    """One input batch for a rebuilt Sequential: ``input_shape``, or the smallest square (cube) that runs."""
    import copy

    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    if not layers:
        raise ValueError(f"path {path!r} holds no Linear or conv layer")
    first = layers[0]
    if input_shape is not None:
        shape = tuple(input_shape)
        if not shape or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
            raise ValueError(f"input_shape must be a tuple of positive ints (one example, no batch "
                             f"dimension), got {input_shape!r}")
        return torch.zeros((1, *shape), dtype=first.weight.dtype)
    if isinstance(first, nn.Linear):
        return torch.zeros(2, first.in_features, dtype=first.weight.dtype)
    spatial = first.weight.dim() - 2
    meta = copy.deepcopy(model).to("meta").eval()
    for side in range(1, 1025):
        x = torch.empty((1, first.in_channels) + (side,) * spatial, device="meta", dtype=first.weight.dtype)
        try:
            with torch.no_grad():
                meta(x)
        except (RuntimeError, ValueError, IndexError):
            continue
        return torch.zeros(x.shape, dtype=x.dtype)
    raise ValueError(f"path {path!r}: no input of {first.in_channels} channels and equal sides 1..1024 runs "
                     f"through the saved network; pass input_shape (channels, *sizes)")


def _archive_kind(path):
    """"pt2" (torch.export.save), "pt2-legacy" (before torch 2.7), "torchscript" or "other"."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return "other"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if any(n.count("/") == 1 and n.endswith("/archive_format") for n in names):
            fmt = next(n for n in names if n.count("/") == 1 and n.endswith("/archive_format"))
            if archive.read(fmt).strip() == b"pt2":
                return "pt2"
        if "serialized_exported_program.json" in names:
            return "pt2-legacy"
        if any("/code/" in n or n.startswith("code/") for n in names):
            return "torchscript"
    return "other"


def saved_model_kind(path):
    """How a saved model file is read: ``"network"`` by :func:`load_network`, ``"mlp"`` by :func:`load_weights`.

    ``"network"`` for a torch.export archive (.pt2) or a TorchScript archive holding more than an MLP's
    modules (Linear and elementwise ones); ``"mlp"`` for everything else: state_dicts, TorchScript MLPs,
    and files neither reads (:func:`load_weights` says why). Only the archive's listing and, for
    TorchScript, its pickled attributes are read; nothing from the file runs.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from netmod.torch_models import keras_like_mlp, saved_model_kind
    >>> path = os.path.join(tempfile.mkdtemp(), "m.pt")
    >>> torch.save(keras_like_mlp([4, 3]).state_dict(), path)
    >>> saved_model_kind(path)
    'mlp'
    """
    kind = _archive_kind(str(path))
    if kind in ("pt2", "pt2-legacy"):
        return "network"
    if kind != "torchscript":
        return "mlp"
    try:
        root = _script_root(str(path))
    except Exception:  # noqa: BLE001 - load_weights reports the unreadable archive
        return "mlp"

    def mlp(obj):
        return obj.qualname in _ARCHIVE_MODULES and all(mlp(v) for v in obj.attrs.values()
                                                        if isinstance(v, _ScriptObject))

    return "mlp" if mlp(root) else "network"


# ScalarType of torch/_export/serde/schema.py -> dtype; other types cannot be weights.
_PT2_DTYPES = {1: torch.uint8, 2: torch.int8, 3: torch.int16, 4: torch.int32, 5: torch.int64, 6: torch.float16,
               7: torch.float32, 8: torch.float64, 12: torch.bool, 13: torch.bfloat16}


class _Pt2Reader:
    """Reads a torch.export archive's JSON graph and raw tensors; nothing in it is unpickled or run.

    torch.export.load would unpickle its sample inputs (falling back to weights_only=False), any
    weight or constant marked ``use_pickle`` (weights_only=False), custom objects, and load compiled
    AOTInductor libraries: code from the file can run. This reader reads only the archive's JSON (the
    graph in torch.export's serialization schema, the tensors' configs) and the raw bytes of tensors,
    and refuses an archive holding anything else that the graph needs.
    """

    def __init__(self, path, archive):
        self.path, self.archive = path, archive
        names = archive.namelist()
        roots = {n.split("/", 1)[0] for n in names}
        if len(roots) != 1 or any("/" not in n for n in names):
            self.fail("its entries are not in one folder as torch.export.save writes them")
        self.prefix = roots.pop() + "/"
        self.names = set(names)

    def fail(self, why):
        raise ValueError(f"path {self.path!r} is not a torch.export archive netmod can read safely: {why}")

    def read(self, name):
        if self.prefix + name not in self.names:
            self.fail(f"it has no {name}")
        return self.archive.read(self.prefix + name)

    def json(self, name):
        import json

        try:
            return json.loads(self.read(name).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            self.fail(f"{name} is not JSON ({exc})")

    def check_layout(self):
        import sys

        if self.read("archive_version").strip() != b"0":
            self.fail(f"archive version {self.read('archive_version').decode(errors='replace')!r} (netmod reads "
                      f"version 0, written by torch 2.7 and later)")
        if any(n.startswith(self.prefix + "data/aotinductor/") for n in self.names):
            self.fail("it holds AOTInductor-compiled code (data/aotinductor/), which loading would run; save "
                      "the exported program alone with torch.export.save")
        if self.prefix + "byteorder" in self.names and self.read("byteorder").strip().decode() != sys.byteorder:
            self.fail(f"its tensors are {self.read('byteorder').decode()}-endian, this machine is {sys.byteorder}")
        for name in sorted(self.names):
            if name.startswith(self.prefix + "data/sample_inputs/"):
                self.check_pickle(name[len(self.prefix):])
        models = sorted(n[len(self.prefix) + len("models/"):-len(".json")] for n in self.names
                        if n.startswith(self.prefix + "models/") and n.endswith(".json"))
        if models != ["model"]:
            self.fail(f"it holds the programs {models}, where torch.export.save writes one named 'model'")

    def check_pickle(self, name):
        """Refuses a pickled part (the sample inputs) that torch.export.load would unpickle unsafely.

        netmod does not need the sample inputs; it checks them with torch's weights_only unpickler, which
        builds tensors and containers only, because torch.export.load falls back to weights_only=False.
        """
        import io

        try:
            torch.load(io.BytesIO(self.read(name)), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any refusal of the safe unpickler, named in the message
            lines = [line.strip().split(". Please use")[0] for line in str(exc).splitlines()
                     if "Unsupported global" in line]
            self.fail(f"its {name} is not a weights-only pickle (torch.export.load would unpickle it with "
                      f"weights_only=False, running any code it holds): "
                      f"{lines[0] if lines else type(exc).__name__}")

    def tensors(self, config_name, directory, kind):
        """fqn -> tensor of a weights or constants config; refuses pickled entries."""
        config = self.json(config_name).get("config")
        if not isinstance(config, dict):
            self.fail(f"{config_name} has no config")
        out = {}
        for fqn, meta in config.items():
            where = f"the {kind} {fqn!r}"
            if meta.get("use_pickle") or not str(meta.get("path_name", "")).startswith(("weight_", "tensor_")):
                self.fail(f"{where} is stored as a pickle ({meta.get('path_name')!r}; a tensor subclass or custom "
                          "object), which netmod never unpickles: loading it would run code from the file")
            out[fqn] = self.raw_tensor(directory + meta["path_name"], meta.get("tensor_meta") or {}, where)
        return out

    def raw_tensor(self, name, meta, where):
        dtype = _PT2_DTYPES.get(meta.get("dtype"))
        if dtype is None:
            self.fail(f"{where} has dtype {meta.get('dtype')!r}, which netmod does not read")
        sizes = [self.int_of(s, where) for s in meta.get("sizes", [])]
        strides = [self.int_of(s, where) for s in meta.get("strides", [])]
        offset = self.int_of(meta.get("storage_offset", {"as_int": 0}), where)
        raw = self.read(name)
        item = torch.empty((), dtype=dtype).element_size()
        numel = len(raw) // item
        if len(raw) % item or len(sizes) != len(strides) or offset < 0 or any(s < 0 for s in sizes + strides):
            self.fail(f"{where} has inconsistent sizes {sizes}, strides {strides} or {len(raw)} bytes")
        if 0 in sizes:
            return torch.zeros(sizes, dtype=dtype)
        last = offset + sum((n - 1) * st for n, st in zip(sizes, strides))
        if last >= numel:
            self.fail(f"{where} reaches element {last} of a record of {numel}")
        flat = torch.frombuffer(bytearray(raw), dtype=dtype) if numel else torch.zeros(0, dtype=dtype)
        return torch.as_strided(flat, sizes, strides, offset).clone()

    def int_of(self, value, where):
        if isinstance(value, dict) and isinstance(value.get("as_int"), int):
            return value["as_int"]
        raise ValueError(f"path {self.path!r}: {where} was exported with dynamic shapes (a size {value!r} is "
                         "symbolic); netmod reads exported programs with static shapes: export without "
                         "dynamic_shapes")


def _read_pt2(path):
    """(models/model.json as parsed JSON, {name: tensor} of its weights and constants) of a .pt2 archive.

    Only JSON and raw tensor bytes are read; see _Pt2Reader for what is refused.
    """
    import zipfile

    with zipfile.ZipFile(path) as archive:
        reader = _Pt2Reader(path, archive)
        reader.check_layout()
        document = reader.json("models/model.json")
        tensors = reader.tensors("data/weights/model_weights_config.json", "data/weights/", "weight")
        if reader.prefix + "data/constants/model_constants_config.json" in reader.names:
            tensors.update(reader.tensors("data/constants/model_constants_config.json", "data/constants/", "constant"))
    return document, tensors


def load_network(path, *, kernel_norm="l1", include="all", input_shape=None):
    """The layers of units and weight blocks of a network saved as a torch.export or TorchScript archive.

    No code from the file runs. A ``.pt2`` archive (``torch.export.save(torch.export.export(
    model.eval(), (x,)), path)``) is read without ``torch.export.load``, which unpickles parts of
    the archive (falling back to ``weights_only=False``) and loads compiled libraries: netmod reads
    the archive's JSON graph (torch.export's serialization schema) and the raw bytes of its
    tensors, refuses an archive whose tensors are pickled or that holds AOTInductor code, and
    walks the ATen graph as :func:`netmod.tracing.trace_exported` does. Any architecture the walk
    can place is read: residual and concatenating networks too.

    A TorchScript archive (``torch.jit.save(torch.jit.script(seq), path)``) must hold an
    ``nn.Sequential`` (nested Sequentials allowed) of Conv1d/2d/3d, BatchNorm1d/2d/3d, Linear,
    Flatten, pooling, padding, dropout and elementwise modules: it is rebuilt as torch's own
    modules from the pickled tensors and the constants each class declares (strides, padding,
    groups, eps, pooling settings; read as literals from the archive's code as text), then traced
    with :func:`netmod.tracing.trace_network`. A TorchScript module with a custom forward is
    refused: its code cannot be read without running it; save such a model with torch.export.

    Parameters
    ----------
    path : str or os.PathLike
    kernel_norm : {"l1", "l2", "induced-l1", "spectral"}
    include : "all", "conv", "linear" or a sequence of layer names
        As for :func:`netmod.tracing.trace_network`.
    input_shape : tuple of int, optional
        TorchScript only (a .pt2 records its input): one example's shape without the batch
        dimension, e.g. ``(3, 32, 32)``. By default the smallest input with equal sides that runs
        through the network (a conv net's filter graph does not depend on it; a Linear layer after
        a flatten fixes it).

    Returns
    -------
    netmod.tracing.NetworkTrace

    Raises
    ------
    ValueError
        If the file is not such an archive (a state_dict cannot say the architecture), holds
        anything netmod would have to unpickle or run, an op or module netmod cannot place, or
        settings that do not match torch's modules.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from torch import nn
    >>> from netmod.torch_models import load_network
    >>> m = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 2, 3))
    >>> path = os.path.join(tempfile.mkdtemp(), "m.pt2")
    >>> torch.export.save(torch.export.export(m.eval(), (torch.zeros(1, 1, 8, 8),)), path)
    >>> t = load_network(path, include="conv")
    >>> t.names, t.sizes, t.pairs
    (('0', '3'), (4, 2), ((0, 1),))
    """
    from .tracing import trace_network, trace_serialized

    path = str(path)
    kind = _archive_kind(path)
    if kind == "pt2":
        if input_shape is not None:
            raise ValueError(f"input_shape is for TorchScript archives; path {path!r} is a torch.export archive, "
                             f"which records its input shape")
        document, tensors = _read_pt2(path)
        return trace_serialized(document, tensors, kernel_norm=kernel_norm, include=include,
                                source=f"path {path!r} (a torch.export archive)")
    if kind == "pt2-legacy":
        raise ValueError(f"path {path!r} is a torch.export archive in the format of torch 2.6 and earlier, whose "
                         f"state is pickled; re-save it with torch.export.save from torch 2.7 or later")
    if kind == "torchscript":
        model = _script_network(path)
        return trace_network(model, example_input=_example_input(path, model, input_shape), kernel_norm=kernel_norm,
                             include=include)
    raise ValueError(f"path {path!r} is not a torch.export (.pt2) or TorchScript archive; a state_dict holds "
                     f"tensors only and cannot say the architecture: {_SAVE_HINT}, or as TorchScript of an "
                     f"nn.Sequential (MLP state_dicts are read by load_weights)")
