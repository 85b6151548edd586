"""The Examples sections of the installed package's docstrings run and pass."""

import doctest
import importlib

import pytest

MODULES = [
    "netmod",
    "netmod.graphs",
    "netmod.spectral",
    "netmod.results",
    "netmod.torch_models",
    "netmod.cli",
    "netmod.nulls",
    "netmod.communities",
    "netmod.compare",
    "netmod.datasets",
    "netmod.training",
    "netmod.synthetic",
    "netmod.reproduce",
    "netmod.lesions",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
