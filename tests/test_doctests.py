"""The Examples sections of the installed package's docstrings run and pass."""

import doctest
import importlib
from pathlib import Path

import pytest

import netmod

# Every module of the package (but the ``python -m netmod`` entry point) has examples.
MODULES = ["netmod"] + sorted(f"netmod.{p.stem}" for p in Path(netmod.__file__).parent.glob("*.py")
                              if p.stem not in ("__init__", "__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
