"""trace + interpret equals the eager model exactly; unsupported code fails clearly."""

from __future__ import annotations

import copy
from pathlib import Path

import models
import numpy as np
import pytest
import refcases
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import slayerc
import slayerc.slayer as slayer
from slayerc.errors import FrontendError
from slayerc.frontend.trace import trace
from slayerc.ir import parse, print_graph, verify
from slayerc.runtime.interpreter import Interpreter, interpret

DATA = Path(__file__).resolve().parents[1] / "data" / "lava-dl"
EXAMPLES = Path(models.__file__)

SHAPES = {"SeedNetwork": (2, 3, 13, 16, 16), "NMNISTNet": (2, 2, 34, 34, 20),
          "PilotNetSDNN": (2, 3, 33, 100, 6), "TorchCNN": (2, 2, 16, 16, 12),
          "RecurrentKWTA": (3, 20, 30)}


def _input(shape: tuple[int, ...], graded: bool, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=g) < 0.3).float()
    return x * torch.rand(shape, generator=g) * 2 if graded else x


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_example_models_interpret_exactly(name: str) -> None:
    torch.manual_seed(0)
    model = getattr(models, name)().eval()
    eager = copy.deepcopy(model)
    graded = name in ("SeedNetwork", "PilotNetSDNN")
    x = _input(SHAPES[name], graded)
    g = trace(model, x)
    verify(g)
    it = Interpreter(g)
    for k in range(2):  # two calls: persistent blocks (Recurrent, KWTA) carry their state
        xk = torch.roll(x, 3 * k, dims=-1)
        with torch.no_grad():
            want = eager(xk)
        got = it(xk)
        assert torch.equal(got, want), f"call {k}: max diff {(got - want).abs().max()}"
    assert want.abs().sum() > 0
    assert parse(print_graph(g)) == g


def test_seed_network_is_lowered_not_opaque() -> None:
    g = trace(models.SeedNetwork().eval(), _input(SHAPES["SeedNetwork"], True))
    ops = [n.OP for n in g]
    for op in ("axon.delta", "synapse.conv", "neuron.sigma_delta", "neuron.rf_iz", "axon.delay",
               "tensor.flatten", "neuron.alif", "synapse.dense", "tensor.add", "neuron.cuba",
               "synapse.kwta", "axon.shift", "tensor.quantize"):
        assert op in ops, op
    conv = g["blocks_3_synapse"]
    assert conv.weight_imag is not None and g.param(conv.weight).shape == (64, 36, 3, 3)
    # every node knows where it came from
    rf = g["blocks_3_neuron"]
    assert rf.loc.module == "blocks.3.neuron"
    assert rf.loc.file == str(EXAMPLES) and rf.loc.line is not None


def test_effective_parameters_are_recorded() -> None:
    torch.manual_seed(1)
    block = slayer.block.cuba.Dense({"threshold": 1.0, "current_decay": 0.1234,
                                     "voltage_decay": 0.05}, 6, 4, weight_norm=True,
                                    weight_scale=3)
    model = torch.nn.Sequential(block)
    g = trace(model, torch.zeros(1, 6, 5))
    w = g.param(g["n0_synapse"].weight)
    assert np.array_equal(w * 32, np.round(w * 32))  # on the 8-bit grid (step 2/64)
    assert np.allclose(w, block.synapse.effective_weight(fresh=True)[..., 0, 0, 0].detach(), 0)
    assert g["n0_neuron"].current_decay == round(0.1234 * 4096) / 4096
    assert "weight_g" in dict(block.synapse.named_parameters())  # weight norm untouched


@pytest.mark.parametrize("case", refcases.CASES)
def test_reference_cases_trace_to_slayer_output(case: str) -> None:
    net, _ = refcases.build(case)
    arch = refcases.load_arch(case)
    it = None
    for fw in arch["forwards"]:
        x = torch.tensor(np.load(DATA / fw["input"]))[None]
        it = it or Interpreter(trace(net, x))
        y = it(x)[0].numpy()
        np.testing.assert_array_equal(y, np.load(DATA / fw["output"]))


# ------------------------------------------------------------------------- random stacks

NEURON = {"threshold": 0.5, "current_decay": 0.2, "voltage_decay": 0.1}


