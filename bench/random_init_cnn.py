"""REFERENCE.md 6c through from_torch: random-init (and clusterable-init) CNN and MLP filter graphs.

Each net is a torch model with the test architectures' topology (tests/cnn_models.py):
the small CNN (28x28x1 inputs) and the CIFAR-10 VGG-16 (BatchNorm at its initial
statistics), conv kernels Glorot-uniform (``torch.nn.init.xavier_uniform_``, Keras'
limit sqrt(6 / ((in + out) * kh * kw))), zero biases; the graph is
``netmod.from_torch(model, example_input=x, include="conv", kernel_norm=norm)``
and its n-cut that of spectral clustering with k=12, seed 0. For the clusterable
rows the conv kernels are those of ``netmod.synthetic.clusterable_conv_kernels``
(factors 2.8 / 0.8, REFERENCE.md 5), copied into the model. The MLP row is
784-256x4-10 with Glorot-uniform weights (from_torch, all units). Mean and sd
over --nets networks (seeds 0..n-1).

Run: python bench/random_init_cnn.py [--nets 20]
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
from torch import nn

import netmod
from netmod.paper import UNTRAINED_CNN, UNTRAINED_MLP
from netmod.synthetic import clusterable_conv_kernels, clusterable_weights

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import cnn_models  # noqa: E402

K = 12


def glorot(model, seed):
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def clusterable(model, seed, in_channels):
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    kernels = clusterable_conv_kernels([c.out_channels for c in convs], in_channels=in_channels, seed=seed)
    with torch.no_grad():
        for c, k in zip(convs, kernels):
            c.weight.copy_(torch.from_numpy(k))
    return model


def mlp(seed, clusterable_init=False):
    sizes = UNTRAINED_MLP["sizes"]
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = glorot(nn.Sequential(*layers[:-1]), seed)
    if clusterable_init:
        ws = clusterable_weights(sizes, seed=seed, first_layer=True)
        with torch.no_grad():
            for lin, w in zip([m for m in model if isinstance(m, nn.Linear)], ws):
                lin.weight.copy_(torch.from_numpy(w.T))
    return model


def row(make, x, norm, nets):
    values = []
    for seed in range(nets):
        g = netmod.from_torch(make(seed), example_input=x, include="conv", kernel_norm=norm)
        values.append(netmod.ncut(g, n_clusters=K, seed=0))
    return float(np.mean(values)), float(np.std(values))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=20)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    print(f"netmod {netmod.__version__}, torch {torch.__version__}; {args.nets} nets per row, k={K}\n")
    print(f"{'network':<18} {'init':<12} {'induced-l1':>18} {'l1':>18} {'published':>18}")
    cases = [
        ("small CNN", cnn_models.small_cnn, torch.zeros(1, 1, 28, 28), 1),
        ("VGG-16 CIFAR-10", cnn_models.vgg16_cifar, torch.zeros(1, 3, 32, 32), 3),
    ]
    for name, arch, x, cin in cases:
        ref = UNTRAINED_CNN[name]
        for init in ("glorot", "clusterable"):
            def make(seed, arch=arch, init=init, cin=cin):
                model = glorot(arch(), seed).eval()
                return clusterable(model, seed, cin) if init == "clusterable" else model
            cells = [row(make, x, norm, args.nets) for norm in ("induced-l1", "l1")]
            pub_text = f"{ref['ncut']} +- {ref['sd']}" if init == "glorot" else str(ref["clusterable"])
            print(f"{name:<18} {init:<12} " + " ".join(f"{m:>9.3f} +- {s:.3f}" for m, s in cells)
                  + f" {pub_text:>18}", flush=True)
    for init in ("glorot", "clusterable"):
        vals = [netmod.ncut(netmod.from_torch(mlp(s, init == "clusterable")), n_clusters=K, seed=0)
                for s in range(args.nets)]
        pub_text = "10.295 +- 0.032" if init == "glorot" else "6.80 +- 0.03"
        print(f"{'MLP 784-256x4-10':<18} {init:<12} {np.mean(vals):>9.3f} +- {np.std(vals):.3f} {'(|w|)':>18} "
              f"{pub_text:>18}")
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
