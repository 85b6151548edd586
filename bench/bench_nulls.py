"""Time netmod.shuffle_null against numpy shuffles + sklearn SpectralClustering.

Issue 3, acceptance point 5. Builds the 1818-node MLP (784-256-256-256-256-10)
with netmod.synthetic.glorot_weights(sizes, seed=0) (dense) and
netmod.synthetic.prune_by_magnitude(dense, 0.9) (90% per-layer magnitude
pruning) and, in one run, on each network:

- times netmod.shuffle_null(weights, n_shuffles=50, shuffle="layer",
  n_clusters=12, seed=0, n_threads=2, progress=False) (one warm-up call, then
  --repeats timed calls; the observed clustering is included in its time);
- times the same 50 replicates done the straightforward way: dead-node
  removal once, then per replicate i every layer's entries permuted with
  np.random.default_rng(i).permutation, the dense adjacency |W|, isolated nodes
  dropped, sklearn SpectralClustering(affinity="precomputed", n_clusters=12,
  eigen_solver="arpack", assign_labels="kmeans", random_state=i) and the n-cut
  by a numpy formula. Only --baseline-replicates of them are timed (after one
  untimed warm-up replicate); the 50-replicate time is that time scaled
  linearly, and the output says so;
- measures samples/second of netmod.shuffle_null for n_threads = 1 and 2.

With --memory it also runs shuffle_null(n_shuffles=100) and (1000) on the
pruned network, each in a fresh subprocess, and reports how far the peak
resident set size rises above the RSS just before the call: the kernel's
high-water mark (VmHWM in /proc/self/status, the counter that
resource.getrusage(RUSAGE_SELF).ru_maxrss reads, reset to the current RSS
through /proc/self/clear_refs after the imports). ru_maxrss itself is not used
on Linux because a child started by vfork/exec inherits the parent's peak in
it (here the ~270 MiB of this process, which hid the call entirely); tracemalloc
would miss the C++ allocations. The growth must not depend on n_shuffles
beyond the 8 bytes per sample of the samples array.

Ratios and target verdicts use netmod's best time (the least disturbed by other
load on the machine); the median is printed next to it.

Run: python bench/bench_nulls.py [--repeats N] [--baseline-replicates N] [--memory]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings

import numpy as np
import scipy
import sklearn
from sklearn.cluster import SpectralClustering

import netmod
import netmod.synthetic

LAYER_SIZES = (784, 256, 256, 256, 256, 10)
N_CLUSTERS = 12
N_SHUFFLES = 50
SPARSITY = 0.9
THREADS = 2
SPEEDUP_TARGET = 20.0
TIME_TARGETS = {"dense": 1.5, "pruned": 0.6}  # seconds for the 50 shuffles
MEMORY_COUNTS = (100, 1000)
MEMORY_SLACK_MIB = 2.0  # allowed extra peak growth for 1000 vs 100 shuffles

MEMORY_CHILD = r"""
import json, resource, sys, time
import netmod, netmod.synthetic


def status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_kib():
    # VmHWM is the kernel's high-water mark of this process's own memory (the counter
    # ru_maxrss reads); ru_maxrss alone would also report the parent's peak, which a
    # child started by vfork/exec inherits. Fall back to ru_maxrss off Linux.
    hwm = status_kib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


n_shuffles, n_threads = int(sys.argv[1]), int(sys.argv[2])
sizes = tuple(json.loads(sys.argv[3]))
weights = netmod.synthetic.prune_by_magnitude(netmod.synthetic.glorot_weights(sizes, seed=0), float(sys.argv[4]))
try:  # reset the high-water mark to the current RSS, so import-time peaks do not mask the call
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:
    reset = False
before = peak_kib()
start = time.perf_counter()
null = netmod.shuffle_null(weights, n_shuffles=n_shuffles, shuffle="layer", n_clusters=int(sys.argv[5]),
                           seed=0, n_threads=n_threads, progress=False)
seconds = time.perf_counter() - start
after = peak_kib()
print(json.dumps({"before_kib": before, "after_kib": after, "rss_after_kib": status_kib("VmRSS"),
                  "reset": reset, "seconds": seconds, "n_samples": int(null.samples.size)}))
