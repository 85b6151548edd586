"""Cost of a training step with the clusterability regulariser against a plain step (issue 16, acceptance 2).

The full 784-256-256-256-256-10 MLP (netmod.torch_models.keras_like_mlp, seed 0, or ``--model PATH``
saved by netmod.training.save_model), batches of 128 embedded MNIST training images, Adam(1e-3,
eps 1e-7), cross-entropy, as netmod.training does. Two copies of the network step side by side:

- plain: zero_grad, forward, loss, backward, Adam step;
- regularised: the same plus ``(0.1 / 3) * clusterability_penalty(model, n_eigenvalues=3)`` in the
  loss (native Lanczos eigensolve, tol 1e-10, plus the eigenvalue-derivative backward) and one
  balance_hidden_units sweep after the step (what train_mlp(clusterability=0.1) does per batch).

Both copies first take ``--warmup`` regularised / plain steps, then ``--steps`` timed steps each,
alternating in blocks of 5 so drifting load hits both alike. Each timed figure is the median of
the per-step times (wall and process CPU); the regularised step is also split into its parts
(penalty forward = the eigensolve, the whole backward, the balancing sweep). Run at 1 and 2 torch
threads (``--threads``). The ratio regularised / plain is the figure to quote; absolute times
depend on the machine and its load.

Run: python bench/bench_regularizer.py [--steps N] [--warmup N] [--threads 1 2] [--model PATH] [--json OUT]
"""

import argparse
import copy
import json
import os
import platform
import time

import numpy as np
import torch
from torch import nn

import netmod
from netmod import training
from netmod.datasets import load_embedded
from netmod.torch_models import keras_like_mlp

SIZES = (784, 256, 256, 256, 256, 10)
LAM, M = 0.1, 3
BATCH = 128


def batches(n_steps, seed=0):
    tr = load_embedded("train")
    x = torch.as_tensor(tr.images.reshape(len(tr.images), -1).astype(np.float32) / 255.0)
    y = torch.as_tensor(tr.labels.astype(np.int64))
    gen = torch.Generator().manual_seed(seed)
    out = []
    while len(out) < n_steps:
        order = torch.randperm(len(x), generator=gen)
        out += [(x[order[i : i + BATCH]], y[order[i : i + BATCH]]) for i in range(0, len(x) - BATCH + 1, BATCH)]
    return out[:n_steps]


class Stepper:
    def __init__(self, model, regularised):
        self.model = model
        self.regularised = regularised
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=training.ADAM_EPS)
        self.loss_fn = nn.CrossEntropyLoss()
        self.linears = training._balance_layers(model) if regularised else None
        if regularised:
            for _ in range(training.BALANCE_START_SWEEPS):
                training._balance_sweep(self.linears)

    def step(self, xb, yb):
        """One step; returns {part: (wall, cpu)} seconds."""
        parts = {}
        w0, c0 = time.perf_counter(), time.process_time()
        self.opt.zero_grad()
        loss = self.loss_fn(self.model(xb), yb)
        if self.regularised:
            w1, c1 = time.perf_counter(), time.process_time()
            pen = training.clusterability_penalty(self.model, n_eigenvalues=M)
            parts["penalty forward (eigensolve)"] = (time.perf_counter() - w1, time.process_time() - c1)
            loss = loss + (LAM / M) * pen
        w1, c1 = time.perf_counter(), time.process_time()
        loss.backward()
        parts["backward"] = (time.perf_counter() - w1, time.process_time() - c1)
        self.opt.step()
        if self.regularised:
            w1, c1 = time.perf_counter(), time.process_time()
            training._balance_sweep(self.linears)
            parts["balance sweep"] = (time.perf_counter() - w1, time.process_time() - c1)
        parts["step"] = (time.perf_counter() - w0, time.process_time() - c0)
        return parts


def run(model, threads, steps, warmup):
    torch.set_num_threads(threads)
    data = batches(warmup + steps)
    plain, reg = Stepper(copy.deepcopy(model), False), Stepper(copy.deepcopy(model), True)
    for xb, yb in data[:warmup]:
        plain.step(xb, yb)
        reg.step(xb, yb)
    times = {"plain": [], "regularised": []}
    block = 5
    timed = data[warmup:]
    for i in range(0, steps, block):
        for name, s in (("plain", plain), ("regularised", reg)):
            for xb, yb in timed[i : i + block]:
                times[name].append(s.step(xb, yb))
    out = {}
    for name, rows in times.items():
        out[name] = {part: {"wall_ms": 1e3 * float(np.median([r[part][0] for r in rows])),
                            "cpu_ms": 1e3 * float(np.median([r[part][1] for r in rows]))} for part in rows[0]}
    out["ratio_wall"] = out["regularised"]["step"]["wall_ms"] / out["plain"]["step"]["wall_ms"]
    out["ratio_cpu"] = out["regularised"]["step"]["cpu_ms"] / out["plain"]["step"]["cpu_ms"]
    emb = netmod.spectral_embedding(netmod.from_torch(reg.model), n_components=M + 2, tol=1e-10)
    out["eigenvalues_after"] = emb.eigenvalues.tolist()
    out["n_matvec_after"] = emb.info["n_matvec"]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.model:
        model, _ = training.load_model(args.model)
        model.train()
    else:
        model = keras_like_mlp(SIZES, seed=0)
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
                           "netmod": netmod.__version__, "load_before": os.getloadavg()[0]},
               "settings": {"sizes": SIZES, "batch": BATCH, "lambda": LAM, "m": M, "steps": args.steps,
                            "warmup": args.warmup, "model": args.model or "keras_like_mlp(seed=0)",
                            "tol": training.PENALTY_TOL},
               "threads": {}}
    print(f"784-256x4-10 MLP, batch {BATCH}, {args.steps} timed steps each after {args.warmup} warm-up; medians")
    print(f"{'threads':>7} | {'plain step ms (cpu)':>20} | {'regularised ms (cpu)':>21} | {'ratio wall':>10} | "
          f"{'ratio cpu':>9} | {'eigensolve ms':>13} | {'backward ms':>11} | {'balance ms':>10}")
    for t in args.threads:
        r = run(model, t, args.steps, args.warmup)
        results["threads"][str(t)] = r
        p, g = r["plain"], r["regularised"]
        print(f"{t:>7} | {p['step']['wall_ms']:>9.2f} ({p['step']['cpu_ms']:>7.2f}) | "
              f"{g['step']['wall_ms']:>10.2f} ({g['step']['cpu_ms']:>7.2f}) | {r['ratio_wall']:>10.2f} | "
              f"{r['ratio_cpu']:>9.2f} | {g['penalty forward (eigensolve)']['wall_ms']:>13.2f} | "
              f"{g['backward']['wall_ms']:>11.2f} | {g['balance sweep']['wall_ms']:>10.2f}")
    results["machine"]["load_after"] = os.getloadavg()[0]
    print(f"load average before/after: {results['machine']['load_before']:.2f} / {results['machine']['load_after']:.2f}"
          f" on {os.cpu_count()} cores")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
