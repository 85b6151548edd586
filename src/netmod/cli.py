"""The ``netmod`` command line.

Every subcommand exits 0 on success and 2 with a one-line error on stderr for
a bad file or a bad setting.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``netmod null: error: ...``) and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        self.exit(2, f"{self.prog}: error: {message}\n")


class _UsageError(Exception):
    """A bad file or setting, reported in one line with exit status 2."""


def _sizes(text: str | None) -> list | None:
    if not text:
        return None
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise _UsageError(f"--sizes must be comma-separated integers, got {text!r}") from None


def _shape(text: str | None) -> tuple | None:
    if not text:
        return None
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise _UsageError(f"--input-shape must be comma-separated integers (channels,height,width), "
                          f"got {text!r}") from None


_NETWORK_OPTIONS = ("include", "kernel_norm", "input_shape")


def _load_graph(args: argparse.Namespace):
    """(graph, trace) of a saved model; no code from the file runs.

    A .pt2 (torch.export) or a TorchScript CNN becomes a NetworkTrace and its graph (trace is None for MLP
    files: a state_dict or a TorchScript MLP, read as ever by load_weights into from_layers).
    """
    from .graphs import from_layers
    from .torch_models import load_network, load_weights, saved_model_kind

    path, sizes = args.model, _sizes(args.sizes)
    if not Path(path).is_file():
        raise _UsageError(f"{path}: no such file")
    try:
        if saved_model_kind(path) == "mlp":
            given = [f"--{o.replace('_', '-')}" for o in _NETWORK_OPTIONS if getattr(args, o) is not None]
            if given:
                raise _UsageError(f"{' and '.join(given)} apply to networks saved as .pt2 (torch.export) or "
                                  f"TorchScript CNNs; {path} is an MLP file, whose graph is its Linear layers' "
                                  f"signed weights")
            return from_layers(load_weights(path, sizes=sizes)), None
        trace = load_network(path, kernel_norm=args.kernel_norm or "l1", include=args.include or "all",
                             input_shape=_shape(args.input_shape))
        if sizes is not None and list(sizes) != list(trace.sizes):
            raise ValueError(f"sizes {sizes} do not match the saved layers {list(trace.sizes)}")
        return _graph_of_trace(trace, args.include or "all"), trace
    except (OSError, ValueError) as err:
        raise _UsageError(str(err).replace("\n", " ")) from None


def _graph_of_trace(trace, include):
    """The from_blocks graph of a traced network (as from_torch builds it for a live model)."""
    from .graphs import from_blocks

    return from_blocks(list(trace.blocks), sizes=trace.sizes, pairs=trace.pairs, names=list(trace.names),
                       kinds=list(trace.kinds), attributes={"kernel_norm": trace.kernel_norm, "include": include,
                                                            "batchnorm": list(trace.folded)})


def _describe(graph, trace, include) -> str:
    """'layers input (3), conv1 (64), ...; N units, M edges, kernel norm l1' for a traced network."""
    layers = ", ".join(f"{n} ({s})" for n, s in zip(trace.names, trace.sizes))
    return (f"layers {layers}; {graph.vcount()} units, {graph.ecount()} non-zero edges; kernel norm "
            f"{trace.kernel_norm}, include {include or 'all'}")


def _demo(args: argparse.Namespace) -> int:
    import numpy as np

    from .graphs import from_layers, from_torch, layer_weights
    from .paper import UNTRAINED_MLP
    from .spectral import spectral_clustering
    from .torch_models import keras_like_mlp

    sizes = _sizes(args.sizes)
    try:
        model = keras_like_mlp(sizes, seed=args.seed)
    except ValueError as err:
        raise _UsageError(str(err)) from None
    t0 = time.perf_counter()
    graph = from_torch(model)
    t_graph = time.perf_counter() - t0
    pruned = []
    for w in layer_weights(graph):
        cut = np.quantile(np.abs(w), 0.9)
        pruned.append(np.where(np.abs(w) >= cut, w, 0.0))
    rows = []
    for name, g in (("untrained", graph), ("untrained, 90% magnitude-pruned", from_layers(pruned))):
        t0 = time.perf_counter()
        p = spectral_clustering(g, n_clusters=args.n_clusters, seed=args.seed)
        dt = time.perf_counter() - t0
        rows.append({"network": name, "n_nodes": g.vcount(), "n_edges": g.ecount(), "ncut": p.ncut,
                     "cluster_sizes": p.sizes.tolist(), "seconds": dt, "partition": p.to_dict()})
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    print(f"MLP {'-'.join(map(str, sizes))}, Glorot-uniform init, seed {args.seed}; "
          f"graph built in {t_graph:.2f} s; spectral clustering, k={args.n_clusters}")
    for r in rows:
        print(f"  {r['network']:<34} nodes {r['n_nodes']:>5}  edges {r['n_edges']:>7}  "
              f"n-cut {r['ncut']:.4f}  ({1000 * r['seconds']:.0f} ms)")
    if tuple(sizes) == UNTRAINED_MLP["sizes"] and args.n_clusters == UNTRAINED_MLP["n_clusters"]:
        print(f"Published reference (untrained MLP, k=12): n-cut {UNTRAINED_MLP['ncut']:.2f} +- "
              f"{UNTRAINED_MLP['sd']:.2f} (Filan et al. 2021).")
    else:
        print("No published n-cut for these sizes and k (the papers give one for the untrained "
              "784-256-256-256-256-10 MLP at k=12).")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .compare import compare

    graph, trace = _load_graph(args)
    try:
        cmp = compare(graph, methods=tuple(args.methods.split(",")), n_clusters=args.n_clusters, seed=args.seed)
    except (TypeError, ValueError) as err:
        raise _UsageError(str(err)) from None
    if args.json:
        json.dump(cmp.to_dict(), sys.stdout)
        print()
    else:
        if trace is None:
            print(f"{args.model}: {graph.vcount()} units, {graph.ecount()} weights, layers {graph['layer_sizes']}")
        else:
            print(f"{args.model}: {_describe(graph, trace, args.include)}")
        print(cmp)
    return 0


def _passive_openmp() -> None:
    """Worker start: torch's OpenMP threads sleep instead of spinning while they wait (read when torch loads,
    after this). With spinning threads, workers that each train with several torch threads on shared
    cores run about ten times slower; the arithmetic is the same either way."""
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@contextlib.contextmanager
def _executor(args: argparse.Namespace):
    """None (local threads), a local process pool (--workers N) or a Dask cluster's executor (--scheduler)."""
    if args.workers is not None and args.scheduler is not None:
        raise _UsageError("give --workers or --scheduler, not both")
    if args.workers is not None:
        if args.workers < 1:
            raise _UsageError(f"--workers must be >= 1, got {args.workers}")
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_passive_openmp) as pool:
            yield pool
        return
    if args.scheduler is not None:
        try:
            from distributed import Client
        except ImportError:
            raise _UsageError("--scheduler needs Dask's distributed package: pip install 'netmod[dask]'") from None
        try:
            client = Client(args.scheduler, timeout=30)
        except (OSError, TimeoutError, ValueError) as err:
            raise _UsageError(f"--scheduler {args.scheduler}: cannot connect: {err}") from None
        with client:
            yield client.get_executor()
        return
    yield None


