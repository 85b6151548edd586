"""netmod: is this neural network modular, and is that more than chance?

netmod turns neural networks into weighted graphs of neurons and measures
their modular structure with a C++ kernel: the normalised cut (n-cut) of a
partition and normalised spectral clustering.

>>> import numpy as np, netmod
>>> g = netmod.from_layers([np.ones((4, 3)), np.ones((3, 2))])
>>> g.vcount()
9
"""

from importlib import metadata as _metadata

from . import datasets, synthetic
from .communities import leiden, louvain, modularity
from .compare import Comparison, compare
from .graphs import from_layers, layer_weights
from .lesions import LesionDependencies, LesionImportance, lesion_dependencies, lesion_importance
from .nulls import (
    NullDistribution,
    combine_percentiles,
    null_statistics,
    replicate_seed,
    shuffle_null,
    shuffled_weights,
)
from .results import Embedding, Partition, versions
from .spectral import ncut, spectral_clustering, spectral_embedding

try:
    __version__ = _metadata.version("netmod")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a bare tree
    __version__ = "0+unknown"


def from_torch(model, *, example_input=None):
    """Neuron graph of a PyTorch MLP; see :func:`netmod.torch_models.from_torch`.

    torch is imported only here, so ``import netmod`` works without it.

    Examples
    --------
    >>> import torch, netmod
    >>> _ = torch.manual_seed(0)
    >>> g = netmod.from_torch(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)))
    >>> g.vcount(), g["layer_sizes"]
    (9, [4, 3, 2])
    """
    from .torch_models import from_torch as _from_torch

    return _from_torch(model, example_input=example_input)


__all__ = [
    "Comparison",
    "compare",
    "datasets",
    "Embedding",
    "NullDistribution",
    "combine_percentiles",
    "leiden",
    "louvain",
    "modularity",
    "null_statistics",
    "replicate_seed",
    "shuffle_null",
    "shuffled_weights",
    "synthetic",
    "Partition",
    "from_layers",
    "from_torch",
    "layer_weights",
    "LesionDependencies",
    "LesionImportance",
    "lesion_dependencies",
    "lesion_importance",
    "ncut",
    "spectral_clustering",
    "spectral_embedding",
    "versions",
    "__version__",
]
