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

import numpy as np
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
