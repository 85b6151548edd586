"""netmod.torch_models: the Keras-like MLP (the tracing of model objects is tested in test_tracing.py)."""

import subprocess
import sys

import torch
from torch import nn

from netmod.torch_models import keras_like_mlp


def test_import_netmod_does_not_import_torch():
    code = "import netmod, sys; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_keras_like_mlp_is_glorot_uniform_with_zero_biases():
    model = keras_like_mlp([30, 20, 10], dropout=0.5, seed=3)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    for lin in linears:
        bound = (6.0 / (lin.in_features + lin.out_features)) ** 0.5
        largest = float(lin.weight.detach().abs().max())
        assert 0.9 * bound < largest <= bound
        assert float(lin.bias.detach().abs().sum()) == 0.0
    again = keras_like_mlp([30, 20, 10], dropout=0.5, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