@st.composite
def stacks(draw: st.DrawFn):
    """Random cuba conv/pool/dense stacks with random flags."""
    c, h = draw(st.integers(1, 3)), draw(st.integers(4, 9))
    layers, shape = [], (c, h, h)
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            out = draw(st.integers(1, 4))
            layers.append(slayer.block.cuba.Conv(NEURON, shape[0], out, 3, padding=1,
                                                 weight_scale=3, delay=draw(st.booleans())))
            shape = (out, shape[1], shape[2])
        elif shape[1] >= 2:
            layers.append(slayer.block.cuba.Pool(NEURON, 2))
            shape = (shape[0], (shape[1] + 1) // 2, (shape[2] + 1) // 2)
    layers.append(slayer.block.cuba.Flatten())
    n = int(np.prod(shape))
    for _ in range(draw(st.integers(1, 3))):
        out = draw(st.integers(1, 12))
        layers.append(slayer.block.cuba.Dense(
            {**NEURON, "graded_spike": draw(st.booleans())}, n, out, weight_scale=4,
            delay=draw(st.booleans()), delay_shift=draw(st.booleans())))
        n = out
    if draw(st.booleans()):
        layers.append(slayer.block.cuba.Recurrent(NEURON, n, draw(st.integers(2, 6)),
                                                  weight_scale=2))
    return torch.nn.Sequential(*layers), (c, h, h), draw(st.integers(0, 10**6))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stacks())
def test_random_stacks_interpret_exactly(spec) -> None:
    model, shape, seed = spec
    torch.manual_seed(seed)
    for block in model:
        if getattr(block, "delay", None) is not None:
            block.delay.delay.data = torch.rand_like(block.delay.delay) * 4
    x = _input((2, *shape, 12), False, seed)
    eager = copy.deepcopy(model)
    got = interpret(trace(model, x), x)
    with torch.no_grad():
        assert torch.equal(got, eager(x))


# -------------------------------------------------------------------------------- errors


class DataDependent(torch.nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow
            return x
        return -x


class Sorting(torch.nn.Module):
    def forward(self, x):
        return torch.sort(x, dim=1).values


class Unknown(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(4, 4)

    def forward(self, x):
        return self.rnn(x)[0]


def _line_of(cls: type, text: str) -> int:
    import inspect

    lines, start = inspect.getsourcelines(cls)
    return start + next(i for i, ln in enumerate(lines) if text in ln)


@pytest.mark.parametrize("cls, text, words", [
    (DataDependent, "if x.sum() > 0", "Data-dependent control flow"),
    (Sorting, "torch.sort", "unsupported operation 'sort'"),
    (Unknown, "self.rnn(x)", "unsupported module torch.nn.modules.rnn.GRU"),
])
def test_unsupported_code_gives_one_line_error(cls, text: str, words: str) -> None:
    with pytest.raises(FrontendError) as info:
        trace(cls(), torch.zeros(1, 4, 5))
    msg = str(info.value)
    assert "\n" not in msg
    assert words in msg
    assert f"{__file__}:{_line_of(cls, text)}" in msg


def test_bad_example_input_and_layout_errors() -> None:
    with pytest.raises(FrontendError, match="example input must be a tensor"):
        trace(torch.nn.Identity(), torch.zeros(4, 5))

    class LinearOnTime(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(5, 3)

        def forward(self, x):
            return self.fc(x)  # acts on time: needs x.transpose(1, 2)

    with pytest.raises(FrontendError, match=r"nn.Linear needs its input in layout \[N, T, C\]"):
        trace(LinearOnTime(), torch.zeros(1, 4, 5))

    class TrainingBN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = torch.nn.BatchNorm1d(4)

        def forward(self, x):
            return self.bn(x)

    with pytest.raises(FrontendError, match="call model.eval"):
        trace(TrainingBN(), torch.zeros(2, 4, 5))


def test_public_api() -> None:
    model = models.RecurrentKWTA()
    g = slayerc.compile(model, torch.zeros(1, 20, 8), pipeline="shape-infer")
    assert isinstance(g, slayerc.Graph) and "shapes" in g.facts
    with pytest.raises(FrontendError, match="unknown backend"):
        slayerc.compile(model, torch.zeros(1, 20, 8), backend="tpu")
