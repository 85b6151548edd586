"""The published numbers and protocols netmod reproduces (REFERENCE.md 5 and 6).

Filan et al., "Pruned neural networks are surprisingly modular" (arXiv
2003.04881, the 2020 protocol) and "Clusterability in neural networks" (arXiv
2103.03386, the 2021 protocol). Plain data, no imports: the pipeline
(:mod:`netmod.reproduce`) and the reports (:mod:`netmod.report`) read it.

Examples
--------
>>> PROTOCOLS["2020"].n_clusters, PROTOCOLS["2020"].nulls, PROTOCOLS["2020"].n_shuffles
(4, ('layer', 'nonzero'), 320)
>>> [c.name for c in CONDITIONS]
['unpruned', 'unpruned+dropout', 'pruned', 'pruned+dropout']
>>> PAPER["2021"][("mnist", "pruned")]["ncut"]
8.88
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CONDITION", "CONDITIONS", "PAPER", "PAPER_2021_VARIANTS", "PROTOCOLS", "UNTRAINED_CNN", "UNTRAINED_MLP",
           "VARIANTS", "Condition", "Protocol"]


@dataclass(frozen=True)
class Condition:
    """One training condition: dropout rate and whether the net is pruned."""

    name: str
    dropout: float
    pruned: bool


CONDITIONS = (
    Condition("unpruned", 0.0, False),
    Condition("unpruned+dropout", 0.5, False),
    Condition("pruned", 0.0, True),
    Condition("pruned+dropout", 0.5, True),
)
CONDITION = {c.name: c for c in CONDITIONS}


@dataclass(frozen=True)
class Protocol:
    """Analysis settings of one paper: clusters, nulls and shuffles per network, networks per condition."""

    name: str
    n_clusters: int
    nulls: tuple
    n_shuffles: int
    networks: int


PROTOCOLS = {
    "2021": Protocol("2021", 12, ("layer",), 50, 5),
    "2020": Protocol("2020", 4, ("layer", "nonzero"), 320, 10),
}

# Per (protocol, dataset, condition): n-cut mean, n-cut sd, test accuracy, and
# per null (null mean, mean z, significant count, networks).
PAPER = {
    "2021": {
        ("mnist", "unpruned"): {"ncut": 10.024, "sd": 0.017, "acc": 0.980, "layer": (10.165, -4.5, 5, 5)},
        ("mnist", "unpruned+dropout"): {"ncut": 9.971, "sd": 0.082, "acc": 0.980, "layer": (10.295, -3.0, 5, 5)},
        ("mnist", "pruned"): {"ncut": 8.880, "sd": 0.049, "acc": 0.984, "layer": (9.183, -9.7, 5, 5)},
        ("mnist", "pruned+dropout"): {"ncut": 8.350, "sd": 0.046, "acc": 0.980, "layer": (9.247, -24.0, 5, 5)},
        ("fashion-mnist", "unpruned"): {"ncut": 9.885, "sd": 0.026, "acc": 0.891, "layer": (10.080, -5.4, 5, 5)},
        ("fashion-mnist", "unpruned+dropout"): {"ncut": 9.698, "sd": 0.029, "acc": 0.872,
                                                "layer": (10.052, -10.7, 5, 5)},
        ("fashion-mnist", "pruned"): {"ncut": 8.687, "sd": 0.142, "acc": 0.895, "layer": (9.032, -10.3, 5, 5)},
        ("fashion-mnist", "pruned+dropout"): {"ncut": 8.110, "sd": 0.087, "acc": 0.867,
                                              "layer": (9.131, -24.7, 5, 5)},
    },
    "2020": {
        ("mnist", "pruned"): {"ncut": 2.000, "sd": 0.035, "acc": 0.984,
                              "layer": (2.043, -2.7, 7, 10), "nonzero": (2.066, -2.5, 8, 10)},
        ("mnist", "pruned+dropout"): {"ncut": 1.840, "sd": 0.015, "acc": 0.979,
                                      "layer": (2.036, -11.9, 10, 10), "nonzero": (1.905, -6.1, 9, 10)},
        ("fashion-mnist", "pruned"): {"ncut": 1.880, "sd": 0.030, "acc": 0.893,
                                      "layer": (1.993, -6.5, 10, 10), "nonzero": (1.940, -0.8, 0, 10)},
        ("fashion-mnist", "pruned+dropout"): {"ncut": 1.726, "sd": 0.022, "acc": 0.869,
                                              "layer": (2.014, -17.0, 10, 10), "nonzero": (1.799, -6.7, 8, 10)},
        # One net each, unpruned n-cut (the 2020 paper's unpruned -> pruned figures).
        ("mnist", "unpruned"): {"ncut": 2.46},
        ("mnist", "unpruned+dropout"): {"ncut": 2.31},
        ("fashion-mnist", "unpruned"): {"ncut": 2.18},
        ("fashion-mnist", "unpruned+dropout"): {"ncut": 2.14},
    },
}

VARIANTS = {
    "standard": "the four conditions of the main table",
    "l1": "L1 regularisation 5e-5 on every Linear weight (biases excluded), in training and pruning",
    "l2": ("L2 regularisation 5e-5 on every Linear weight (biases excluded), alone: the authors' L2 runs also "
           "had L1 on the first layer"),
    "clusterable-init": ("clusterable initialisation: 10 random modules over the units after the inputs, Glorot "
                         "weights x4.6 within a module and x0.6 across, the first layer untouched"),
    "halves-diff": ("halves-diff MNIST: two independent half-width (14-column) digits side by side, label "
                    "(y1 + y2) mod 10"),
    "halves-same": "halves-same MNIST: two half-width digits of the same class side by side, label that class",
}
"""The training variants of the 2021 table (REFERENCE.md 5 and 6b), one line each."""

# REFERENCE.md 6b: per (dataset, variant, pruned): n-cut mean (sd where given), null mean, mean z,
# significant count of 5 nets, test accuracy (2021 protocol: k=12, layer null, 50 shuffles).
PAPER_2021_VARIANTS = {
    (dataset, variant, pruned): {"ncut": v[0], "sd": v[1], "null_mean": v[2], "mean_z": v[3], "significant": v[4],
                                 "networks": 5, "acc": v[5]}
    for (dataset, variant, pruned), v in {
        ("mnist", "l1", False): (9.06, None, 6.51, 18.0, 0, 0.979),
        ("mnist", "l1", True): (10.06, None, 2.72, 22.0, 0, 0.981),
        ("mnist", "l2", False): (9.64, None, 9.39, 4.0, 1, 0.980),
        ("mnist", "l2", True): (8.34, 1.88, 8.60, -6.0, 3, 0.982),
        ("mnist", "clusterable-init", False): (8.72, None, 10.07, -44.0, 5, 0.979),
        ("mnist", "clusterable-init", True): (5.75, None, 9.20, -92.0, 5, 0.983),
        ("fashion-mnist", "clusterable-init", False): (8.75, None, 10.02, -34.0, 5, 0.892),
        ("fashion-mnist", "clusterable-init", True): (6.27, None, 9.07, -81.0, 5, 0.893),
        ("mnist", "halves-diff", False): (9.87, None, 10.31, -7.0, 5, 0.926),
        ("mnist", "halves-diff", True): (8.46, None, 9.18, -23.0, 5, 0.940),
        ("mnist", "halves-same", False): (10.04, None, 10.10, -2.6, 2, 0.993),
        ("mnist", "halves-same", True): (8.92, None, 9.04, -3.0, 3, 0.995),
    }.items()
}

# The untrained (Glorot-uniform) 784-256x4-10 MLP at k=12 (REFERENCE.md 6): n-cut mean, sd.
UNTRAINED_MLP = {"sizes": (784, 256, 256, 256, 256, 10), "n_clusters": 12, "ncut": 10.30, "sd": 0.03}

# REFERENCE.md 6c: random-init (Glorot-uniform, zero biases) CNN filter graphs,
# conv filters only, k=12, the authors' kernel norm ("induced-l1"); 100 nets each.
# "clusterable": the same with clusterable init (10 modules, x2.8 within, x0.8 across).
UNTRAINED_CNN = {
    "small CNN": {"in_channels": 1, "channels": (64, 64, 64), "n_clusters": 12, "norm": "induced-l1",
                  "ncut": 10.923, "sd": 0.007, "clusterable": 9.25},
    "VGG-16 CIFAR-10": {"in_channels": 3, "channels": (64, 64, 128, 128, 256, 256, 256) + (512,) * 6,
                        "n_clusters": 12, "norm": "induced-l1", "ncut": 8.52, "sd": 0.03, "clusterable": 7.76},
}