def _executor_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--workers", type=int, default=None,
                        help=f"run {what} as tasks on N local worker processes (same results)")
    parser.add_argument("--scheduler", default=None,
                        help=f"run {what} as tasks on a Dask cluster, e.g. tcp://host:8786 (netmod[dask]; "
                             "same results)")


def _null(args: argparse.Namespace) -> int:
    from .nulls import shuffle_null
    from .results import to_plain, versions

    shuffles = [s.strip() for s in args.shuffle.split(",") if s.strip()]
    if not shuffles or len(set(shuffles)) != len(shuffles):
        raise _UsageError(f"--shuffle must list 'layer' and/or 'nonzero' once each, got {args.shuffle!r}")
    graph, trace = _load_graph(args)
    nulls = {}
    with _executor(args) as executor:
        try:
            for shuffle in shuffles:
                nulls[shuffle] = shuffle_null(graph, n_shuffles=args.shuffles, shuffle=shuffle,
                                              n_clusters=args.n_clusters, seed=args.seed, n_threads=args.threads,
                                              progress=None, executor=executor)
        except (TypeError, ValueError) as err:
            raise _UsageError(str(err)) from None
    observed = next(iter(nulls.values())).observed
    files = []
    if args.out:
        from .report import null_histogram

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        null_histogram(out / "null.png", nulls, title=f"{Path(args.model).name}: n-cut (k={args.n_clusters}) "
                                                      "vs weight-shuffled copies")
        files.append(str(out / "null.png"))
    record = {
        "model": str(args.model), "layer_sizes": list(graph["layer_sizes"]), "n_units": graph.vcount(),
        "n_weights": graph.ecount(), "n_clusters": args.n_clusters, "seed": args.seed,
        "n_shuffles": args.shuffles, "observed": observed,
        "nulls": {name: null.to_dict() for name, null in nulls.items()}, "files": files,
        "versions": versions(),
    }
    if trace is not None:
        record.update(layer_names=list(trace.names), layer_kinds=list(trace.kinds), kernel_norm=trace.kernel_norm,
                      include=args.include or "all")
    if args.out:
        (Path(args.out) / "null.json").write_text(json.dumps(to_plain(record), indent=1))
        files.append(str(Path(args.out) / "null.json"))
    if args.json:
        json.dump(to_plain(record), sys.stdout)
        print()
        return 0
    if trace is None:
        print(f"{args.model}: MLP {'-'.join(map(str, graph['layer_sizes']))} ({graph.vcount()} units, "
              f"{graph.ecount()} non-zero weights); spectral clustering k={args.n_clusters}, seed {args.seed}")
    else:
        print(f"{args.model}: {_describe(graph, trace, args.include)}; spectral clustering k={args.n_clusters}, "
              f"seed {args.seed}")
    print(f"observed n-cut {observed:.4f} (lower = more modular)")
    print(f"{'null':<8} {'shuffles':>8} {'mean':>9} {'sd':>8} {'z':>8} {'percentile':>11}  significant")
    for name, null in nulls.items():
        print(f"{name:<8} {null.n_shuffles:>8} {null.mean:>9.4f} {null.std:>8.4f} {null.zscore:>8.2f} "
              f"{null.percentile:>11.4f}  {'yes' if null.significant else 'no'}")
    print("percentile = (#{shuffles with n-cut <= observed} + 1) / (n + 1); significant = below every shuffle")
    if files:
        print(f"wrote {', '.join(files)}")
    return 0


