"""Peak memory of the two resource cases of issue 7.

(a) netmod.shuffle_null on the 1818-node MLP (784-256-256-256-256-10,
    netmod.synthetic.glorot_weights(sizes, seed=0), dense) with 100 and with
    1000 shuffles (method="layer", n_clusters=12, n_threads=2): the peak must
    not grow with the number of shuffles.
(b) netmod.spectral_clustering(n_clusters=12, seed=0) of the
    784-2048-2048-2048-2048-10 MLP (9002 nodes, 14.2M edges, Glorot weights),
    given as a torch MLP (netmod.torch_models.keras_like_mlp), as the igraph
    graph of netmod.from_layers, and as a scipy CSR adjacency.

Each case runs in a fresh subprocess. The peak is the kernel's high-water mark
VmHWM (/proc/self/status, the counter resource.getrusage's ru_maxrss reads),
reset to the current RSS through /proc/self/clear_refs once the input exists,
so "call" is how far the call itself raises the peak above the RSS before it;
"total" is the process's whole peak (interpreter, imports, input, call).
ru_maxrss is not read directly: a child started by vfork/exec inherits its
parent's peak in it.

Run: python bench/bench_memory.py [--cases a,b]   (Linux only)
"""

import argparse
import json
import platform
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
import netmod, netmod.synthetic

def kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])

def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")

case, arg = sys.argv[1], sys.argv[2]
if case == "null":
    sizes = (784, 256, 256, 256, 256, 10)
    graph = netmod.synthetic.glorot_weights(sizes, seed=0)
    run = lambda: netmod.shuffle_null(graph, n_shuffles=int(arg), shuffle="layer", n_clusters=12, seed=0,
                                      n_threads=2, progress=False).samples.size
else:
    sizes = (784, 2048, 2048, 2048, 2048, 10)
    if arg == "torch":
        from netmod.torch_models import keras_like_mlp
        graph = keras_like_mlp(sizes, seed=0)
    elif arg == "igraph":
        graph = netmod.from_layers(netmod.synthetic.glorot_weights(sizes, seed=0))
    else:
        import scipy.sparse as sp
        ws = netmod.synthetic.glorot_weights(sizes, seed=0)
        n = sum(sizes)
        off = np.concatenate([[0], np.cumsum(sizes)])
        blocks = [[None] * len(sizes) for _ in sizes]
        for l, w in enumerate(ws):
            blocks[l][l + 1] = sp.csr_matrix(np.abs(w))
            blocks[l + 1][l] = sp.csr_matrix(np.abs(w).T)
        graph = sp.bmat(blocks, format="csr")
        del ws, blocks
    run = lambda: netmod.spectral_clustering(graph, n_clusters=12, seed=0).ncut
input_kib = kib("VmRSS")
reset_peak()
before = kib("VmHWM")
t = time.perf_counter()
result = run()
seconds = time.perf_counter() - t
print(json.dumps({"case": case, "arg": arg, "before_kib": before, "call_peak_kib": kib("VmHWM"),
                  "total_peak_kib": max(kib("VmHWM"), input_kib), "seconds": seconds, "result": result}))
"""


def child(case, arg):
    out = subprocess.run([sys.executable, "-c", CHILD, case, arg], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def mib(kib):
    return kib / 1024.0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="a,b", help="comma-separated: a (null), b (spectral)")
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        sys.exit("bench_memory.py reads /proc: Linux only")
    import netmod

    print(f"netmod {netmod.__version__}, Python {platform.python_version()}, {platform.machine()}")
    print("| case | input | seconds | RSS before call [MiB] | call raises peak by [MiB] | total peak [MiB] |")
    print("|---|---|---|---|---|---|")
    rows = []
    cases = args.cases.split(",")
    if "a" in cases:
        rows += [child("null", "100"), child("null", "1000")]
    if "b" in cases:
        rows += [child("spectral", kind) for kind in ("torch", "igraph", "csr")]
    for r in rows:
        label = f"{r['arg']} shuffles" if r["case"] == "null" else r["arg"]
        print(f"| {r['case']} | {label} | {r['seconds']:.1f} | {mib(r['before_kib']):.1f} | "
              f"{mib(r['call_peak_kib'] - r['before_kib']):.1f} | {mib(r['total_peak_kib']):.1f} |")
    nulls = [r for r in rows if r["case"] == "null"]
    if len(nulls) == 2:
        grow = [r["call_peak_kib"] - r["before_kib"] for r in nulls]
        print(f"null: 1000 vs 100 shuffles, call peak growth differs by {mib(grow[1] - grow[0]):+.2f} MiB "
              f"(the samples array adds 7 KiB)")


if __name__ == "__main__":
    main()
