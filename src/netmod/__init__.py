"""netmod: is this neural network modular, and is that more than chance?

netmod turns neural networks into weighted graphs of neurons and measures
their modular structure with a C++ kernel: the normalised cut (n-cut) of a
partition and normalised spectral clustering, against weight-shuffled nulls.

>>> import numpy as np, netmod
>>> g = netmod.from_layers([np.ones((4, 3)), np.ones((3, 2))])
>>> g.vcount()
9

``import netmod`` does not import torch; :func:`from_torch` and the lesion,
training and tracing modules do.
"""

from importlib import metadata as _metadata

from . import datasets, synthetic
from .activations import ActivationComparison, compare_activations, from_activations
from .communities import leiden, louvain, modularity
from .compare import Comparison, compare
from .graphs import from_blocks, from_layers, from_torch, kernel_norms, layer_weights, to_igraph
from .lesions import LesionDependencies, LesionImportance, lesion_dependencies, lesion_importance
from .nulls import (
    NullDistribution,
    combine_percentiles,
    empirical_p,
    null_statistics,
    replicate_seed,
    shuffle_null,
    shuffled_weights,
)
from .results import Embedding, Partition, versions
from .roles import NodeRoles, node_roles
from .spectral import ncut, spectral_clustering, spectral_embedding
from .sweep import Sweep, sweep

try:
    __version__ = _metadata.version("netmod")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a bare tree
    __version__ = "0+unknown"

__all__ = [
    "ActivationComparison",
    "Comparison",
    "Embedding",
    "LesionDependencies",
    "LesionImportance",
    "NodeRoles",
    "NullDistribution",
    "Partition",
    "Sweep",
    "__version__",
    "combine_percentiles",
    "compare",
    "compare_activations",
    "datasets",
    "empirical_p",
    "from_activations",
    "from_blocks",
    "from_layers",
    "from_torch",
    "kernel_norms",
    "layer_weights",
    "leiden",
    "lesion_dependencies",
    "lesion_importance",
    "louvain",
    "modularity",
    "ncut",
    "node_roles",
    "null_statistics",
    "replicate_seed",
    "shuffle_null",
    "shuffled_weights",
    "spectral_clustering",
    "spectral_embedding",
    "sweep",
    "synthetic",
    "to_igraph",
    "versions",
]