def _ks(text: str) -> list:
    """'2:21' (a range, end excluded), '4,8,12' or a mix: '2:6,10'."""
    out = []
    try:
        for part in (p.strip() for p in text.split(",") if p.strip()):
            if ":" in part:
                lo, hi = (int(v) for v in part.split(":"))
                out += list(range(lo, hi))
            else:
                out.append(int(part))
    except ValueError:
        raise _UsageError(f"--ks must be integers or ranges such as 2:21 or 4,8,12, got {text!r}") from None
    if not out:
        raise _UsageError(f"--ks must name at least one k, got {text!r}")
    return out


def _sweep(args: argparse.Namespace) -> int:
    import numpy as np

    from .results import to_plain
    from .sweep import sweep

    graph, trace = _load_graph(args)
    try:
        result = sweep(graph, ks=_ks(args.ks), seed=args.seed, n_shuffles=args.shuffles, shuffle=args.shuffle,
                       n_threads=args.threads, progress=None)
    except (TypeError, ValueError) as err:
        raise _UsageError(str(err)) from None
    files = []
    if args.out:
        from .report import sweep_figure

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        sweep_figure(out / "sweep.png", result, title=f"{Path(args.model).name}: spectral n-cut by k")
        record = {"model": str(args.model), "n_units": graph.vcount(), **result.to_dict()}
        record.pop("labels")
        (out / "sweep.json").write_text(json.dumps(to_plain(record), indent=1))
        np.save(out / "labels.npy", np.asarray(result.labels))
        files += [str(out / name) for name in ("sweep.png", "sweep.json", "labels.npy")]
    if args.json:
        record = result.to_dict()
        record.pop("labels")
        json.dump(to_plain(record), sys.stdout)
        print()
        return 0
    what = _describe(graph, trace, args.include) if trace is not None else (
        f"MLP {'-'.join(map(str, graph['layer_sizes']))} ({graph.vcount()} units)")
    print(f"{args.model}: {what}; spectral clustering, seed {args.seed}, one eigensolve for "
          f"{result.eigenvalues.size} eigenvalues")
    print(result.to_markdown())
    print(f"largest eigengap after eigenvalue k = {result.best_k_eigengap}")
    if files:
        print(f"wrote {', '.join(files)}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from .reproduce import ReproduceConfig, reproduce

    settings = {k: v for k, v in {
        "protocol": args.protocol, "networks": args.networks, "n_clusters": args.n_clusters,
        "nulls": tuple(args.null.split(",")) if args.null else None, "n_shuffles": args.shuffles,
        "epochs": args.epochs, "prune_epochs": args.prune_epochs, "seed": args.seed, "data_dir": args.data_dir,
        "n_threads": args.threads, "sizes": tuple(_sizes(args.sizes)) if args.sizes else None,
        "variant": args.condition, "n_init": args.n_init, "clustering_seeds": args.clustering_seeds,
        "stack": args.stack or None,
    }.items() if v is not None}
    try:
        config = (ReproduceConfig.quick_config(**settings) if args.quick
                  else ReproduceConfig(dataset=args.dataset, **settings))
    except (TypeError, ValueError) as err:
        raise _UsageError(str(err)) from None
    variant = "" if config.variant == "standard" else f"-{config.variant}"
    out = args.out or ("netmod-quick" if args.quick else f"netmod-{config.dataset}{variant}-{config.protocol}")
    with _executor(args) as executor:
        try:
            result = reproduce(config, out, models=args.models, progress=None if args.progress else False,
                               executor=executor)
        except (FileNotFoundError, ValueError) as err:
            raise _UsageError(str(err).replace("\n", " ")) from None
    print()
    print((Path(out) / "report.md").read_text().split("## Per network")[0].rstrip())
    print(f"\nwrote {', '.join(result.files)} to {out}/")
    return 0


def _lesion(args: argparse.Namespace) -> int:
    import os

    from . import datasets
    from .graphs import from_torch
    from .lesions import lesion_dependencies, lesion_importance
    from .report import write_lesion_report
    from .spectral import spectral_clustering
    from .training import load_model

    try:
        model, _ = load_model(args.model)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise _UsageError(f"cannot load model {args.model!r} (saved by netmod.training.save_model?): {err}") from None
    try:
        if args.dataset == "embedded":
            data = datasets.load_embedded("test")
        else:
            data = datasets.load(args.dataset, "test", data_dir=args.data_dir or os.environ.get("NETMOD_DATA"))
    except (OSError, ValueError) as err:
        raise _UsageError(str(err).replace("\n", " ")) from None
    progress = None if args.progress else False
    try:
        partition = spectral_clustering(from_torch(model), n_clusters=args.n_clusters, seed=args.seed)
        with _executor(args) as executor:
            imp = lesion_importance(model, partition, data, n_draws=args.draws, seed=args.seed, progress=progress,
                                    executor=executor)
        dep = lesion_dependencies(model, partition, data, importance=imp, n_draws=args.dependency_draws,
                                  seed=args.seed, progress=progress)
    except (TypeError, ValueError) as err:
        raise _UsageError(str(err)) from None
    out = Path(args.out or f"netmod-lesion-{Path(args.model).stem}")
    files = write_lesion_report(out, imp, dep, partition=partition, model=str(args.model), dataset=data.name)
    print(f"{args.model}: {len(data.labels)} {data.name} test images, accuracy {imp.base_accuracy:.4f}; "
          f"spectral clustering k={args.n_clusters} (n-cut {partition.ncut:.3f}); {args.draws} random lesions "
          f"per sub-module")
    print(imp.to_markdown())
    counts = ", ".join(f"{n} {c}" for c, n in imp.counts().items() if n)
    n_edges = sum(r["edge"] is not None for r in dep.pairs)
    print(f"\n{counts}; Fisher-combined p {imp.combined_p:.3g}; dependency graph: {len(dep.nodes)} important "
          f"sub-modules, {n_edges} edges")
    print(f"wrote {', '.join(files)} to {out}/")
    return 0


_MODEL_HELP = ("state_dict (torch.save) or TorchScript file of an MLP, a torch.export archive (.pt2) of any network, "
               "or TorchScript of an nn.Sequential CNN; no code from the file runs")


def _network_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--include", default=None, choices=["all", "conv", "linear"],
                        help=".pt2 / CNN files: layers of units in the graph (default all: the input, conv and "
                             "Linear layers; conv: the 2021 filter graphs)")
    parser.add_argument("--kernel-norm", default=None, choices=["l1", "l2", "induced-l1", "spectral"],
                        help=".pt2 / CNN files: norm of each kernel slice as the edge weight (default l1; "
                             "induced-l1 is what the 2021 authors computed)")
    parser.add_argument("--input-shape", default=None,
                        help="TorchScript CNNs: one input's shape, e.g. 3,32,32 (default: the smallest square "
                             "that runs through the network)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="netmod", description="Modularity of neural networks.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    null = sub.add_parser("null", help="is a saved network more modular than its weight-shuffled copies?")
    null.add_argument("model", help=_MODEL_HELP)
    null.add_argument("--shuffle", default="layer", help="'layer', 'nonzero' or 'layer,nonzero' (default layer)")
    null.add_argument("--shuffles", type=int, default=100, help="shuffled copies per null (default 100)")
    null.add_argument("--n-clusters", type=int, default=12)
    null.add_argument("--seed", type=int, default=0)
    null.add_argument("--threads", type=int, default=None,
                      help="worker threads (default: all cores; 1 per task with --workers or --scheduler)")
    _executor_options(null, "the shuffles")
    null.add_argument("--sizes", default=None, help="expected layer sizes, comma-separated (checked)")
    null.add_argument("--json", action="store_true", help="print JSON instead of a table")
    null.add_argument("--out", default=None, help="folder for null.png (histograms) and null.json")
    _network_options(null)

    swp = sub.add_parser("sweep", help="n-cut of a saved network at many k (one eigensolve), eigengap, nulls per k")
    swp.add_argument("model", help=_MODEL_HELP)
    swp.add_argument("--ks", default="2:21", help="numbers of clusters: a range lo:hi (hi excluded), a list, or both "
                                                  "(default 2:21)")
    swp.add_argument("--shuffles", type=int, default=0, help="shuffled copies for a null per k (default 0: none)")
    swp.add_argument("--shuffle", default="layer", choices=["layer", "nonzero", "edges"])
    swp.add_argument("--seed", type=int, default=0)
    swp.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    swp.add_argument("--sizes", default=None, help="expected layer sizes, comma-separated (checked)")
    swp.add_argument("--json", action="store_true", help="print JSON (without the labels) instead of a table")
    swp.add_argument("--out", default=None, help="folder for sweep.png, sweep.json and labels.npy")
    _network_options(swp)

    cmp = sub.add_parser("compare", help="compare clustering methods on a saved network")
    cmp.add_argument("model", help=_MODEL_HELP)
    cmp.add_argument("--sizes", default=None, help="expected layer sizes, comma-separated (checked)")
    cmp.add_argument("--methods", default="spectral,leiden,louvain")
    cmp.add_argument("--n-clusters", type=int, default=12)
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--json", action="store_true", help="print JSON instead of tables")
    _network_options(cmp)

    rep = sub.add_parser("reproduce", help="train the four conditions, cluster them, compare with nulls, report")
    rep.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "embedded"])
    rep.add_argument("--quick", action="store_true",
                     help="embedded MNIST, 10+10 epochs, five networks per condition (a few minutes)")
    rep.add_argument("--protocol", default="2021", choices=["2021", "2020"],
                     help="2021: k=12, layer null, 50 shuffles, 5 nets; 2020: k=4, both nulls, 320 shuffles, 10 nets")
    rep.add_argument("--condition", default=None,
                     choices=["standard", "l1", "l2", "clusterable-init", "halves-diff", "halves-same"],
                     help="standard: the four conditions of the main table; l1 / l2: L1 or L2 5e-5 on every "
                          "weight; clusterable-init: 10 planted modules (x4.6 within, x0.6 across); halves-diff "
                          "/ halves-same: two half-width MNIST digits side by side (label (y1+y2) mod 10, or "
                          "both of one class); each non-standard condition trains unpruned, then pruned")
    rep.add_argument("--stack", action="store_true",
                     help="train all networks of a condition at once, stacked as one batched network (faster)")
    rep.add_argument("--n-init", type=int, default=None,
                     help="k-means restarts (default: the protocol's, 2021: 25, 100 above 2000 nodes; 2020: 10)")
    rep.add_argument("--clustering-seeds", type=int, default=None,
                     help="k-means seeds per network for the clustering noise (default 10; 0: none)")
    rep.add_argument("--networks", type=int, default=None, help="networks per condition")
    rep.add_argument("--n-clusters", type=int, default=None)
    rep.add_argument("--null", default=None, help="'layer', 'nonzero' or 'layer,nonzero'")
    rep.add_argument("--shuffles", type=int, default=None)
    rep.add_argument("--epochs", type=int, default=None, help="training epochs (default 20)")
    rep.add_argument("--prune-epochs", type=int, default=None, help="pruning epochs (default 20)")
    rep.add_argument("--sizes", default=None, help="layer sizes, comma-separated")
    rep.add_argument("--seed", type=int, default=None, help="seed of the first network (then +1 per network)")
    rep.add_argument("--threads", type=int, default=None,
                     help="threads for training and the nulls (default: all cores)")
    rep.add_argument("--data-dir", default=None, help="folder with mnist/ and fashion-mnist/ (else $NETMOD_DATA...)")
    rep.add_argument("--out", default=None, help="output folder (default netmod-<dataset>-<protocol>)")
    rep.add_argument("--models", default=None, help="folder of trained networks to reuse (default OUT/models)")
    rep.add_argument("--progress", action="store_true", help="show per-epoch progress bars")
    _executor_options(rep, "each seed (its four trainings and analyses)")

    les = sub.add_parser("lesion", help="importance of a saved MLP's modules and their dependencies (lesions)")
    les.add_argument("model", help="model saved by netmod.training.save_model (.pt with .json beside it)")
    les.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "embedded"],
                     help="test split to evaluate on ('embedded': the 2000 test images shipped with netmod)")
    les.add_argument("--n-clusters", type=int, default=12)
    les.add_argument("--draws", type=int, default=100, help="random lesions per sub-module")
    les.add_argument("--dependency-draws", type=int, default=50, help="random sets per conditional test")
    les.add_argument("--seed", type=int, default=0)
    les.add_argument("--data-dir", default=None, help="folder with mnist/ and fashion-mnist/ (else $NETMOD_DATA...)")
    les.add_argument("--out", default=None, help="output folder (default netmod-lesion-<model name>)")
    les.add_argument("--progress", action="store_true", help="show progress bars")
    _executor_options(les, "the single lesions (sub-module chunks)")

    demo = sub.add_parser("demo", help="n-cut of a freshly initialised MLP (dense and pruned)")
    demo.add_argument("--sizes", default="784,256,256,256,256,10", help="layer sizes, comma-separated")
    demo.add_argument("--n-clusters", type=int, default=12)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


_COMMANDS = {"null": _null, "sweep": _sweep, "compare": _compare, "reproduce": _reproduce, "lesion": _lesion,
             "demo": _demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``netmod`` command.

    Examples
    --------
    >>> main(["--version"])  # doctest: +ELLIPSIS
    netmod ...
    0
    """
    from . import __version__

    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        print(f"netmod {__version__}")
        return 0
    if args.command not in _COMMANDS:
        parser.print_help()
        return 2
    try:
        return _COMMANDS[args.command](args)
    except _UsageError as err:
        print(f"netmod {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