"""

def network(name):
    weights = netmod.synthetic.glorot_weights(LAYER_SIZES, seed=0)
    if name == "pruned":
        weights = netmod.synthetic.prune_by_magnitude(weights, SPARSITY)
    return [np.asarray(w, dtype=np.float64) for w in weights]


# ---------------------------------------------------------------- baseline ---

def drop_dead_units(weights):
    """Remove units of zero degree from every layer (done once, as netmod does)."""
    sizes = [weights[0].shape[0]] + [w.shape[1] for w in weights]
    alive = []
    for l, size in enumerate(sizes):
        degree = np.zeros(size)
        if l < len(weights):
            degree += np.abs(weights[l]).sum(axis=1)
        if l > 0:
            degree += np.abs(weights[l - 1]).sum(axis=0)
        alive.append(degree > 0)
    return [w[alive[l]][:, alive[l + 1]] for l, w in enumerate(weights)]


def dense_adjacency(weights):
    """Symmetric dense adjacency |W| of a layered net, layer 0 first."""
    sizes = [weights[0].shape[0]] + [w.shape[1] for w in weights]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    A = np.zeros((offsets[-1], offsets[-1]))
    for l, w in enumerate(weights):
        rows = slice(offsets[l], offsets[l + 1])
        cols = slice(offsets[l + 1], offsets[l + 2])
        A[rows, cols] = np.abs(w)
        A[cols, rows] = np.abs(w).T
    return A


def ncut_numpy(A, labels):
    """sum_c cut(C_c) / vol(C_c) for a dense adjacency and labels 0..k-1."""
    degree = A.sum(axis=1)
    H = np.zeros((labels.size, labels.max() + 1))
    H[np.arange(labels.size), labels] = 1.0
    vol = H.T @ degree
    internal = np.einsum("ic,ic->c", H, A @ H)
    nonzero = vol > 0
    return float(np.sum((vol[nonzero] - internal[nonzero]) / vol[nonzero]))


def baseline_replicate(compact, i):
    rng = np.random.default_rng(i)
    shuffled = [rng.permutation(w.ravel()).reshape(w.shape) for w in compact]
    A = dense_adjacency(shuffled)
    kept = A.sum(axis=1) > 0
    A = A[kept][:, kept]
    model = SpectralClustering(n_clusters=N_CLUSTERS, affinity="precomputed",
                               eigen_solver="arpack", assign_labels="kmeans", random_state=i)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        labels = model.fit_predict(A)
    return ncut_numpy(A, labels)


def time_baseline(weights, n_replicates):
    compact = drop_dead_units(weights)
    baseline_replicate(compact, 0)  # warm-up, untimed
    samples = []
    start = time.perf_counter()
    for i in range(n_replicates):
        samples.append(baseline_replicate(compact, i))
    seconds = time.perf_counter() - start
    return seconds, np.array(samples)


# ------------------------------------------------------------------ netmod ---

def run_netmod(weights, n_threads, n_shuffles=N_SHUFFLES):
    return netmod.shuffle_null(weights, n_shuffles=n_shuffles, shuffle="layer",
                               n_clusters=N_CLUSTERS, seed=0, n_threads=n_threads,
                               progress=False)


def timed(fn, repeats):
    result = fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.min(times)), float(np.median(times)), result


def memory_child(n_shuffles):
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(n_shuffles), str(THREADS),
         json.dumps(LAYER_SIZES), str(SPARSITY), str(N_CLUSTERS)],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed shuffle_null calls per setting after one warm-up call (default 3)")
    parser.add_argument("--baseline-replicates", type=int, default=5,
                        help="baseline replicates actually timed, scaled linearly to 50 (default 5)")
    parser.add_argument("--memory", action="store_true",
                        help="also measure peak memory growth for 100 vs 1000 shuffles (pruned, "
                             "fresh subprocess each; takes a while)")
    args = parser.parse_args()
    if args.repeats < 1 or args.baseline_replicates < 1:
        parser.error("--repeats and --baseline-replicates must be >= 1")

    print(f"netmod {getattr(netmod, '__version__', '?')}, numpy {np.__version__}, "
          f"scipy {scipy.__version__}, scikit-learn {sklearn.__version__}, "
          f"python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"MLP {'-'.join(map(str, LAYER_SIZES))} (glorot_weights seed=0; pruned = "
          f"prune_by_magnitude 0.9); method='layer', k={N_CLUSTERS}, seed=0, {N_SHUFFLES} shuffles")
    print(f"netmod: best and median of {args.repeats} shuffle_null calls after a warm-up call "
          f"(n_threads={THREADS}, includes the observed clustering)")
    print(f"baseline: numpy permutation + dense adjacency + sklearn SpectralClustering(arpack) + "
          f"numpy n-cut, one replicate at a time (BLAS threads as installed); "
          f"{args.baseline_replicates} replicates timed after "
          f"1 warm-up, EXTRAPOLATED linearly to {N_SHUFFLES}\n")

    header = (f"{'graph':<7} {'edges':>7} {'netmod best [s]':>16} {'median [s]':>11} "
              f"{'baseline 50 [s]':>16} {'baseline/netmod':>16} {'null mean +- std (netmod)':>27} "
              f"{'(baseline subset)':>19}")
    print(header)
    print("-" * len(header))
    rows = {}
    for name in ("dense", "pruned"):
        weights = network(name)
        edges = int(sum(np.count_nonzero(w) for w in weights))
        best, median, null = timed(lambda weights=weights: run_netmod(weights, THREADS), args.repeats)
        b_seconds, b_samples = time_baseline(weights, args.baseline_replicates)
        b50 = b_seconds * N_SHUFFLES / args.baseline_replicates
        rows[name] = dict(weights=weights, best=best, median=median, b50=b50, null=null)
        print(f"{name:<7} {edges:>7} {best:>16.3f} {median:>11.3f} {b50:>15.1f}* "
              f"{b50 / best:>15.1f}x {null.mean:>14.4f} +- {null.std:.4f}  "
              f"{b_samples.mean():>9.4f} +- {b_samples.std():.4f}")
        print(f"{'':<7} observed n-cut {null.observed:.4f}, z = {null.zscore:+.2f}, "
              f"percentile = {null.percentile:.3f}")
    print(f"* baseline: {args.baseline_replicates} replicates timed, scaled linearly to "
          f"{N_SHUFFLES} (x{N_SHUFFLES / args.baseline_replicates:g})\n")

    print(f"samples/second of shuffle_null ({N_SHUFFLES} shuffles, best of {args.repeats}; "
          f"same samples for every n_threads?)")
    for name in ("dense", "pruned"):
        r = rows[name]
        best1, median1, null1 = timed(lambda r=r: run_netmod(r["weights"], 1), args.repeats)
        same = np.array_equal(null1.samples, r["null"].samples) and null1.observed == r["null"].observed
        print(f"{name:<7} n_threads=1: {N_SHUFFLES / best1:7.1f}/s ({best1:.3f} s)   "
              f"n_threads=2: {N_SHUFFLES / r['best']:7.1f}/s ({r['best']:.3f} s)   "
              f"2-thread speed-up {best1 / r['best']:.2f}x   identical samples: {same}")
    print()

    for name in ("dense", "pruned"):
        r = rows[name]
        ratio = r["b50"] / r["best"]
        v_ratio = "meets" if ratio >= SPEEDUP_TARGET else "MISSES"
        v_time = "meets" if r["best"] < TIME_TARGETS[name] else "MISSES"
        print(f"{name:<7} baseline/netmod = {ratio:6.1f}x (target >= {SPEEDUP_TARGET:.0f}x: {v_ratio}); "
              f"{N_SHUFFLES} shuffles in {r['best']:.3f} s (target < {TIME_TARGETS[name]} s: {v_time})")

    if args.memory:
        print(f"\npeak RSS growth across shuffle_null on the pruned network (n_threads={THREADS}, "
              f"fresh subprocess each; peak = VmHWM, the high-water mark ru_maxrss reads, reset to "
              f"the current RSS just before the call)")
        growth = {}
        for n in MEMORY_COUNTS:
            m = memory_child(n)
            growth[n] = (m["after_kib"] - m["before_kib"]) / 1024
            rss = "?" if m["rss_after_kib"] is None else f"{m['rss_after_kib'] / 1024:.1f}"
            print(f"  n_shuffles={n:>5}: RSS before {m['before_kib'] / 1024:7.1f} MiB, peak during "
                  f"{m['after_kib'] / 1024:7.1f} MiB (RSS after {rss} MiB), growth {growth[n]:6.2f} MiB"
                  f"{'' if m['reset'] else ' [peak not reset: includes earlier peaks]'} "
                  f"({m['seconds']:.2f} s, {m['n_samples'] / m['seconds']:.1f} samples/s)")
        lo, hi = MEMORY_COUNTS
        extra = growth[hi] - growth[lo]
        allowed = 8 * (hi - lo) / 2**20 + MEMORY_SLACK_MIB
        verdict = "flat" if extra <= allowed else "GROWS"
        print(f"  {hi} vs {lo} shuffles: {extra:+.2f} MiB (samples array: "
              f"{8 * (hi - lo) / 1024:.1f} KiB more; allowed {allowed:.2f} MiB incl. "
              f"{MEMORY_SLACK_MIB:g} MiB slack): {verdict}")


if __name__ == "__main__":
    main()
