"""Overhead of running a null through a Dask cluster: a 1000-shuffle pruned-MLP null locally and on a LocalCluster.

The network is the 1818-node MLP (784-256-256-256-256-10) of bench_nulls.py,
Glorot-uniform (netmod.synthetic.glorot_weights, seed 0) and 90% magnitude-pruned
(netmod.synthetic.prune_by_magnitude). In one run, on the same 2 cores:

- local: netmod.shuffle_null(w, n_shuffles=N, n_clusters=12, seed=0, n_threads=2);
- dask: the same call with executor=Client(LocalCluster(n_workers=2,
  threads_per_worker=1, processes=True)).get_executor() (each task one thread),
  for the default chunking and for --chunk-sizes; the cluster's start-up is
  timed separately and not counted;
- the samples of every run are checked to be bit-identical to the local ones.

The overhead is the dask time over the local one. Where it goes: task
scheduling and result transfer per chunk (fewer, longer chunks pay less), the
scatter of the weights once per run, and the work the 2 worker processes
duplicate (each imports netmod and holds its own copy of the weights), against
the local run's shared-memory threads.

Run: python bench/bench_executor.py [--shuffles 1000] [--chunk-sizes 10,50,250]
"""

import argparse
import os
import platform
import time

import numpy as np

import netmod
from netmod.synthetic import glorot_weights, prune_by_magnitude


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shuffles", type=int, default=1000)
    parser.add_argument("--chunk-sizes", default="10,50,250")
    args = parser.parse_args(argv)
    import distributed

    w = prune_by_magnitude(glorot_weights([784, 256, 256, 256, 256, 10], seed=0), 0.9)
    kw = {"n_shuffles": args.shuffles, "n_clusters": 12, "seed": 0, "progress": False}
    print(f"netmod {netmod.__version__}, distributed {distributed.__version__}, python "
          f"{platform.python_version()}, {os.cpu_count()} cores; pruned 1818-node MLP, {args.shuffles} layer shuffles")
    netmod.shuffle_null(w, **{**kw, "n_shuffles": 8})  # warm-up
    t = time.perf_counter()
    local = netmod.shuffle_null(w, n_threads=2, **kw)
    t_local = time.perf_counter() - t
    print(f"local, 2 threads: {t_local:.2f} s")
    t = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        print(f"LocalCluster(2 workers x 1 thread) started in {time.perf_counter() - t:.2f} s")
        ex = client.get_executor()
        netmod.shuffle_null(w, executor=ex, **{**kw, "n_shuffles": 8})  # workers import netmod
        for chunk in [None] + [int(c) for c in args.chunk_sizes.split(",") if c]:
            t = time.perf_counter()
            got = netmod.shuffle_null(w, executor=ex, chunk_size=chunk, **kw)
            took = time.perf_counter() - t
            same = np.array_equal(got.samples, local.samples) and got.observed == local.observed
            label = "default (4 tasks per worker)" if chunk is None else f"{chunk} per task"
            print(f"dask, chunks {label:<28}: {took:.2f} s, {took / t_local:.3f}x local; samples identical: {same}")


if __name__ == "__main__":
    main()
