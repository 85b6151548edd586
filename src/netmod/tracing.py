"""Torch models to layers (placeholder: the fx tracer replaces this module)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .torch_models import layer_weights_from_module

__all__ = ["MlpTrace", "mlp_weights", "trace_mlp"]


@dataclass(frozen=True)
class MlpTrace:
    names: tuple
    weights: tuple

    @property
    def sizes(self) -> tuple:
        return (self.weights[0].shape[0],) + tuple(w.shape[1] for w in self.weights)


def trace_mlp(model, *, example_input=None) -> MlpTrace:
    weights = layer_weights_from_module(model, example_input=example_input)
    for w in weights:
        w.setflags(write=False)
    import torch

    names = tuple(n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear))
    return MlpTrace(names=names, weights=tuple(weights))


def mlp_weights(model, *, example_input=None) -> list:
    return [np.array(w) for w in trace_mlp(model, example_input=example_input).weights]
