"""Reproduce the modularity papers end to end (REFERENCE.md 5 and 6).

Trains the four conditions (unpruned, unpruned + dropout, pruned, pruned +
dropout; a pruned net continues from the unpruned net of the same seed and
dropout setting), clusters every network, compares it with its weight-shuffled
nulls, judges the papers' claims on the combined evidence of all networks, and
writes ``results.json``, ``results.csv``, ``report.md`` (our numbers beside the
published ones) and PNG figures (:mod:`netmod.report`).

Re-running with the same output (or models) directory reuses every trained
network whose recorded settings match, so an interrupted run resumes.
Training is deterministic for a seed and a number of torch threads (the
count is recorded with each network): PyTorch's CPU reductions are ordered by
thread, so another thread count gives slightly different networks. With more
than one thread, MKL's matrix products can also differ in their last bits
from one process to the next unless ``MKL_CBWR=AUTO,STRICT`` is set before
torch loads; one thread is reproducible as it is.

Examples
--------
>>> cfg = ReproduceConfig.quick_config()
>>> cfg.dataset, cfg.networks, cfg.epochs, cfg.n_clusters, cfg.nulls
('embedded', 5, 10, 12, ('layer',))
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._executor import check_executor
from ._validate import check_choice, check_int, check_threads
from .paper import CONDITIONS, PAPER, PAPER_2021_VARIANTS, PROTOCOLS, Condition

__all__ = ["ALPHA", "ReproduceConfig", "Reproduction", "reproduce"]

CONDITIONS_BY_NAME = {c.name: c for c in CONDITIONS}

ALPHA = 0.05
"""Level at which a claim of significance holds: the Fisher-combined percentile of
all networks of a condition (the 2021 code's evidence across networks) below it."""

DATASETS = ("mnist", "fashion-mnist", "embedded")

VARIANTS = ("standard", "l1", "l2", "clusterable-init", "halves-diff", "halves-same")
"""Training variants (``--condition``): "standard" trains the four conditions of REFERENCE.md 6; the
others (REFERENCE.md 6b) train an unpruned network and the pruned network continuing from it."""

REGULARIZATION = 5e-5
"""The coefficient of the 2021 L1 and L2 runs (REFERENCE.md 5); each alone, on every Linear weight."""

CLUSTERING_SEEDS = 10
"""Clustering seeds per network for the clustering noise (the n-cut's sd over k-means seeds)."""


def n_init_for(protocol: str, n_nodes: int) -> int:
    """k-means restarts of a protocol: 2020 ran 10; 2021 ran 25, and 100 above 2000 nodes (REFERENCE.md 3).

    Examples
    --------
    >>> n_init_for("2021", 1818), n_init_for("2021", 2001), n_init_for("2020", 1818)
    (25, 100, 10)
    """
    if protocol == "2020":
        return 10
    return 100 if n_nodes > 2000 else 25


@dataclass
class ReproduceConfig:
    """Everything that determines a reproduction run (recorded in results.json).

    ``dataset`` is "mnist", "fashion-mnist" or "embedded" (the MNIST test
    split shipped with netmod, cut 8000/2000 into train and test).
    ``n_threads`` (None = all cores) is used for training (torch threads) and
    for the nulls.
    """

    dataset: str = "mnist"
    protocol: str = "2021"
    networks: int | None = None
    n_clusters: int | None = None
    nulls: tuple | None = None
    n_shuffles: int | None = None
    epochs: int = 20
    prune_epochs: int = 20
    sizes: tuple = (784, 256, 256, 256, 256, 10)
    seed: int = 0
    data_dir: str | None = None
    n_threads: int | None = None
    quick: bool = False
    variant: str = "standard"
    n_init: int | None = None
    clustering_seeds: int = CLUSTERING_SEEDS
    stack: bool = False

    def __post_init__(self):
        check_choice(self.protocol, "protocol", tuple(PROTOCOLS))
        p = PROTOCOLS[self.protocol]
        self.networks = p.networks if self.networks is None else self.networks
        self.n_clusters = p.n_clusters if self.n_clusters is None else self.n_clusters
        self.nulls = p.nulls if self.nulls is None else tuple(self.nulls)
        self.n_shuffles = p.n_shuffles if self.n_shuffles is None else self.n_shuffles
        self.sizes = tuple(int(s) for s in self.sizes)
        for name in ("networks", "n_clusters", "n_shuffles", "epochs", "prune_epochs"):
            check_int(getattr(self, name), name, minimum=1)
        check_int(self.seed, "seed", minimum=0)
        if self.n_threads is not None:
            check_threads(self.n_threads)
        check_choice(self.dataset, "dataset", DATASETS)
        check_choice(self.variant, "condition", VARIANTS)
        if self.variant.startswith("halves") and self.dataset == "fashion-mnist":
            raise ValueError(f"the {self.variant} task is built from MNIST digits; use --dataset mnist")
        if self.n_init is not None:
            check_int(self.n_init, "n_init", minimum=1)
        check_int(self.clustering_seeds, "clustering_seeds", minimum=0)
        self.stack = bool(self.stack)
        bad = [m for m in self.nulls if m not in ("layer", "nonzero")]
        if bad or not self.nulls or len(set(self.nulls)) != len(self.nulls):
            raise ValueError(f"nulls must be a non-empty subset of ('layer', 'nonzero'), got {self.nulls!r}")
        if len(self.sizes) < 3 or self.sizes[0] != 784 or self.sizes[-1] != 10:
            raise ValueError(f"sizes must start at 784 and end at 10 with a hidden layer between, got {self.sizes}")

    @classmethod
    def quick_config(cls, **overrides) -> ReproduceConfig:
        """The ``--quick`` run: embedded data, five nets per condition, 10+10 epochs."""
        settings = {"dataset": "embedded", "networks": 5, "epochs": 10, "prune_epochs": 10, "quick": True}
        settings.update(overrides)
        return cls(**settings)

    @property
    def paper_dataset(self) -> str:
        """The dataset whose published numbers this run compares with."""
        return "mnist" if self.dataset == "embedded" else self.dataset

    @property
    def conditions(self) -> tuple:
        """The conditions this run trains: all four for "standard", else unpruned and pruned."""
        return CONDITIONS if self.variant == "standard" else (CONDITIONS[0], CONDITIONS[2])

    @property
    def pairs(self) -> tuple:
        """(dense, pruned) condition pairs: each pruned net continues from the dense net of its seed."""
        c = self.conditions
        return tuple((c[i], c[i + len(c) // 2]) for i in range(len(c) // 2))

    @property
    def training(self) -> dict:
        """The variant's training settings: l1, l2 and init."""
        return {"l1": REGULARIZATION if self.variant == "l1" else 0.0,
                "l2": REGULARIZATION if self.variant == "l2" else 0.0,
                "init": "clusterable" if self.variant == "clusterable-init" else "glorot"}

    def n_init_for(self, n_nodes: int) -> int:
        """k-means restarts for a graph of ``n_nodes`` (``n_init``, else the protocol's rule)."""
        return self.n_init if self.n_init is not None else n_init_for(self.protocol, n_nodes)


@dataclass
class Reproduction:
    """The outcome of :func:`reproduce`: one row per (network, null), summaries, claims, timings."""

    config: ReproduceConfig
    rows: list
    summary: list
    claims: dict
    timings: dict
    data_source: str
    versions: dict = field(default_factory=dict)
    files: list = field(default_factory=list)

    def to_dict(self) -> dict:
        from .results import to_plain

        return to_plain({"config": asdict(self.config), "data_source": self.data_source, "rows": self.rows,
                         "summary": self.summary, "claims": self.claims, "timings": self.timings,
                         "versions": self.versions})


def _load_data(config: ReproduceConfig, log: Callable, download: bool = True) -> tuple:
    from . import datasets

    if config.dataset == "embedded":
        train, test = datasets.load_embedded("train"), datasets.load_embedded("test")
    else:
        train = datasets.load(config.dataset, "train", data_dir=config.data_dir, download=download)
        test = datasets.load(config.dataset, "test", data_dir=config.data_dir, download=download)
    source = f"{train.name} ({train.source})"
    train, test = (train.images, train.labels), (test.images, test.labels)
    if config.variant.startswith("halves"):
        kind = config.variant.split("-")[1]
        train = datasets.halves(*train, kind=kind, seed=0)
        test = datasets.halves(*test, kind=kind, seed=1)
        source += f", as {config.variant} pairs (train pairs seed 0, test pairs seed 1)"
    return train, test, source


def _model_path(models: Path, config: ReproduceConfig, condition: Condition, seed: int) -> Path:
    variant = "" if config.variant == "standard" else f"{config.variant}-"
    return models / f"{config.dataset}-{variant}{condition.name}-seed{seed}.pt"


def _training_key(config: ReproduceConfig, condition: Condition, seed: int) -> dict:
    key = {"dataset": config.dataset, "condition": condition.name, "seed": seed, "sizes": list(config.sizes),
           "dropout": condition.dropout, "epochs": config.epochs}
    if config.variant != "standard":
        key.update(variant=config.variant, **config.training)
    if config.stack:
        key["trainer"] = "stacked"
    if condition.pruned:
        key.update(prune_epochs=config.prune_epochs, initial_sparsity=0.5, final_sparsity=0.9, frequency=10)
    return key


def _reuse(path: Path, key: dict):
    """A saved model if its metadata matches ``key``; None if there is none; an error if it differs."""
    from .training import load_model

    if not path.exists() or not path.with_suffix(".json").exists():
        return None
    model, meta = load_model(path)
    differs = {k: (meta.get(k), v) for k, v in key.items() if meta.get(k) != v}
    if differs:
        raise ValueError(f"{path} was trained with other settings {differs} (saved, requested); "
                         f"use another --out/--models directory or delete the file")
    return model, meta


def _saved(models: Path, config: ReproduceConfig, seed: int) -> dict:
    """The saved networks of ``seed`` whose settings match: {condition name: (model, meta)}."""
    out = {}
    for condition in config.conditions:
        reused = _reuse(_model_path(models, config, condition, seed), _training_key(config, condition, seed))
        if reused is not None:
            out[condition.name] = reused
    return out


def _meta(config, condition, seed, res, seconds) -> dict:
    import torch

    from .results import versions

    return {**_training_key(config, condition, seed), "test_accuracy": res.test_accuracy,
            "train_seconds": seconds, "final_loss": res.losses[-1], "torch_threads": torch.get_num_threads(),
            "netmod": versions().get("netmod"), "git_commit": versions().get("git_commit")}


def _fit(config, condition, seed, log, fit):
    """``fit()``'s network with its metadata: (model, meta)."""
    t0 = time.perf_counter()
    model, res = fit()
    meta = _meta(config, condition, seed, res, time.perf_counter() - t0)
    sparsity = ""
    if condition.pruned:
        meta["sparsity"] = res.sparsity
        sparsity = f", sparsity {np.mean(res.sparsity):.3f}"
    model.eval()
    log(f"  trained {condition.name:<17} seed {seed}: accuracy {res.test_accuracy:.4f}{sparsity} "
        f"({meta['train_seconds']:.0f} s)")
    return model, meta


def _train_seed(config, seed, train, test, saved, log, progress, on_trained):
    """The four networks of one seed, ``saved`` or trained (each passed to ``on_trained(condition, net)``
    at once): {condition name: (model, meta)}. A pruned net continues from its seed's unpruned net."""
    import copy

    from .training import prune_mlp, train_mlp

    out = {}
    t = config.training
    for dense, pruned in config.pairs:
        base = saved.get(dense.name)
        if base is None:
            base = _fit(config, dense, seed, log, lambda d=dense: train_mlp(
                train, sizes=config.sizes, dropout=d.dropout, epochs=config.epochs, seed=seed, test=test,
                progress=progress, **t))
            on_trained(dense, base)
        out[dense.name] = base
        net = saved.get(pruned.name)
        if net is None:
            net = _fit(config, pruned, seed, log, lambda b=base: prune_mlp(
                copy.deepcopy(b[0]), train, epochs=config.prune_epochs, seed=seed, test=test, progress=progress,
                l1=t["l1"], l2=t["l2"]))
            on_trained(pruned, net)
        out[pruned.name] = net
    return out


def null_seed(seed: int, n_clusters: int) -> int:
    """The seed of network ``seed``'s clustering and nulls (distinct per network and k)."""
    return 1_000_003 * (seed + 1) + n_clusters


def clustering_seeds(seed: int, config: ReproduceConfig) -> list:
    """The k-means seeds of network ``seed``'s clustering noise: ``config.clustering_seeds`` seeds after its
    :func:`null_seed` (the clustering seed the reported n-cut uses is not among them)."""
    base = null_seed(seed, config.n_clusters)
    return [base + 1 + j for j in range(config.clustering_seeds)]


def _analyse(config, condition, seed, model, meta, n_threads):
    """n-cut and null statistics of one network under every null: rows, graph, partition, nulls.
    ``n_threads`` only sets the speed: the results are the same for any count."""
    from .graphs import from_torch
    from .nulls import shuffle_null
    from .spectral import spectral_clustering

    graph = from_torch(model)
    rseed = null_seed(seed, config.n_clusters)
    n_init = config.n_init_for(graph.vcount())
    partition = spectral_clustering(graph, n_clusters=config.n_clusters, seed=rseed, n_threads=n_threads,
                                    n_init=n_init)
    # Clustering noise: the same network clustered with other k-means seeds.
    noise = [spectral_clustering(graph, n_clusters=config.n_clusters, seed=cseed, n_threads=n_threads,
                                 n_init=n_init).ncut for cseed in clustering_seeds(seed, config)]
    rows, nulls = [], {}
    for shuffle in config.nulls:
        null = shuffle_null(graph, n_shuffles=config.n_shuffles, shuffle=shuffle, n_clusters=config.n_clusters,
                            seed=rseed, n_threads=n_threads, n_init=n_init, progress=False)
        nulls[shuffle] = null
        sparsity = meta.get("sparsity")
        rows.append({
            "dataset": config.dataset, "variant": config.variant, "condition": condition.name, "seed": seed,
            "n_clusters": config.n_clusters, "n_init": n_init,
            "null": shuffle, "n_shuffles": config.n_shuffles, "null_seed": rseed,
            "ncut": null.observed, "null_mean": null.mean, "null_std": null.std, "zscore": null.zscore,
            "clustering_mean": float(np.mean(noise)) if noise else None,
            "clustering_sd": float(np.std(noise)) if noise else None,
            "clustering_seeds": len(noise),
            "percentile": null.percentile, "significant": bool(null.significant),
            "test_accuracy": meta.get("test_accuracy"),
            "sparsity": None if sparsity is None else float(np.mean(sparsity)),
            "train_seconds": meta.get("train_seconds"), "torch_threads": meta.get("torch_threads"),
            "cluster_sizes": partition.sizes.tolist(),
        })
    return rows, graph, partition, nulls


def _analyse_seed(config, seed, nets, log, n_threads, keep_examples):
    """Rows of the four networks of one seed (and their graphs, partitions and nulls if ``keep_examples``)."""
    import torch

    rows, examples = [], {}
    for cond in config.conditions:
        model, meta = nets[cond.name]
        with torch.no_grad():
            net_rows, graph, partition, nulls = _analyse(config, cond, seed, model, meta, n_threads)
        rows += net_rows
        if keep_examples:
            examples[cond.name] = (graph, partition, nulls)
        noise = "" if not net_rows[0]["clustering_seeds"] else f" (sd {net_rows[0]['clustering_sd']:.4f} over seeds)"
        log(f"  {cond.name:<17} seed {seed}: n-cut {net_rows[0]['ncut']:.4f}{noise}, " + ", ".join(
            f"{r['null']} null {r['null_mean']:.4f} (z {r['zscore']:.1f}"
            f"{', significant' if r['significant'] else ''})" for r in net_rows))
    return rows, examples


def _run_seed(config, seed, train, test, saved, log, progress, on_trained, n_threads, keep_examples) -> dict:
    """Train what ``saved`` lacks of one seed and analyse its four networks: rows, examples, times."""
    t0 = time.perf_counter()
    nets = _train_seed(config, seed, train, test, saved, log, progress, on_trained)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows, examples = _analyse_seed(config, seed, nets, log, n_threads, keep_examples)
    return {"rows": rows, "examples": examples, "training_seconds": t_train,
            "recorded_training_seconds": sum(float(m.get("train_seconds") or 0.0) for _, m in nets.values()),
            "analysis_seconds": time.perf_counter() - t0}


def _seed_task(config, seed, data, saved, torch_threads, keep_examples) -> dict:
    """One task of an executor run: :func:`_run_seed` with the caller's torch thread count (so the
    networks are the ones a local run trains), returning the log lines and the networks it trained.
    Module-level, so it pickles by name."""
    from .tracing import torch_task

    train, test = data
    lines, trained = [], {}
    native = 1 if config.n_threads is None else config.n_threads
    with torch_task(torch_threads):
        out = _run_seed(config, seed, train, test, saved, lines.append, False,
                        lambda cond, net: trained.__setitem__(cond.name, net), native, keep_examples)
    return {**out, "trained": trained, "lines": lines}


def _mean_sd(values):
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _rms(values) -> float | None:
    """Root mean square of the values given (None where any is missing): sds combined over networks."""
    if not values or any(v is None for v in values):
        return None
    return float(np.sqrt(np.mean(np.square(values))))


def _summarise(config: ReproduceConfig, rows: list) -> list:
    from .nulls import combine_percentiles

    out = []
    for cond in config.conditions:
        for shuffle in config.nulls:
            sel = [r for r in rows if r["condition"] == cond.name and r["null"] == shuffle]
            if not sel:
                continue
            ncut_mean, ncut_sd = _mean_sd([r["ncut"] for r in sel])
            ref, ref_null = paper_row(config, cond, shuffle)
            out.append({
                "variant": config.variant, "condition": cond.name, "null": shuffle, "networks": len(sel),
                "ncut_mean": ncut_mean, "ncut_sd": ncut_sd,
                "clustering_sd": _rms([r.get("clustering_sd") for r in sel]),
                "null_sd": _rms([r.get("null_std") for r in sel]),
                "null_mean": float(np.mean([r["null_mean"] for r in sel])),
                "mean_z": float(np.mean([r["zscore"] for r in sel])),
                "significant": int(sum(r["significant"] for r in sel)),
                "combined_p": float(combine_percentiles([r["percentile"] for r in sel], config.n_shuffles)),
                "test_accuracy": float(np.mean([r["test_accuracy"] for r in sel])),
                "paper_ncut": ref.get("ncut"), "paper_sd": ref.get("sd"), "paper_acc": ref.get("acc"),
                "paper_null_mean": ref_null[0] if ref_null else None,
                "paper_mean_z": ref_null[1] if ref_null else None,
                "paper_significant": f"{ref_null[2]}/{ref_null[3]}" if ref_null else None,
            })
    return out


def paper_row(config: ReproduceConfig, condition: Condition, shuffle: str) -> tuple:
    """The published numbers of one condition: ({"ncut", "sd", "acc"}, (null mean, mean z, significant,
    networks) or None); empty where the paper has none."""
    if config.variant == "standard":
        ref = PAPER.get(config.protocol, {}).get((config.paper_dataset, condition.name), {})
        return ref, ref.get(shuffle)
    if config.protocol != "2021" or shuffle != "layer":
        return {}, None
    ref = PAPER_2021_VARIANTS.get((config.paper_dataset, config.variant, condition.pruned))
    if ref is None:
        return {}, None
    return ({"ncut": ref["ncut"], "sd": ref["sd"], "acc": ref["acc"]},
            (ref["null_mean"], ref["mean_z"], ref["significant"], ref["networks"]))


def _quick_reason(config: ReproduceConfig) -> str:
    data = "the embedded 8000 training images" if config.dataset == "embedded" else config.dataset
    return (f"at quick scale ({data}, {config.epochs}+{config.prune_epochs} epochs, {config.networks} networks) "
            "this effect varies from network to network; the published numbers come from full MNIST "
            "(60000 images, 20+20 epochs, 5 networks): `netmod reproduce --dataset mnist` runs that protocol")


def _claims(config: ReproduceConfig, rows: list, summary: list) -> dict:
    """The claims of REFERENCE.md 6, judged on every network of the run.

    Orderings of n-cuts are judged seed by seed (each pruned net against the
    unpruned net it continues from; the dropout and plain pruned nets of the
    same seed), significance on the Fisher-combined percentiles of all nets
    of a condition (below :data:`ALPHA`).
    """
    by = {(r["condition"], r["seed"], r["null"]): r for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    first = config.nulls[0]
    out = {}

    def ordering(name, pairs):
        present = {c.name for c in config.conditions}
        pairs = [(a, b) for a, b in pairs if a in present and b in present]
        if not pairs:
            return
        lower = [by[(a, s, first)]["ncut"] < by[(b, s, first)]["ncut"] for a, b in pairs for s in seeds]
        out[name] = {"holds": all(lower), "evidence": f"{sum(lower)}/{len(lower)} seed pairs",
                     "values": [[by[(a, s, first)]["ncut"], by[(b, s, first)]["ncut"]] for a, b in pairs
                                for s in seeds]}

    ordering("pruning lowers the n-cut", [("pruned", "unpruned"), ("pruned+dropout", "unpruned+dropout")])
    ordering("dropout lowers the n-cut of pruned nets", [("pruned+dropout", "pruned")])
    summ = {(s["condition"], s["null"]): s for s in summary}
    pruned = [c.name for c in config.conditions if c.pruned]
    for cond in pruned:
        for shuffle in config.nulls:
            s = summ[(cond, shuffle)]
            zs = [by[(cond, seed, shuffle)]["zscore"] for seed in seeds]
            out[f"{cond} nets are more modular than their {shuffle} shuffles"] = {
                "holds": s["combined_p"] < ALPHA,
                "evidence": (f"Fisher-combined p {s['combined_p']:.2g} (< {ALPHA} required); "
                             f"{s['significant']}/{s['networks']} below all {config.n_shuffles} shuffles; "
                             f"z {', '.join(f'{z:+.1f}' for z in zs)}"),
                "values": [s["combined_p"], s["significant"], s["networks"]],
            }
    if "nonzero" in config.nulls and "layer" in config.nulls:
        z = {m: float(np.mean([summ[(c, m)]["mean_z"] for c in pruned]))
             for m in ("layer", "nonzero")}
        out["the nonzero null is harder to beat than the layer null"] = {
            "holds": z["nonzero"] > z["layer"],
            "evidence": f"mean z of the pruned nets {z['nonzero']:+.1f} (nonzero) vs {z['layer']:+.1f} (layer)",
            "values": [z["nonzero"], z["layer"]]}
    for claim in out.values():
        claim["holds"] = bool(claim["holds"])
        claim["reason"] = None if claim["holds"] or not config.quick else _quick_reason(config)
    return out


def _torch_threads(n_threads):
    """Context: torch uses ``n_threads`` (None = leave as is) and gets its setting back after."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def manager():
        before = torch.get_num_threads()
        if n_threads is not None:
            torch.set_num_threads(n_threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    return manager()


_TIMES = ("training_seconds", "recorded_training_seconds", "analysis_seconds")


def _train_stacked(config, train, test, models, log, progress) -> float:
    """Train (and save) every network the models folder lacks, all seeds of a condition at once
    (:func:`netmod.training.train_mlps` / :func:`~netmod.training.prune_mlps`); the seconds it took."""
    import copy

    from .training import prune_mlps, save_model, train_mlps

    seeds = [config.seed + i for i in range(config.networks)]
    saved = {seed: _saved(models, config, seed) for seed in seeds}
    t = config.training
    t_start = time.perf_counter()

    def record(cond, todo, results, seconds):
        for seed, (model, res) in zip(todo, results):
            meta = {**_meta(config, cond, seed, res, seconds / len(todo)), "stacked_seeds": todo,
                    "stack_seconds": seconds}
            if cond.pruned:
                meta["sparsity"] = res.sparsity
            save_model(model, _model_path(models, config, cond, seed), **meta)
            saved[seed][cond.name] = (model, meta)
            log(f"  trained {cond.name:<17} seed {seed}: accuracy {res.test_accuracy:.4f}"
                + (f", sparsity {np.mean(res.sparsity):.3f}" if cond.pruned else ""))
        log(f"  ({len(todo)} {cond.name} network(s) stacked: {seconds:.0f} s)")

    for dense, pruned in config.pairs:
        todo = [seed for seed in seeds if dense.name not in saved[seed]]
        if todo:
            t0 = time.perf_counter()
            nets = train_mlps(train, seeds=todo, sizes=config.sizes, dropout=dense.dropout, epochs=config.epochs,
                              test=test, progress=progress, **t)
            record(dense, todo, nets, time.perf_counter() - t0)
        todo = [seed for seed in seeds if pruned.name not in saved[seed]]
        if todo:
            t0 = time.perf_counter()
            nets = prune_mlps([copy.deepcopy(saved[seed][dense.name][0]) for seed in todo], train, seeds=todo,
                              epochs=config.prune_epochs, test=test, progress=progress, l1=t["l1"], l2=t["l2"])
            record(pruned, todo, nets, time.perf_counter() - t0)
    return time.perf_counter() - t_start


def _run_local(config, train, test, models, log, progress):
    """Every seed in this process, each network saved as soon as it is trained."""
    from .training import save_model

    rows, examples = [], {}
    times = dict.fromkeys(_TIMES, 0.0)
    if config.stack:
        times["stacked_training_seconds"] = _train_stacked(config, train, test, models, log, progress)
        times["training_seconds"] += times["stacked_training_seconds"]
    for i in range(config.networks):
        seed = config.seed + i
        out = _run_seed(config, seed, train, test, _saved(models, config, seed), log, progress,
                        lambda cond, net, s=seed: save_model(net[0], _model_path(models, config, cond, s), **net[1]),
                        config.n_threads, i == 0)
        rows += out["rows"]
        examples.update(out["examples"])
        for key in _TIMES:
            times[key] += out[key]
    return rows, examples, times


def _run_tasks(config, train, test, models, log, executor):
    """One task per seed on ``executor``; networks trained there are saved here as their task returns."""
    import torch

    from ._executor import describe, run_tasks, share
    from .training import save_model

    saved = {config.seed + i: _saved(models, config, config.seed + i) for i in range(config.networks)}
    data = share(executor, (train, test))
    threads = torch.get_num_threads()
    log(f"  {config.networks} task(s), one per seed; each trains with {threads} torch thread(s), as this "
        f"process does, so the networks are the ones a local run trains")
    results = {}
    times = {**dict.fromkeys(_TIMES, 0.0), "executor": describe(executor)}

    def on_result(seed, res):
        for name, (model, meta) in res["trained"].items():
            save_model(model, _model_path(models, config, CONDITIONS_BY_NAME[name], seed), **meta)
        for line in res["lines"]:
            log(line)
        results[seed] = res
        for key in _TIMES:
            times[key] += res[key]

    t0 = time.perf_counter()
    run_tasks(executor, [(seed, _seed_task, (config, seed, data, saved[seed], threads, seed == config.seed))
                         for seed in saved], on_result)
    times["wall_seconds"] = time.perf_counter() - t0
    rows = [row for seed in sorted(results) for row in results[seed]["rows"]]
    return rows, results[config.seed]["examples"], times


def reproduce(config: ReproduceConfig, out: str | Path, *, models: str | Path | None = None,
              progress: bool | None = None, log: Callable = print, figures: bool = True,
              download: bool = True, executor: Any = None) -> Reproduction:
    """Train (or reuse) the four conditions, analyse them and write the artefacts to ``out``.

    Parameters
    ----------
    config : ReproduceConfig
    out : path
        Receives results.json, results.csv, report.md and the PNG figures.
    models : path, optional
        Where trained networks are saved and looked for (default ``out/models``).
        Saved networks whose settings match are reused, so re-running resumes.
    progress : bool or None
        tqdm bars per epoch (None: only on a terminal).
    log : callable
        Receives one line per step (``print`` by default).
    figures : bool
        Write the PNG figures (matplotlib).
    download : bool
        Fetch a missing dataset from the standard mirrors where a network exists.
    executor : concurrent.futures.Executor, optional
        Runs each seed (training its four networks, unless saved, and
        analysing them) as one task on this executor: a
        ``ProcessPoolExecutor``, or a Dask cluster through
        ``distributed.Client(address).get_executor()`` (the data are then
        sent to every worker once). Tasks train with this process's torch
        thread count (``config.n_threads`` or torch's setting), which makes
        the networks, and so every reported number, those of a local run
        (with more than one thread, up to MKL's last-bit variation between
        processes: see above);
        saved networks are sent to the tasks and the networks trained there
        are saved here as each task returns, so an interrupted run resumes
        (a seed still running is trained again). Start worker processes
        with ``OMP_WAIT_POLICY=PASSIVE`` (``netmod reproduce --workers``
        does): torch threads that spin while waiting make workers sharing
        cores about ten times slower.

    Returns
    -------
    Reproduction

    Raises
    ------
    FileNotFoundError
        If the dataset's files are found nowhere (and cannot be downloaded).
    ValueError
        If a saved network in ``models`` was trained with other settings.
    """
    import torch

    from . import report
    from .results import versions

    if executor is not None:
        check_executor(executor)
        if config.stack:
            raise ValueError("stacked training runs in this process; an executor runs one seed per task: "
                             "use one or the other")
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    models = out / "models" if models is None else Path(models)
    models.mkdir(parents=True, exist_ok=True)
    train, test, source = _load_data(config, log, download)
    log(f"netmod reproduce: {config.dataset} ({len(train[1])} train / {len(test[1])} test images), "
        f"{config.networks} network(s) x {len(config.conditions)} conditions"
        f"{'' if config.variant == 'standard' else ' (' + config.variant + ')'}, protocol {config.protocol}"
        f"{', seeds trained stacked' if config.stack else ''}")

    with _torch_threads(config.n_threads):
        if executor is None:
            rows, examples, times = _run_local(config, train, test, models, log, progress)
        else:
            rows, examples, times = _run_tasks(config, train, test, models, log, executor)

    summary = _summarise(config, rows)
    result = Reproduction(config=config, rows=rows, summary=summary, claims=_claims(config, rows, summary),
                          timings={}, data_source=source,
                          versions={**versions(), "torch": torch.__version__})
    if figures:
        result.files = report.reproduction_figures(out, result, examples)
    result.timings = {**times, "total_seconds": time.perf_counter() - t_start}
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=2))
    report.write_csv(out / "results.csv", rows)
    (out / "report.md").write_text(report.reproduction_markdown(result))
    result.files = ["results.json", "results.csv", "report.md"] + result.files
    return result
