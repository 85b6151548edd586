"""Importance of modules and dependencies between them: lesion analysis (REFERENCE.md 7).

A sub-module is the set of units of one cluster in one hidden layer. To
lesion it, its units' incoming weights and biases are set to zero, so each
lesioned unit outputs ``act(0)`` (0 after ReLU). Its importance is measured
against random sets of the same size among the live units (label >= 0) of the
same layer.

Every lesion leaves the layers below the lesioned layer untouched, so the
activations of the whole dataset are computed once and each lesioned network
only recomputes the layers above. The first of those is a low-rank update:
lesioning the set ``S`` of layer ``a`` changes the next pre-activations by
``(h_a[:, S] - act(0)) @ W[:, S]^T``, which costs ``|S|`` rather than ``n_a``
multiply-adds per output. Many draws are evaluated at once as a batch.

torch is imported inside the functions, so ``import netmod`` stays torch-free.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ._executor import check_executor
from ._validate import check_int, check_real, check_seed
from .nulls import combine_percentiles, empirical_p
from .results import frozen_array, to_plain, versions

if TYPE_CHECKING:
    from .tracing import MlpReplay

__all__ = [
    "LesionDependencies",
    "LesionImportance",
    "lesion_dependencies",
    "lesion_importance",
]

CATEGORIES = ("complete", "small", "important", "prunable", "other")


def _dataset_tensors(dataset: Any, net: MlpReplay):
    import torch

    if hasattr(dataset, "images") and hasattr(dataset, "labels"):
        images, labels = dataset.images, dataset.labels
    elif isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        images, labels = dataset
    else:
        raise TypeError(f"dataset must be (images, labels) or a netmod.datasets.Dataset, got {type(dataset).__name__}")
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype == np.uint8:
        x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    elif np.issubdtype(images.dtype, np.floating):
        x = images.reshape(len(images), -1)
    else:
        raise TypeError(f"dataset images must be uint8 (scaled by 1/255) or floating (used as is), got {images.dtype}")
    if images.shape[0] == 0:
        raise ValueError("dataset must hold at least one example, got 0")
    if x.shape[1] != net.sizes[0]:
        raise ValueError(f"dataset images must have {net.sizes[0]} values each (the model's inputs), "
                         f"got shape {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"dataset labels must have shape ({images.shape[0]},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"dataset labels must be integers, got {labels.dtype}")
    n_classes = net.sizes[-1]
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"dataset labels must be in [0, {n_classes}) (the model's outputs), "
                         f"got [{labels.min()}, {labels.max()}]")
    y = torch.as_tensor(labels.astype(np.int64))
    onehot = torch.nn.functional.one_hot(y, n_classes).to(torch.float64)
    return torch.as_tensor(np.ascontiguousarray(x)).to(net.dtype), y, onehot


def _labels(partition: Any, net: MlpReplay) -> np.ndarray:
    labels = partition.labels if hasattr(partition, "labels") and hasattr(partition, "n_clusters") else partition
    a = np.asarray(labels)
    if a.dtype == object or not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"partition must be a netmod Partition or an integer label array, got dtype {a.dtype}")
    n = sum(net.sizes)
    if a.shape != (n,):
        raise ValueError(f"partition must have one label per unit of the model ({n} = "
                         f"{' + '.join(map(str, net.sizes))}, inputs first), got shape {a.shape}")
    if a.size and a.min() < -1:
        raise ValueError(f"partition labels must be >= -1 (-1 = dead unit), got {a.min()}")
    return a.astype(np.int64)


def _submodules(labels: np.ndarray, sizes: list) -> list:
    """(layer, cluster, units, live units of the layer) for every sub-module, layer then cluster order."""
    out = []
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    for layer in range(1, len(sizes) - 1):
        lab = labels[offsets[layer]:offsets[layer + 1]]
        live = np.flatnonzero(lab >= 0)
        for c in np.unique(lab[live]):
            out.append((layer, int(c), np.flatnonzero(lab == c), live))
    return out


def _random_sets(seed: int, key: tuple, live: np.ndarray, size: int, n: int) -> np.ndarray:
    """n random ``size``-subsets of ``live``; the stream depends only on (seed, key)."""
    rng = np.random.default_rng([seed, *key])
    return rng.permuted(np.tile(live, (n, 1)), axis=1)[:, :size]


def _progress(total: int, desc: str, progress: Any):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="lesion", disable=None if progress is None else not progress,
                leave=False)


def _class_stats(drops: np.ndarray) -> tuple:
    """Mean over classes of per-class accuracy drops, and their range (peak-to-peak / mean; nan if mean <= 0)."""
    mean = drops.mean(axis=-1)
    spread = np.ptp(drops, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rng = np.where(mean > 0, spread / np.where(mean > 0, mean, 1.0), np.nan)
    return mean, rng


def _p_greater(observed: float, samples: np.ndarray) -> float:
    """p of a drop (or range) against random lesions: ties count against the sub-module."""
    return empirical_p(observed, samples, alternative="greater")


def _markdown(rows: list, columns: list) -> str:
    def cell(v):
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(c for c, _ in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(f(r)) for _, f in columns) + " |" for r in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class LesionImportance:
    """Single lesions of every sub-module against random same-size lesions.

    Attributes
    ----------
    table : tuple of dict
        One row per sub-module, hidden layer then cluster order, with keys
        ``layer`` (1 = first hidden layer; 0 is the input layer, as in the
        neuron graph), ``cluster``, ``size``, ``units`` (unit indices within
        the layer), ``accuracy`` (after the lesion), ``drop`` (base accuracy
        minus it, a fraction: 0.01 is one point), ``null_mean``, ``null_std``
        (population) and ``z`` of the random lesions' drops, ``p`` =
        (#{random drop >= drop} + 1) / (n_draws + 1), ``class_drop`` (per-class
        accuracy drops), ``mean_class_drop`` (their mean: the drop of the
        class-balanced accuracy), ``range`` (peak-to-peak of ``class_drop``
        divided by its mean: output specificity; nan when the mean is <= 0),
        ``range_p`` (the same one-sided p for ``range`` against the random
        lesions') and ``category``.
    null_drops : ndarray of float64, shape (n_submodules, n_draws)
        Accuracy drop of every random lesion, rows in table order.
    base_accuracy : float
    base_class_accuracy : ndarray of float64, shape (n_classes,)
        Per-class accuracy of the intact model (nan for a class absent from
        the dataset).
    n_draws, seed : int
    min_drop : float
        Drop an important sub-module must reach (0.01 = one point).
    small : int
        Sub-modules of at most this many units are "small".
    n_examples : int
    layer_sizes : tuple of int
    versions : dict

    Notes
    -----
    Categories, first match wins: ``complete`` (the sub-module is every live
    unit of its layer: the random sets are the same set, so p = 1), ``small``
    (size <= ``small``), ``important`` (p = 1/(n_draws+1), its minimum, and
    drop >= ``min_drop``), ``prunable`` (p = 1 and drop < ``min_drop``),
    ``other``.
    """

    table: tuple
    null_drops: np.ndarray
    base_accuracy: float
    base_class_accuracy: np.ndarray
    n_draws: int
    seed: int
    min_drop: float
    small: int
    n_examples: int
    layer_sizes: tuple
    versions: dict = field(default_factory=versions)

    def __post_init__(self) -> None:
        object.__setattr__(self, "null_drops", frozen_array(self.null_drops, np.float64))
        object.__setattr__(self, "base_class_accuracy",
                           frozen_array(self.base_class_accuracy, np.float64))
        object.__setattr__(self, "table", tuple(self.table))
        object.__setattr__(self, "layer_sizes", tuple(int(s) for s in self.layer_sizes))

    @functools.cached_property
    def combined_p(self) -> float:
        """Fisher's combination of the p-values of all sub-modules but the complete ones.

        Through :func:`netmod.combine_percentiles` (each p shifted down by half
        its smallest value, then ``scipy.stats.combine_pvalues``); nan when
        every sub-module is complete.
        """
        p = [r["p"] for r in self.table if r["category"] != "complete"]
        return combine_percentiles(p, self.n_draws) if p else math.nan

    @property
    def important(self) -> list:
        """(layer, cluster) of the important sub-modules."""
        return [(r["layer"], r["cluster"]) for r in self.table if r["category"] == "important"]

    def counts(self) -> dict:
        """Number of sub-modules per category."""
        return {c: sum(r["category"] == c for r in self.table) for c in CATEGORIES}

    def to_markdown(self) -> str:
        """The table as Markdown, drops in accuracy points."""
        return _markdown(list(self.table), [
            ("layer", lambda r: r["layer"]), ("cluster", lambda r: r["cluster"]), ("size", lambda r: r["size"]),
            ("drop (points)", lambda r: 100 * r["drop"]), ("null mean (points)", lambda r: 100 * r["null_mean"]),
            ("z", lambda r: r["z"]), ("p", lambda r: r["p"]), ("range", lambda r: r["range"]),
            ("range p", lambda r: r["range_p"]), ("category", lambda r: r["category"]),
        ])

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready) version; nan becomes None."""
        out = {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["table"] = [to_plain(dict(r)) for r in self.table]
        out["layer_sizes"] = list(self.layer_sizes)
        out["combined_p"] = self.combined_p
        return to_plain(out)

    def __repr__(self) -> str:
        counts = ", ".join(f"{c}={n}" for c, n in self.counts().items() if n)
        return (f"LesionImportance(n_submodules={len(self.table)}, base_accuracy={self.base_accuracy:.4f}, "
                f"{counts}, combined_p={self.combined_p:.3g}, n_draws={self.n_draws}, seed={self.seed})")


@dataclass(frozen=True)
class LesionDependencies:
    """Double lesions of pairs of sub-modules in different layers.

    Attributes
    ----------
    nodes : tuple of dict
        The sub-modules tested: ``layer``, ``cluster``, ``size``, ``drop``
        (single-lesion accuracy drop).
    pairs : tuple of dict
        One row per pair (i, j) of nodes with ``layer_i < layer_j``: ``i``,
        ``j`` (indices into ``nodes``), ``drop_i``, ``drop_j``, ``drop_ij``
        (both lesioned), ``interaction`` = drop_ij - (drop_i + drop_j),
        ``p_i_given_j`` (j lesioned as it is, i replaced by random same-size
        sets of its layer: (#{random drop >= drop_ij} + 1) / (n_draws + 1)),
        ``p_j_given_i``, ``significant_i_given_j``, ``significant_j_given_i``
        (p at its minimum, 1/(n_draws+1)), and ``edge``: ``"i->j"``,
        ``"j->i"`` or ``None``.
    interaction : ndarray of float64, shape (n_nodes, n_nodes)
        Symmetric; nan on the diagonal and for pairs in the same layer.
    n_draws, seed : int
    base_accuracy : float
    versions : dict

    Notes
    -----
    "X | Y significant" means X still matters once Y is lesioned. When X | Y
    is significant and Y | X is not, Y's effect disappears once X is gone: Y
    depends on X, and the graph has an edge X -> Y.
    """

    nodes: tuple
    pairs: tuple
    interaction: np.ndarray
    n_draws: int
    seed: int
    base_accuracy: float
    versions: dict = field(default_factory=versions)

    def __post_init__(self) -> None:
        object.__setattr__(self, "interaction", frozen_array(self.interaction, np.float64))
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "pairs", tuple(self.pairs))

    @property
    def graph(self):
        """Directed igraph.Graph: one vertex per node (attributes ``name`` "layer:cluster", ``layer``,
        ``cluster``, ``size``, ``drop``), an edge X -> Y when Y depends on X (attributes
        ``interaction``, ``p_source_given_target``, ``p_target_given_source``)."""
        import igraph

        g = igraph.Graph(n=len(self.nodes), directed=True)
        for key in ("layer", "cluster", "size", "drop"):
            g.vs[key] = [n[key] for n in self.nodes]
        g.vs["name"] = [f"{n['layer']}:{n['cluster']}" for n in self.nodes]
        edges, attrs = [], {"interaction": [], "p_source_given_target": [], "p_target_given_source": []}
        for r in self.pairs:
            if r["edge"] is None:
                continue
            forward = r["edge"] == "i->j"
            src, dst = (r["i"], r["j"]) if forward else (r["j"], r["i"])
            edges.append((src, dst))
            attrs["interaction"].append(r["interaction"])
            attrs["p_source_given_target"].append(r["p_i_given_j"] if forward else r["p_j_given_i"])
            attrs["p_target_given_source"].append(r["p_j_given_i"] if forward else r["p_i_given_j"])
        g.add_edges(edges)
        for key, values in attrs.items():
            g.es[key] = values
        return g

    def to_dict(self) -> dict:
        """Plain Python (JSON-ready) version; nan becomes None."""
        out = {f.name: to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        out["nodes"] = [to_plain(dict(n)) for n in self.nodes]
        out["pairs"] = [to_plain(dict(r)) for r in self.pairs]
        return to_plain(out)

    def __repr__(self) -> str:
        n_edges = sum(r["edge"] is not None for r in self.pairs)
        return (f"LesionDependencies(n_nodes={len(self.nodes)}, n_pairs={len(self.pairs)}, n_edges={n_edges}, "
                f"n_draws={self.n_draws}, seed={self.seed})")


class _Setup:
    def __init__(self, model, partition, dataset):
        import torch

        from .tracing import MlpReplay

        self.net = MlpReplay(model)
        self.labels = _labels(partition, self.net)
        self.x, self.y, self.onehot = _dataset_tensors(dataset, self.net)
        with torch.no_grad(), self.net.eval_mode():
            self.h, self.z = self.net.forward_cache(self.x)
            # The layer-by-layer replay must reproduce model(x): catches forwards that do more than their ops.
            self.net.check_replay(model, self.x[:64])
            logits = self.net.output(self.z[self.net.n_layers - 1])
        correct = (logits.argmax(dim=-1) == self.y).to(torch.float64) @ self.onehot
        self.class_totals = self.onehot.sum(dim=0).numpy()
        self.base_correct = correct.numpy()
        self.base_accuracy = float(self.base_correct.sum() / len(self.y))
        with np.errstate(invalid="ignore", divide="ignore"):
            self.base_class_accuracy = self.base_correct / self.class_totals
        self.submodules = _submodules(self.labels, self.net.sizes)

    def accuracy_drops(self, correct: np.ndarray) -> tuple:
        """Accuracy drop and per-class accuracy drops of correct-count rows."""
        drop = self.base_accuracy - correct.sum(axis=-1) / len(self.y)
        with np.errstate(invalid="ignore", divide="ignore"):
            class_drop = self.base_class_accuracy - correct / self.class_totals
        return drop, class_drop


def _submodule_correct(setup: _Setup, i: int, seed: int, n_draws: int) -> np.ndarray:
    """Correct answers per class, (n_draws + 1, n_classes), of sub-module i lesioned (row 0) and of
    its ``n_draws`` random same-size lesions."""
    import torch

    layer, cluster, units, live = setup.submodules[i]
    net = setup.net
    with torch.no_grad(), net.eval_mode():
        draws = np.vstack([units, _random_sets(seed, (layer, cluster), live, len(units), n_draws)])
        if len(units) == len(live):
            # Every random set is the sub-module itself: one evaluation serves all rows.
            return np.repeat(net.lesioned_correct(setup.h, setup.z, layer, units[None], setup.onehot, setup.y),
                             len(draws), axis=0)
        return net.lesioned_correct(setup.h, setup.z, layer, draws, setup.onehot, setup.y)


def _lesion_task(inputs: tuple, indices: list, seed: int, n_draws: int, torch_threads: int) -> list:
    """One task of an executor run: the correct-count arrays of sub-modules ``indices``. The model's
    activations are recomputed here with the caller's torch thread count, so the arithmetic (and every
    count) is the caller's. Module-level, so it pickles by name."""
    from .tracing import torch_task

    model, labels, dataset = inputs
    with torch_task(torch_threads):
        setup = _Setup(model, labels, dataset)
        return [_submodule_correct(setup, i, seed, n_draws) for i in indices]


def _executor_corrects(executor, chunk_size, model, labels, dataset, n_sub, seed, n_draws, bar) -> list:
    import torch

    from ._executor import run_tasks, share, worker_count

    if chunk_size is None:
        chunk_size = max(1, -(-n_sub // (2 * worker_count(executor))))
    inputs = share(executor, (model, labels, dataset))
    threads = torch.get_num_threads()
    corrects = [None] * n_sub

    def on_result(start, out):
        corrects[start:start + len(out)] = out
        bar.update(len(out) * (n_draws + 1))

    run_tasks(executor, [(start, _lesion_task, (inputs, list(range(start, min(start + chunk_size, n_sub))), seed,
                                                n_draws, threads))
                         for start in range(0, n_sub, chunk_size)], on_result)
    return corrects


def lesion_importance(
    model: Any,
    partition: Any,
    dataset: Any,
    *,
    n_draws: int = 100,
    seed: int | None = 0,
    min_drop: float = 0.01,
    small: int = 12,
    progress: bool | None = None,
    executor: Any = None,
    chunk_size: int | None = None,
) -> LesionImportance:
    """Accuracy cost of lesioning each sub-module, against random lesions of the same size.

    Parameters
    ----------
    model : torch.nn.Module
        An MLP: a chain of Linear layers with elementwise activations between
        them (as accepted by :func:`netmod.from_torch`); pruning masks are
        applied. Evaluated in eval mode (dropout off); left unchanged.
    partition : netmod.Partition or array_like of int
        One label per unit of the model's neuron graph, in layer order (inputs,
        hidden layers, outputs), as :func:`netmod.spectral_clustering` returns
        for ``netmod.from_torch(model)``; -1 marks dead units, which belong to
        no sub-module and are never drawn. Only hidden layers are lesioned.
    dataset : (images, labels) or netmod.datasets.Dataset
        uint8 images (scaled by 1/255, as :func:`netmod.training.evaluate`
        does) or floating images (used as they are), of shape (n, inputs) or
        (n, 28, 28); integer labels in [0, n_outputs).
    n_draws : int, default 100
        Random same-size lesions per sub-module.
    seed : int or None, default 0
        None draws one (recorded in the result). Sub-module (layer, cluster) draws its random sets from a generator
        seeded with (seed, layer, cluster), so a row does not depend on the
        other sub-modules.
    min_drop : float, default 0.01
        Accuracy drop (fraction) an important sub-module must reach.
    small : int, default 12
        Sub-modules of at most this many units are categorised "small".
    progress : bool or None
        tqdm progress bar (None: only on a terminal).
    executor : concurrent.futures.Executor, optional
        Evaluates the lesions as tasks on this executor (a
        ``ProcessPoolExecutor``, or a Dask cluster through
        ``distributed.Client(address).get_executor()``, which receives the
        model and the data once). Each task recomputes the activations and
        lesions a chunk of sub-modules with the caller's torch thread count,
        so the result is identical to a local run.
    chunk_size : int, optional
        Sub-modules per task (with an executor); by default about two tasks
        per worker.

    Returns
    -------
    LesionImportance

    Raises
    ------
    TypeError
        If `model` is not a torch module, `partition` holds no integer
        labels, or `dataset` is not (images, labels) or a Dataset.
    ValueError
        If `model` is not a plain MLP with a hidden layer, the labels do not
        match its units, the images or labels do not match its inputs and
        outputs, or a parameter is out of range.

    Examples
    --------
    >>> import numpy as np, netmod
    >>> from netmod.torch_models import keras_like_mlp
    >>> model = keras_like_mlp((784, 16, 16, 10), seed=0)
    >>> rng = np.random.default_rng(0)
    >>> images, labels = rng.integers(0, 256, (200, 784), dtype=np.uint8), rng.integers(0, 10, 200)
    >>> labels_by_unit = np.r_[np.full(784, -1), np.arange(16) % 2, np.arange(16) % 4, np.full(10, -1)]
    >>> imp = netmod.lesion_importance(model, labels_by_unit, (images, labels), n_draws=20, progress=False)
    >>> [(r["layer"], r["cluster"], r["size"]) for r in imp.table][:3]
    [(1, 0, 8), (1, 1, 8), (2, 0, 4)]
    >>> imp.null_drops.shape, 0 < imp.combined_p <= 1
    ((6, 20), True)
    """

    n_draws = check_int(n_draws, "n_draws", 1)
    seed = check_seed(seed)
    min_drop = check_real(min_drop, "min_drop", minimum=0.0, maximum=1.0)
    small = check_int(small, "small", 0)
    if executor is not None:
        check_executor(executor)
        if chunk_size is not None:
            chunk_size = check_int(chunk_size, "chunk_size", 1)
    elif chunk_size is not None:
        raise ValueError("chunk_size applies to executor= runs only")
    setup = _Setup(model, partition, dataset)
    net = setup.net
    rows, null_rows = [], []
    n_sub = len(setup.submodules)
    with _progress(n_sub * (n_draws + 1), "lesions", progress) as bar:
        if executor is None:
            corrects = []
            for i in range(n_sub):
                corrects.append(_submodule_correct(setup, i, seed, n_draws))
                bar.update(n_draws + 1)
        else:
            corrects = _executor_corrects(executor, chunk_size, model, setup.labels, dataset, n_sub, seed,
                                          n_draws, bar)
        for (layer, cluster, units, live), correct in zip(setup.submodules, corrects, strict=True):
            drops, class_drops = setup.accuracy_drops(correct)
            mean_class, rng = _class_stats(np.nan_to_num(class_drops[:, setup.class_totals > 0]))
            null = drops[1:]
            drop = float(drops[0])
            std = float(null.std())
            p = _p_greater(drop, null)
            complete = len(units) == len(live)
            if complete:
                category = "complete"
            elif len(units) <= small:
                category = "small"
            elif p == 1 / (n_draws + 1) and drop >= min_drop:
                category = "important"
            elif p == 1.0 and drop < min_drop:
                category = "prunable"
            else:
                category = "other"
            rows.append({
                "layer": layer,
                "cluster": cluster,
                "size": len(units),
                "units": tuple(int(u) for u in units),
                "accuracy": setup.base_accuracy - drop,
                "drop": drop,
                "null_mean": float(null.mean()),
                "null_std": std,
                "z": (drop - float(null.mean())) / std if std > 0 else math.nan,
                "p": p,
                "class_drop": tuple(float(v) for v in class_drops[0]),
                "mean_class_drop": float(mean_class[0]),
                "range": float(rng[0]),
                "range_p": _p_greater(float(rng[0]), rng[1:]),
                "category": category,
            })
            null_rows.append(null)
    return LesionImportance(
        table=rows,
        null_drops=np.array(null_rows, dtype=np.float64).reshape(len(rows), n_draws),
        base_accuracy=setup.base_accuracy,
        base_class_accuracy=setup.base_class_accuracy,
        n_draws=n_draws,
        seed=seed,
        min_drop=min_drop,
        small=small,
        n_examples=len(setup.y),
        layer_sizes=tuple(net.sizes),
    )


def lesion_dependencies(
    model: Any,
    partition: Any,
    dataset: Any,
    *,
    important_only: bool = True,
    importance: LesionImportance | None = None,
    n_draws: int = 50,
    seed: int | None = 0,
    progress: bool | None = None,
) -> LesionDependencies:
    """Double lesions of sub-modules in different layers: interactions and a directed dependency graph.

    For every pair (X, Y) of tested sub-modules in different layers: the
    accuracy drop with both lesioned, the interaction drop_XY - (drop_X +
    drop_Y), and the conditional tests X | Y (Y lesioned as it is, X replaced
    by ``n_draws`` random same-size sets of live units of its layer) and
    Y | X. An edge X -> Y (Y depends on X) when X | Y is significant (p at
    its minimum, 1/(n_draws+1)) and Y | X is not.

    Parameters
    ----------
    model, partition, dataset
        As for :func:`lesion_importance`.
    important_only : bool, default True
        Test only the important sub-modules (from `importance`, computed
        with ``lesion_importance(..., seed=seed)`` when not given). False:
        every sub-module that is not a whole layer.
    importance : LesionImportance, optional
        A result of :func:`lesion_importance` on the same model, partition
        and dataset.
    n_draws : int, default 50
        Random sets per conditional test.
    seed : int or None, default 0
        As for :func:`lesion_importance`.
    progress : bool or None

    Returns
    -------
    LesionDependencies

    Raises
    ------
    TypeError, ValueError
        As for :func:`lesion_importance`; ValueError if `importance` was
        computed for another model, partition or dataset size.

    Examples
    --------
    >>> import numpy as np, netmod
    >>> from netmod.torch_models import keras_like_mlp
    >>> model = keras_like_mlp((784, 16, 16, 10), seed=0)
    >>> rng = np.random.default_rng(0)
    >>> data = rng.integers(0, 256, (200, 784), dtype=np.uint8), rng.integers(0, 10, 200)
    >>> labels_by_unit = np.r_[np.full(784, -1), np.arange(16) % 2, np.arange(16) % 4, np.full(10, -1)]
    >>> dep = netmod.lesion_dependencies(model, labels_by_unit, data, important_only=False, n_draws=10,
    ...                                  progress=False)
    >>> len(dep.nodes), len(dep.pairs), dep.interaction.shape
    (6, 8, (6, 6))
    >>> dep.graph.is_directed()
    True
    """
    import torch

    if not isinstance(important_only, bool):
        raise TypeError(f"important_only must be a bool, got {type(important_only).__name__}")
    n_draws = check_int(n_draws, "n_draws", 1)
    seed = check_seed(seed)
    setup = _Setup(model, partition, dataset)
    net = setup.net
    if importance is not None and not isinstance(importance, LesionImportance):
        raise TypeError(f"importance must be a LesionImportance, got {type(importance).__name__}")
    if important_only and importance is None:
        importance = lesion_importance(model, partition, dataset, seed=seed, progress=progress)
    if importance is not None:
        ours = [(layer, c, tuple(int(u) for u in units)) for layer, c, units, _ in setup.submodules]
        theirs = [(r["layer"], r["cluster"], r["units"]) for r in importance.table]
        if ours != theirs or importance.n_examples != len(setup.y) or importance.layer_sizes != tuple(net.sizes):
            raise ValueError("importance was computed for another model, partition or dataset")
    by_key = {(layer, c): (units, live) for layer, c, units, live in setup.submodules}
    if important_only:
        keys = importance.important
    else:
        keys = [(layer, c) for layer, c, units, live in setup.submodules if len(units) < len(live)]
    nodes = []
    single = {}
    with torch.no_grad(), net.eval_mode():
        for key in keys:
            units, _ = by_key[key]
            if importance is not None:
                drop = next(r["drop"] for r in importance.table if (r["layer"], r["cluster"]) == key)
            else:
                correct = net.lesioned_correct(setup.h, setup.z, key[0], units[None], setup.onehot, setup.y)
                drop = float(setup.accuracy_drops(correct)[0][0])
            single[key] = drop
            nodes.append({"layer": key[0], "cluster": key[1], "size": len(units), "drop": drop})
    index = {key: i for i, key in enumerate(keys)}
    todo = [(a, b) for a in keys for b in keys if a[0] < b[0]]
    interaction = np.full((len(keys), len(keys)), np.nan)
    pairs = []
    minimum = 1 / (n_draws + 1)
    with torch.no_grad(), net.eval_mode(), _progress(len(todo) * (2 * n_draws + 1), "double lesions",
                                                     progress) as bar:
        for a, b in todo:
            (units_a, live_a), (units_b, live_b) = by_key[a], by_key[b]
            # b | a: a lesioned as it is below, b random; row 0 is the true pair.
            h_a, z_a = net.lesion_cache(setup.h, setup.z, a[0], units_a)
            draws_b = np.vstack([units_b, _random_sets(seed, (*a, *b, 1), live_b, len(units_b), n_draws)])
            drops_b = setup.accuracy_drops(net.lesioned_correct(h_a, z_a, b[0], draws_b, setup.onehot, setup.y))[0]
            # a | b: a random, b lesioned as it is above.
            draws_a = _random_sets(seed, (*a, *b, 0), live_a, len(units_a), n_draws)
            drops_a = setup.accuracy_drops(net.lesioned_correct(setup.h, setup.z, a[0], draws_a, setup.onehot,
                                                                setup.y, fixed={b[0]: units_b}))[0]
            bar.update(2 * n_draws + 1)
            both = float(drops_b[0])
            p_a = _p_greater(both, drops_a)
            p_b = _p_greater(both, drops_b[1:])
            sig_a, sig_b = p_a == minimum, p_b == minimum
            i, j = index[a], index[b]
            inter = both - (single[a] + single[b])
            interaction[i, j] = interaction[j, i] = inter
            pairs.append({
                "i": i, "j": j, "drop_i": single[a], "drop_j": single[b], "drop_ij": both, "interaction": inter,
                "p_i_given_j": p_a, "p_j_given_i": p_b, "significant_i_given_j": sig_a,
                "significant_j_given_i": sig_b,
                "edge": "i->j" if sig_a and not sig_b else "j->i" if sig_b and not sig_a else None,
            })
    return LesionDependencies(nodes=nodes, pairs=pairs, interaction=interaction, n_draws=n_draws, seed=seed,
                              base_accuracy=setup.base_accuracy)
