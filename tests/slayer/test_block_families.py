"""The neuron-family block modules built by ``block._family.family``: real, picklable classes."""

from __future__ import annotations

import importlib
import io

import pytest
import torch
from neuron_params import NEURON_PARAMS

from slayerc.frontend.slayer.block import base

FAMILIES = {"cuba": "layer", "alif": "layer", "rf": "complex", "rf_iz": "complex",
            "adrf": "complex", "adrf_iz": "complex"}


@pytest.mark.parametrize("name", FAMILIES)
def test_blocks_are_classes_of_their_module_with_the_family_settings(name: str) -> None:
    mod = importlib.import_module(f"slayerc.frontend.slayer.block.{name}")
    neuron = importlib.import_module(f"slayerc.frontend.slayer.neuron.{name}")
    for block in mod.__all__:
        cls = getattr(mod, block)
        assert cls.__module__ == mod.__name__ and cls.__qualname__ == block
        assert issubclass(cls, getattr(base, f"Abstract{block}"))
        assert cls.__doc__
    assert mod.Dense.neuron_cls is neuron.Neuron
    assert mod.Dense.synapses.__name__.endswith(FAMILIES[name])
    assert mod.Dense.delay_shift_default is True
    assert ("Affine" in mod.__all__) == (name in ("cuba", "rf", "rf_iz"))


@pytest.mark.parametrize("name", FAMILIES)
def test_a_family_block_runs_and_survives_torch_save(name: str) -> None:
    mod = importlib.import_module(f"slayerc.frontend.slayer.block.{name}")
    other = importlib.import_module("slayerc.frontend.slayer.block.cuba")
    assert name == "cuba" or mod.Dense is not other.Dense
    blk = mod.Dense(NEURON_PARAMS[name], 6, 4)
    x = (torch.rand(2, 6, 12, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    y = blk(x)
    assert y.shape == (2, 4, 12)
    buf = io.BytesIO()
    torch.save(blk, buf)
    buf.seek(0)
    again = torch.load(buf, weights_only=False)
    assert type(again) is mod.Dense
    assert torch.equal(again(x), y)
