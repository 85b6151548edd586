"""Synthetic MLP weights: Glorot initialisation, planted modules, pruning.

numpy only, so benchmarks and tests of the graph and null machinery need no
torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._validate import check_int, check_seed

__all__ = ["glorot_weights", "clusterable_weights", "prune_by_magnitude"]


def _check_sizes(sizes: Sequence[int]) -> list:
    sizes = [check_int(s, "sizes", 1) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes must hold at least two layer sizes, got {sizes}")
    return sizes


def glorot_weights(sizes: Sequence[int], *, seed: int | None = 0) -> list:
    """Glorot/Xavier-uniform weight matrices, as Keras initialises Dense layers.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first.
    seed : int or None, default 0
        Seed of ``numpy.random.default_rng`` (None draws one).

    Returns
    -------
    list of ndarray
        Signed (in, out) float64 matrices, entries U(-b, b) with
        b = sqrt(6 / (in + out)).

    Examples
    --------
    >>> from netmod.synthetic import glorot_weights
    >>> [w.shape for w in glorot_weights([4, 3, 2])]
    [(4, 3), (3, 2)]
    """
    sizes = _check_sizes(sizes)
    rng = np.random.default_rng(check_seed(seed))
    out = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        bound = np.sqrt(6.0 / (n_in + n_out))
        out.append(rng.uniform(-bound, bound, size=(n_in, n_out)))
    return out


def clusterable_weights(
    sizes: Sequence[int],
    *,
    n_modules: int = 10,
    within: float = 4.6,
    across: float = 0.6,
    seed: int | None = 0,
) -> list:
    """Glorot weights with planted modules ("clusterable initialisation").

    Every unit except the inputs gets a random module in 0..n_modules-1. The
    first layer (inputs to first hidden layer) is left as initialised; in every
    later layer a weight between units of the same module is multiplied by
    ``within`` and one across modules by ``across`` (Filan et al. 2021).

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first.
    n_modules : int, default 10
    within, across : float, default 4.6 and 0.6
    seed : int or None, default 0
        Seeds the Glorot draw (identical to ``glorot_weights(sizes, seed=seed)``)
        and, through a separate stream, the module assignment.

    Returns
    -------
    list of ndarray
        Signed (in, out) float64 matrices.

    Examples
    --------
    >>> from netmod.synthetic import clusterable_weights, glorot_weights
    >>> w = clusterable_weights([6, 5, 4], n_modules=2, seed=1)
    >>> bool((w[0] == glorot_weights([6, 5, 4], seed=1)[0]).all())
    True
    """
    sizes = _check_sizes(sizes)
    n_modules = check_int(n_modules, "n_modules", 1)
    seed = check_seed(seed)
    weights = glorot_weights(sizes, seed=seed)
    rng = np.random.default_rng([seed, 1])
    modules = [None] + [rng.integers(0, n_modules, size=s) for s in sizes[1:]]
    for l in range(1, len(weights)):
        same = modules[l][:, None] == modules[l + 1][None, :]
        weights[l] = weights[l] * np.where(same, float(within), float(across))
    return weights


def prune_by_magnitude(weights: Sequence[np.ndarray], sparsity: float) -> list:
    """Zero the smallest-magnitude fraction of every weight matrix.

    Parameters
    ----------
    weights : sequence of ndarray
        Matrices of any shape.
    sparsity : float
        Fraction in [0, 1]: ``round(sparsity * size)`` entries of smallest |w|
        are set to 0 in each matrix (ties: lower flat index first).

    Returns
    -------
    list of ndarray
        float64 copies; signs kept.

    Examples
    --------
    >>> import numpy as np
    >>> from netmod.synthetic import prune_by_magnitude
    >>> prune_by_magnitude([np.array([[1.0, -3.0], [0.5, 2.0]])], 0.5)[0]
    array([[ 0., -3.],
           [ 0.,  2.]])
    """
    sparsity = float(sparsity)
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    out = []
    for w in weights:
        w = np.array(w, dtype=np.float64, copy=True)
        n_zero = int(round(sparsity * w.size))
        order = np.argsort(np.abs(w), axis=None, kind="stable")
        w.flat[order[:n_zero]] = 0.0
        out.append(w)
    return out
