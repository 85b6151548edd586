"""Argument checks shared by every public function (the bottom of the import graph).

Each check returns the normalised value or raises: ``TypeError`` for the
wrong kind of object, ``ValueError`` for the right kind with a bad value. The
message names the parameter, the requirement and the value received, e.g.
"n_clusters must be >= 2, got 1". This module imports nothing from netmod.

The seed rule, the same in every public function: ``seed`` is an integer in
[0, 2**64) or None; None draws a fresh seed from the operating system, and
every result object records the seed it was computed with, so a drawn seed
can be reused to repeat the run.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np

__all__ = [
    "check_bool",
    "check_choice",
    "check_int",
    "check_labels",
    "check_optional_bool",
    "check_real",
    "check_seed",
    "check_threads",
    "check_tol",
]

SEED_LIMIT = 2**64


def check_int(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    """An integer in [minimum, maximum] (bools are not integers here).

    Examples
    --------
    >>> check_int(3, "n_clusters", 2)
    3
    >>> check_int(1, "n_clusters", 2)
    Traceback (most recent call last):
    ...
    ValueError: n_clusters must be >= 2, got 1
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_real(value: Any, name: str, *, minimum: float | None = None, maximum: float | None = None,
               open_minimum: bool = False) -> float:
    """A finite real number in [minimum, maximum] ((minimum, maximum] with ``open_minimum``).

    Examples
    --------
    >>> check_real(0.5, "dropout", minimum=0.0, maximum=1.0)
    0.5
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if open_minimum else value < minimum):
        raise ValueError(f"{name} must be {'>' if open_minimum else '>='} {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum:g}, got {value:g}")
    return value


def check_tol(tol: Any) -> float:
    """An eigensolver tolerance: finite and > 0."""
    return check_real(tol, "tol", minimum=0.0, open_minimum=True)


def check_seed(seed: Any) -> int:
    """The seed rule: an integer in [0, 2**64), or None for a fresh one drawn from the OS.

    Examples
    --------
    >>> check_seed(7)
    7
    >>> 0 <= check_seed(None) < 2**64
    True
    """
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0])
    return check_int(seed, "seed", 0, SEED_LIMIT - 1)


def check_threads(n_threads: Any) -> int:
    """Worker threads: an integer >= 1, or None for every core of the machine."""
    if n_threads is None:
        return os.cpu_count() or 1
    return check_int(n_threads, "n_threads", 1, 2**31 - 1)


def check_bool(value: Any, name: str) -> bool:
    """True or False (numpy bools included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
    return bool(value)


def check_optional_bool(value: Any, name: str) -> bool | None:
    """True, False or None (e.g. ``progress``: None = only on a terminal)."""
    return None if value is None else check_bool(value, name)


def check_choice(value: Any, name: str, choices: tuple) -> Any:
    """One of ``choices``.

    Examples
    --------
    >>> check_choice("layer", "shuffle", ("layer", "nonzero"))
    'layer'
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_labels(labels: Any, n: int) -> np.ndarray:
    """One cluster id per node, renumbered 0..k-1 in the order of the ids; -1 (left out) kept.

    Examples
    --------
    >>> check_labels([5, 5, -1, 2], 4).tolist()
    [1, 1, -1, 0]
    """
    a = np.asarray(labels)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"labels must be an integer array, got dtype {a.dtype}")
    if np.iscomplexobj(a):
        raise TypeError(f"labels must be an integer array, got dtype {a.dtype}")
    if a.ndim != 1 or a.size != n:
        raise ValueError(f"labels must have one entry per node ({n}), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        if a.dtype != bool and not (np.isfinite(a).all() and (a == np.round(a)).all()):
            raise ValueError("labels must be integer-valued")
        if a.size and np.abs(a).max() >= 2.0**63:
            raise ValueError(f"labels must be below 2**63 in magnitude, got {np.abs(a).max():g}")
        a = a.astype(np.int64)
    elif np.issubdtype(a.dtype, np.unsignedinteger) and a.size and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"labels must be < 2**63, got {a.max()}")
    a = a.astype(np.int64, copy=False)
    if a.size and a.min() < -1:
        raise ValueError(f"labels must be >= -1 (-1 = left out), got {a.min()}")
    # Compact the cluster ids to 0..k-1 so that the kernel's work is O(k).
    out = np.full(n, -1, dtype=np.int64)
    kept = a >= 0
    _, inverse = np.unique(a[kept], return_inverse=True)
    out[kept] = inverse
    return out
