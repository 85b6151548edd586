"""Training throughput: several seeds stacked as one batched network against one network at a time (issue 17).

Trains ``--seeds`` networks of one condition (784-256-256-256-256-10, REFERENCE.md 5: Adam 1e-3, eps 1e-7,
batch 128, Glorot init, ``--dropout`` after each hidden layer) on full MNIST (from NETMOD_DATA, else
the embedded 8000 training images) for ``--epochs`` epochs, twice in this process:

- one at a time: netmod.training.train_mlp per seed (what ``netmod reproduce`` does without --stack);
- stacked: netmod.training.train_mlps with all seeds at once (``netmod reproduce --stack``).

Reported: wall seconds of each, networks per hour, and the ratio stacked / one-at-a-time of
networks per hour; and, to show the stacked networks are the same protocol, each seed's test
accuracy and n-cut (spectral clustering k=12, n_init 25, as the 2021 protocol) both ways, with
the means and sds over seeds. The ratio is the figure to quote; absolute times depend on the
machine and its load.

Run: python bench/bench_training.py [--seeds 5] [--epochs 20] [--dropout 0.0] [--threads 2] [--json OUT]
"""

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

import netmod
from netmod import datasets, training

SIZES = (784, 256, 256, 256, 256, 10)


def load(args):
    try:
        tr = datasets.load("mnist", "train", download=False)
        te = datasets.load("mnist", "test", download=False)
    except FileNotFoundError:
        tr, te = datasets.load_embedded("train"), datasets.load_embedded("test")
    return (tr.images, tr.labels), (te.images, te.labels), f"{tr.name} ({tr.source}, {len(tr.labels)} images)"


def ncut(model):
    return netmod.spectral_clustering(netmod.from_torch(model), n_clusters=12, n_init=25, seed=0).ncut


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train, test, source = load(args)
    seeds = list(range(args.seeds))
    print(f"{source}; {args.seeds} seeds x {args.epochs} epochs, dropout {args.dropout}, {args.threads} thread(s)")

    t0 = time.perf_counter()
    single = [training.train_mlp(train, sizes=SIZES, dropout=args.dropout, epochs=args.epochs, seed=s, test=test,
                                 progress=False) for s in seeds]
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    stacked = training.train_mlps(train, seeds=seeds, sizes=SIZES, dropout=args.dropout, epochs=args.epochs,
                                  test=test, progress=False)
    t_stacked = time.perf_counter() - t0

    rows = []
    for s, (m1, r1), (m2, r2) in zip(seeds, single, stacked):
        rows.append({"seed": s, "acc_single": r1.test_accuracy, "acc_stacked": r2.test_accuracy,
                     "ncut_single": ncut(m1), "ncut_stacked": ncut(m2)})
    per_hour = {"single": 3600 * len(seeds) / t_single, "stacked": 3600 * len(seeds) / t_stacked}
    print("| seed | acc one at a time | acc stacked | n-cut one at a time | n-cut stacked |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['acc_single']:.4f} | {r['acc_stacked']:.4f} | {r['ncut_single']:.4f} "
              f"| {r['ncut_stacked']:.4f} |")
    summary = {}
    for key in ("acc_single", "acc_stacked", "ncut_single", "ncut_stacked"):
        v = np.array([r[key] for r in rows])
        summary[key] = [float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0]
        print(f"{key}: {v.mean():.4f} +- {summary[key][1]:.4f}")
    print(f"one at a time: {t_single:.0f} s, {per_hour['single']:.1f} networks/hour")
    print(f"stacked:       {t_stacked:.0f} s, {per_hour['stacked']:.1f} networks/hour")
    print(f"ratio stacked / one at a time: {per_hour['stacked'] / per_hour['single']:.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "source": source, "seconds": {"single": t_single, "stacked": t_stacked},
                       "networks_per_hour": per_hour, "ratio": per_hour["stacked"] / per_hour["single"],
                       "rows": rows, "summary": summary, "versions": {**netmod.versions(), "torch": torch.__version__},
                       "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}, fh, indent=2)


if __name__ == "__main__":
    main()
