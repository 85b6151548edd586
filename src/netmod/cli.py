"""The ``netmod`` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    import numpy as np

    from . import from_torch, layer_weights, spectral_clustering
    from .torch_models import keras_like_mlp

    sizes = [int(s) for s in args.sizes.split(",")]
    model = keras_like_mlp(sizes, seed=args.seed)
    t0 = time.perf_counter()
    graph = from_torch(model)
    t_graph = time.perf_counter() - t0

    pruned = []
    for w in layer_weights(graph):
        cut = np.quantile(np.abs(w), 0.9)
        pruned.append(np.where(np.abs(w) >= cut, w, 0.0))

    from . import from_layers

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
    print("Published reference (untrained MLP, k=12): n-cut 10.30 +- 0.03 (Filan et al. 2021).")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from . import compare, from_layers
    from .torch_models import load_weights

    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    graph = from_layers(load_weights(args.model, sizes=sizes))
    cmp = compare(graph, methods=tuple(args.methods.split(",")), n_clusters=args.n_clusters, seed=args.seed)
    if args.json:
        json.dump(cmp.to_dict(), sys.stdout)
        print()
    else:
        print(f"{args.model}: {graph.vcount()} units, {graph.ecount()} weights, layers {graph['layer_sizes']}")
        print(cmp)
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from .reproduce import ReproduceConfig, reproduce

    settings = {k: v for k, v in {
        "protocol": args.protocol, "networks": args.networks, "n_clusters": args.n_clusters,
        "nulls": tuple(args.null.split(",")) if args.null else None, "n_shuffles": args.shuffles,
        "epochs": args.epochs, "prune_epochs": args.prune_epochs, "seed": args.seed, "data_dir": args.data_dir,
        "n_threads": args.threads,
        "sizes": tuple(int(s) for s in args.sizes.split(",")) if args.sizes else None,
    }.items() if v is not None}
    try:
        if args.quick:
            config = ReproduceConfig.quick_config(**settings)
        else:
            config = ReproduceConfig(dataset=args.dataset, **settings)
    except (TypeError, ValueError) as err:
        print(f"netmod reproduce: {err}", file=sys.stderr)
        return 2
    out = args.out or ("netmod-quick" if args.quick else f"netmod-{config.dataset}-{config.protocol}")
    result = reproduce(config, out, models=args.models, progress=None if args.progress else False)
    print()
    print((Path(out) / "report.md").read_text().split("## Per network")[0].rstrip())
    print(f"\nwrote {', '.join(result.files)} to {out}/")
    return 0


def _lesion(args: argparse.Namespace) -> int:
    import os

    from . import datasets, from_torch, spectral_clustering
    from .lesions import lesion_dependencies, lesion_importance, write_report
    from .training import load_model

    try:
        model, _ = load_model(args.model)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        print(f"netmod lesion: cannot load model {args.model!r} (saved by netmod.training.save_model?): {err}",
              file=sys.stderr)
        return 2
    try:
        if args.dataset == "embedded":
            data = datasets.load_embedded("test")
        else:
            data = datasets.load(args.dataset, "test", data_dir=args.data_dir or os.environ.get("NETMOD_DATA"))
    except (OSError, ValueError) as err:
        print(f"netmod lesion: {err}", file=sys.stderr)
        return 2
    progress = None if args.progress else False
    try:
        partition = spectral_clustering(from_torch(model), n_clusters=args.n_clusters, seed=args.seed)
        imp = lesion_importance(model, partition, data, n_draws=args.draws, seed=args.seed, progress=progress)
        dep = lesion_dependencies(model, partition, data, importance=imp, n_draws=args.dependency_draws,
                                  seed=args.seed, progress=progress)
    except ValueError as err:
        print(f"netmod lesion: {err}", file=sys.stderr)
        return 2
    out = Path(args.out or f"netmod-lesion-{Path(args.model).stem}")
    files = write_report(out, imp, dep, partition=partition, model=str(args.model), dataset=data.name)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``netmod`` command.

    Examples
    --------
    >>> main(["--version"])  # doctest: +ELLIPSIS
    netmod ...
    0
    """
    from . import __version__

    parser = argparse.ArgumentParser(prog="netmod", description="Modularity of neural networks.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="n-cut of a freshly initialised MLP (dense and pruned)")
    demo.add_argument("--sizes", default="784,256,256,256,256,10", help="layer sizes, comma-separated")
    demo.add_argument("--n-clusters", type=int, default=12)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--json", action="store_true", help="print JSON instead of a table")
    cmp = sub.add_parser("compare", help="compare clustering methods on a saved MLP")
    cmp.add_argument("model", help="state_dict (torch.save) or TorchScript file of an MLP")
    cmp.add_argument("--sizes", default=None, help="expected layer sizes, comma-separated (checked)")
    cmp.add_argument("--methods", default="spectral,leiden,louvain")
    cmp.add_argument("--n-clusters", type=int, default=12)
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--json", action="store_true", help="print JSON instead of tables")
    rep = sub.add_parser("reproduce", help="train the four conditions, cluster them, compare with nulls, report")
    rep.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "embedded"])
    rep.add_argument("--quick", action="store_true",
                     help="embedded MNIST, 10+10 epochs, one network per condition (a few minutes)")
    rep.add_argument("--protocol", default="2021", choices=["2021", "2020"],
                     help="2021: k=12, layer null, 50 shuffles, 5 nets; 2020: k=4, both nulls, 320 shuffles, 10 nets")
    rep.add_argument("--networks", type=int, default=None, help="networks per condition")
    rep.add_argument("--n-clusters", type=int, default=None)
    rep.add_argument("--null", default=None, help="'layer', 'nonzero' or 'layer,nonzero'")
    rep.add_argument("--shuffles", type=int, default=None)
    rep.add_argument("--epochs", type=int, default=None, help="training epochs (default 20)")
    rep.add_argument("--prune-epochs", type=int, default=None, help="pruning epochs (default 20)")
    rep.add_argument("--sizes", default=None, help="layer sizes, comma-separated")
    rep.add_argument("--seed", type=int, default=None, help="seed of the first network (then +1 per network)")
    rep.add_argument("--threads", type=int, default=None, help="threads for the null runs (default: all cores)")
    rep.add_argument("--data-dir", default=None, help="folder with mnist/ and fashion-mnist/ (else $NETMOD_DATA...)")
    rep.add_argument("--out", default=None, help="output folder (default netmod-<dataset>-<protocol>)")
    rep.add_argument("--models", default=None, help="folder of trained networks to reuse (default OUT/models)")
    rep.add_argument("--progress", action="store_true", help="show per-epoch progress bars")
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
    args = parser.parse_args(argv)
    if args.version:
        print(f"netmod {__version__}")
        return 0
    if args.command == "demo":
        return _demo(args)
    if args.command == "compare":
        return _compare(args)
    if args.command == "reproduce":
        return _reproduce(args)
    if args.command == "lesion":
        return _lesion(args)
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
