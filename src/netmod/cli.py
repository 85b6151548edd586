"""The ``netmod`` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
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
    args = parser.parse_args(argv)
    if args.version:
        print(f"netmod {__version__}")
        return 0
    if args.command == "demo":
        return _demo(args)
    if args.command == "compare":
        return _compare(args)
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
