"""Synthetic weights: Glorot initialisation of MLPs and CNN kernels, planted modules, pruning.

numpy only, so benchmarks and tests of the graph and null machinery need no
torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._validate import check_int, check_seed

__all__ = [
    "glorot_weights",
    "glorot_conv_kernels",
    "clusterable_factors",
    "clusterable_weights",
    "clusterable_conv_kernels",
    "prune_by_magnitude",
]


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


def glorot_conv_kernels(
    channels: Sequence[int], *, in_channels: int, kernel_size: int = 3, seed: int | None = 0
) -> list:
    """Glorot/Xavier-uniform kernels of a chain of 2-D convolutions, as Keras
    initialises Conv2D layers.

    Parameters
    ----------
    channels : sequence of int
        Output channels of each convolution, in order.
    in_channels : int
        Channels of the input image (1 for MNIST, 3 for CIFAR-10).
    kernel_size : int, default 3
        Square kernels of kernel_size x kernel_size.
    seed : int or None, default 0
        Seed of ``numpy.random.default_rng`` (None draws one).

    Returns
    -------
    list of ndarray
        float64 kernels in torch's layout (out, in, kh, kw), entries U(-b, b)
        with b = sqrt(6 / ((in + out) * kh * kw)). ``netmod.kernel_norms`` of
        kernels 1.. gives the blocks of the filter graph (the first kernel's
        inputs are image channels, which the 2021 CNN graphs leave out).

    Examples
    --------
    >>> from netmod.synthetic import glorot_conv_kernels
    >>> [k.shape for k in glorot_conv_kernels([4, 8], in_channels=3)]
    [(4, 3, 3, 3), (8, 4, 3, 3)]
    """
    channels = _check_sizes([in_channels, *channels])
    size = check_int(kernel_size, "kernel_size", 1)
    rng = np.random.default_rng(check_seed(seed))
    out = []
    for n_in, n_out in zip(channels[:-1], channels[1:]):
        bound = np.sqrt(6.0 / ((n_in + n_out) * size * size))
        out.append(rng.uniform(-bound, bound, size=(n_out, n_in, size, size)))
    return out


def clusterable_weights(
    sizes: Sequence[int],
    *,
    n_modules: int = 10,
    within: float = 4.6,
    across: float = 0.6,
    first_layer: bool = False,
    seed: int | None = 0,
) -> list:
    """Glorot weights with planted modules ("clusterable initialisation").

    Every unit except the inputs gets a random module in 0..n_modules-1. The
    first layer (inputs to first hidden layer) is left as initialised; in every
    later layer a weight between units of the same module is multiplied by
    ``within`` and one across modules by ``across`` (Filan et al. 2021).
    With ``first_layer=True`` the inputs get modules too and the first layer
    is scaled like the others: that is what reproduces the published
    random-init n-cut of the 784-256x4-10 MLP (6.80 +- 0.03 at k=12; 6.808 +-
    0.026 over 20 nets here, against 7.431 with the first layer untouched).

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, inputs first.
    n_modules : int, default 10
    within, across : float, default 4.6 and 0.6
    first_layer : bool, default False
        Plant the modules in the first layer too (see above).
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
    weights = glorot_weights(_check_sizes(sizes), seed=check_seed(seed))
    factors = clusterable_factors(sizes, n_modules=n_modules, within=within, across=across,
                                  first_layer=first_layer, seed=seed)
    return [w * f for w, f in zip(weights, factors)]


def clusterable_factors(
    sizes: Sequence[int],
    *,
    n_modules: int = 10,
    within: float = 4.6,
    across: float = 0.6,
    first_layer: bool = False,
    seed: int | None = 0,
) -> list:
    """The factors of the clusterable initialisation: what :func:`clusterable_weights` multiplies
    Glorot weights by (1 in the first layer unless ``first_layer``), for any initial weights.

    The modules are drawn from ``np.random.default_rng([seed, 1])``, layer by layer after the inputs.

    Returns
    -------
    list of ndarray
        (in, out) float64 matrices of ``within``, ``across`` (or 1.0).

    Examples
    --------
    >>> f = clusterable_factors([3, 4, 2], n_modules=2, seed=0)
    >>> bool((f[0] == 1).all()), sorted(set(f[1].ravel().tolist()))
    (True, [0.6, 4.6])
    """
    sizes = _check_sizes(sizes)
    n_modules = check_int(n_modules, "n_modules", 1)
    seed = check_seed(seed)
    rng = np.random.default_rng([seed, 1])
    modules = [None] + [rng.integers(0, n_modules, size=s) for s in sizes[1:]]
    if first_layer:  # drawn after the others: the hidden units keep their modules
        modules[0] = rng.integers(0, n_modules, size=sizes[0])
    factors = [np.ones((a, b)) for a, b in zip(sizes[:-1], sizes[1:])]
    for l in range(0 if first_layer else 1, len(factors)):
        same = modules[l][:, None] == modules[l + 1][None, :]
        factors[l] = np.where(same, float(within), float(across))
    return factors


def clusterable_conv_kernels(
    channels: Sequence[int],
    *,
    in_channels: int,
    n_modules: int = 10,
    within: float = 2.8,
    across: float = 0.8,
    kernel_size: int = 3,
    seed: int | None = 0,
) -> list:
    """Glorot conv kernels with planted modules (the 2021 CNN "clusterable initialisation").

    Every output channel gets a random module in 0..n_modules-1. The first
    kernel (image channels to the first conv) is left as initialised; in every
    later one the slice K[j, i] between channels of the same module is
    multiplied by ``within`` and one across modules by ``across`` (the 2021
    CNN factors 2.8 and 0.8).

    Parameters
    ----------
    channels : sequence of int
        Output channels of each convolution, in order.
    in_channels : int
    n_modules : int, default 10
    within, across : float, default 2.8 and 0.8
    kernel_size : int, default 3
    seed : int or None, default 0
        Seeds the Glorot draw (identical to ``glorot_conv_kernels`` with the
        same seed) and, through a separate stream, the module assignment.

    Returns
    -------
    list of ndarray
        float64 kernels (out, in, kh, kw).

    Examples
    --------
    >>> from netmod.synthetic import clusterable_conv_kernels, glorot_conv_kernels
    >>> k = clusterable_conv_kernels([4, 4], in_channels=1, n_modules=2, seed=1)
    >>> bool((k[0] == glorot_conv_kernels([4, 4], in_channels=1, seed=1)[0]).all())
    True
    """
    n_modules = check_int(n_modules, "n_modules", 1)
    seed = check_seed(seed)
    kernels = glorot_conv_kernels(channels, in_channels=in_channels, kernel_size=kernel_size, seed=seed)
    rng = np.random.default_rng([seed, 1])
    modules = [rng.integers(0, n_modules, size=k.shape[0]) for k in kernels]
    for l in range(1, len(kernels)):
        same = modules[l][:, None] == modules[l - 1][None, :]
        kernels[l] = kernels[l] * np.where(same, float(within), float(across))[:, :, None, None]
    return kernels


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
