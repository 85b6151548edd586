"""Which build of the native kernel this process uses.

netmod ships the kernel twice: ``_core``, compiled for any CPU of its
architecture, and on x86-64 ``_core_avx2``, the same source compiled with
AVX2 and FMA (about twice as fast on k-means, a quarter faster on the
eigensolver). ``core`` is the AVX2 build when the CPU has AVX2 and FMA, else
the portable one. The two round differently in the last bits (FMA, vector
width), so a result can differ between them in the last digits, never in
kind; each result records which one made it (``versions()["simd"]``).

The environment variable ``NETMOD_SIMD`` chooses explicitly: ``auto`` (the
default), ``baseline`` (always the portable build, e.g. to compare with a
machine without AVX2) or ``avx2`` (an error if it cannot run here).
"""

from __future__ import annotations

import os
from types import ModuleType

from . import _core as baseline

__all__ = ["baseline", "builds", "core", "load"]

_CHOICES = ("auto", "baseline", "avx2")


def load(choice: str | None = None) -> ModuleType:
    """The kernel module for ``choice`` (default: ``$NETMOD_SIMD`` or ``auto``).

    Raises
    ------
    ValueError
        If ``choice`` is not one of ``auto``, ``baseline``, ``avx2``.
    ImportError
        If ``avx2`` is asked for on a CPU or build without it.

    Examples
    --------
    >>> from netmod import _native
    >>> _native.load("baseline").simd in ("sse2", "baseline")
    True
    """
    if choice is None:
        choice = os.environ.get("NETMOD_SIMD", "auto").strip().lower() or "auto"
    if choice not in _CHOICES:
        raise ValueError(f"NETMOD_SIMD must be one of {', '.join(_CHOICES)}, got {choice!r}")
    if choice == "baseline":
        return baseline
    cpu_ok = baseline.cpu_has_avx2_fma()
    if cpu_ok:
        try:
            from . import _core_avx2
        except ImportError:
            pass
        else:
            return _core_avx2
    if choice == "avx2":
        reason = "this build has no AVX2 kernel" if cpu_ok else "this CPU lacks AVX2 or FMA"
        raise ImportError(f"NETMOD_SIMD=avx2, but {reason}")
    return baseline


def builds() -> list[tuple[str, ModuleType]]:
    """Every build this CPU can run, as (name, module): ``baseline`` first,
    then ``avx2`` when the CPU and this installation have it.

    Examples
    --------
    >>> from netmod import _native
    >>> _native.builds()[0][0]
    'baseline'
    """
    out = [("baseline", baseline)]
    try:
        out.append(("avx2", load("avx2")))
    except ImportError:
        pass
    return out


core = load()
