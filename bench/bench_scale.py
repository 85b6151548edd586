"""Issue 15's scale figures in one run: the ResNet-50 and VGG-16 filter-graph nulls and one clustering of each
against the baselines a user would pick.

Graphs as in bench_cnn.py (tests/cnn_models.py topologies, Glorot-uniform
conv kernels with seed 0, ``netmod.from_torch(model, example_input=x,
include="conv", kernel_norm="induced-l1")``). For each graph, in this order:

1. ``netmod.spectral_clustering(g, n_clusters=12, seed=0)``: best of
   --repeats calls after a warm-up, with the solver's operator applications
   (the operator columns Lanczos needed) and the eigenvector residual;
2. ``netmod.shuffle_null(g, n_shuffles=S, shuffle="layer", n_clusters=12,
   seed=0)`` on all cores for S = --small-shuffles and then S = --shuffles,
   each with the process's RSS before it and its peak during it (VmHWM reset
   between the runs): the peak must not grow with the number of shuffles;
3. sklearn ``SpectralClustering(affinity="precomputed",
   eigen_solver="arpack")`` on the CSR adjacency (on ResNet-50 its SuperLU
   shift-invert factorisation does not fit in memory: reported) and scipy
   ``eigsh`` + sklearn ``KMeans(n_init=10)``, each timed once (VGG: best of
   --repeats) and its n-cut; the ratios baseline / netmod.

Speed is only measured here, as ratios within one run; quote the machine.

Run: python bench/bench_scale.py [--shuffles 100] [--small-shuffles 10] [--repeats 3]
"""

import argparse
import os
import platform
import sys
import time

import numpy as np
import scipy
import sklearn
import torch

import netmod

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cnn import (  # noqa: E402
    K,
    adjacency,
    eigsh_kmeans,
    reset_peak_rss,
    resnet50_graph,
    rss_gib,
    sklearn_arpack,
    timed,
    vgg_graph,
)


def null_run(g, shuffles):
    before = rss_gib()
    reset = reset_peak_rss()
    t = time.perf_counter()
    out = netmod.shuffle_null(g, n_shuffles=shuffles, shuffle="layer", n_clusters=K, seed=0, progress=False)
    took = time.perf_counter() - t
    peak = rss_gib("VmHWM") if reset else float("nan")
    print(f"  shuffle_null {shuffles:>4} layer shuffles: {took:7.1f} s ({took / shuffles:.2f} s per shuffle), "
          f"RSS before {before:.2f} GiB, peak during {peak:.2f} GiB; null {out.mean:.4f} +- {out.std:.4f}, "
          f"observed {out.observed:.4f}, z {out.zscore:+.2f}")
    return took, peak, out


def bench(name, g, args):
    print(f"\n## {name}: {g.vcount()} nodes, {g.ecount()} edges, {len(g['layer_sizes'])} layers")
    nb, nm, p = timed(lambda: netmod.spectral_clustering(g, n_clusters=K, seed=0), args.repeats)
    print(f"  netmod.spectral_clustering: best {nb:.3f} s, median {nm:.3f} s, n-cut {p.ncut:.4f}; "
          f"{p.info['solver']} on the {p.info['operator']} operator, {p.info['n_matvec']} operator applications, "
          f"max residual {p.info['max_residual']:.1e}")
    small = null_run(g, args.small_shuffles)
    full = null_run(g, args.shuffles)
    np.testing.assert_array_equal(full[2].samples[:args.small_shuffles], small[2].samples)  # replicate i: (seed, i)
    print(f"  peak RSS {args.small_shuffles} -> {args.shuffles} shuffles: {small[1]:.2f} -> {full[1]:.2f} GiB; "
          f"the first {args.small_shuffles} samples identical")
    A = adjacency(g)
    big = A.shape[0] >= 10000
    reps = 1 if big else args.repeats
    out = {"netmod": nb, "null": full[0], "null_peak": full[1]}
    try:
        sb, _, labels = timed(lambda: sklearn_arpack(A), reps, warm=not big)
        out["sklearn"] = sb
        print(f"  sklearn SpectralClustering arpack: {sb:.3f} s, n-cut {netmod.ncut(g, labels):.4f}; "
              f"{sb / nb:.1f}x netmod")
    except MemoryError:
        print(f"  sklearn SpectralClustering arpack: MemoryError (SuperLU shift-invert of the {A.shape[0]}-node "
              f"Laplacian with {A.nnz} non-zeros)")
    eb, _, labels = timed(lambda: eigsh_kmeans(A), reps, warm=not big)
    out["eigsh"] = eb
    print(f"  scipy eigsh + sklearn KMeans: {eb:.3f} s, n-cut {netmod.ncut(g, labels):.4f}; {eb / nb:.1f}x netmod")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shuffles", type=int, default=100)
    parser.add_argument("--small-shuffles", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"netmod {netmod.__version__}, torch {torch.__version__}, numpy {np.__version__}, scipy "
          f"{scipy.__version__}, scikit-learn {sklearn.__version__}, python {platform.python_version()}, "
          f"{os.cpu_count()} cores; k = {K}")
    t0 = time.perf_counter()
    vgg = vgg_graph()
    res = {"VGG-16": bench("VGG-16 CIFAR-10", vgg, args)}
    del vgg
    t = time.perf_counter()
    resnet = resnet50_graph()
    print(f"\nResNet-50 graph from_torch: {time.perf_counter() - t:.1f} s, peak RSS so far {rss_gib('VmHWM'):.2f} GiB")
    res["ResNet-50"] = bench("ResNet-50", resnet, args)
    print(f"\n| graph | netmod clustering [s] | sklearn arpack / netmod | eigsh+KMeans / netmod | "
          f"{args.shuffles}-shuffle null [s] | peak RSS during the null [GiB] |")
    print("|---|---|---|---|---|---|")
    for name, r in res.items():
        sk = f"{r['sklearn'] / r['netmod']:.1f}x" if "sklearn" in r else "MemoryError"
        print(f"| {name} | {r['netmod']:.3f} | {sk} | {r['eigsh'] / r['netmod']:.1f}x | {r['null']:.1f} | "
              f"{r['null_peak']:.2f} |")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
