"""Tracing the sigma-delta YOLO models: ``ir_forward`` (the chip part) traces to the IR, the
interpreter reproduces the eager heads, yolo_kp compiles to a loihi2 netlist; and the two
tracer features this needed (sigma-delta neurons with a mean-only norm, defaulted forward
arguments such as ``sparsity_monitor=None``) on small models."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import slayerc
import slayerc.slayer as slayer
from slayerc.frontend.slayer.obd.models._common import normalize
from slayerc.frontend.trace import trace
from slayerc.runtime.interpreter import interpret


def _settle_norms(net: torch.nn.Module, x: torch.Tensor) -> None:
    """One train-mode forward: the mean-only norms' running means become non-zero."""
    net.train()
    with torch.no_grad():
        net(x)
    net.eval()


def _trained_norms(net: torch.nn.Module, seed: int = 0) -> None:
    """Running means as training leaves them (one train forward moves them by a tenth)."""
    gen = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, slayer.neuron.norm.MeanOnlyBatchNorm):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) * 0.2 - 0.1)
    net.eval()


def _sdnn_norm_params():
    return {"threshold": 0.05, "tau_grad": 0.1, "scale_grad": 0.1, "requires_grad": False,
            "shared_param": True, "activation": F.relu,
            "norm": slayer.neuron.norm.MeanOnlyBatchNorm}


def test_sigma_delta_conv_with_mean_only_norm_traces_to_a_neuron_bias():
    torch.manual_seed(0)
    params = _sdnn_norm_params()
    net = torch.nn.Sequential(
        slayer.block.sigma_delta.Input({k: v for k, v in params.items() if k != "norm"}),
        slayer.block.sigma_delta.Conv(params, 2, 4, 3, padding=1, weight_scale=2))
    x = torch.rand(3, 2, 6, 6, 5)
    _settle_norms(net, x + 0.5)
    norm = net[1].neuron.norm
    assert float(norm.running_mean.abs().max()) > 0
    g = trace(net, x)
    neuron = next(n for n in g if n.OP == "neuron.sigma_delta")
    bias = g.params[neuron.bias.name]
    np.testing.assert_allclose(bias, -norm.pre_hook_fx(norm.running_mean).numpy(), atol=1e-7)
    with torch.no_grad():
        ref = net(x)
    np.testing.assert_allclose(interpret(g, x).numpy(), ref.numpy(), atol=1e-5)


def test_a_zero_norm_shift_is_no_bias():
    net = torch.nn.Sequential(slayer.block.sigma_delta.Dense(_sdnn_norm_params(), 4, 3)).eval()
    g = trace(net, torch.rand(1, 4, 3))
    assert next(n for n in g if n.OP == "neuron.sigma_delta").bias is None


class _Monitored(torch.nn.Module):
    """A model whose forward has a defaulted extra argument, as the YOLO models do."""

    def __init__(self):
        super().__init__()
        params = {"threshold": 0.5, "current_decay": 0.5, "voltage_decay": 0.5}
        self.block = slayer.block.cuba.Dense(params, 4, 3)

    def forward(self, x, monitor=None, scale=1):
        y = self.block(x)
        if monitor is not None:
            monitor.append(y)
        return y * scale


def test_defaulted_forward_arguments_are_traced_as_their_defaults():
    torch.manual_seed(1)
    net = _Monitored()
    x = (torch.rand(2, 4, 8) < 0.5).float()
    g = trace(net, x)
    assert [n.OP for n in g if n.OP == "io.input"] == ["io.input"]  # the input alone
    with torch.no_grad():
        np.testing.assert_array_equal(interpret(g, x).numpy(), net(x).numpy())


def test_tiny_yolo_chip_part_traces_and_matches_the_eager_heads():
    torch.manual_seed(0)
    net = slayer.obd.models.tiny_yolov3_str.Network(num_classes=2)
    x = torch.rand(1, 3, 64, 64, 3)
    _settle_norms(net, torch.rand(1, 3, 64, 64, 2))  # sizes lazily sized norms
    _trained_norms(net)
    g = slayerc.compile(net, x, pipeline="")  # traces ir_forward: frames → both Sigma heads
    assert sum(n.OP == "neuron.sigma_delta" and n.bias is not None for n in g) >= 10
    outs = interpret(g, x)
    with torch.no_grad():
        head1, head2 = net.ir_forward(x)
    got = sorted(outs.values(), key=lambda t: t.shape[2])  # 2x2 head first, then 4x4
    assert got[0].shape == head1.shape == (1, 21, 2, 2, 3)
    assert got[1].shape == head2.shape == (1, 21, 4, 4, 3)
    np.testing.assert_allclose(got[0].numpy(), head1.numpy(), atol=1e-4)
    np.testing.assert_allclose(got[1].numpy(), head2.numpy(), atol=1e-4)
    # the host parts around it: forward = normalise, ir_forward, decode the boxes
    with torch.no_grad():
        boxes, _ = net(x)
        heads = net.ir_forward(normalize(net, x))
        decoded = torch.cat([net.yolo(net.yolo_raw(h), a) for h, a in zip(heads, net.anchors)],
                            dim=1)
    assert boxes.shape == (1, 3 * 4 + 3 * 16, 7, 3)
    torch.testing.assert_close(boxes, decoded)


def test_yolo_kp_compiles_for_loihi2(tmp_path):
    torch.manual_seed(0)
    net = slayer.obd.models.yolo_kp.Network(num_classes=2).eval()
    x = torch.rand(1, 3, 64, 64, 3)
    g = slayerc.compile(net, x, output=tmp_path / "yolo_kp.net")
    assert (tmp_path / "yolo_kp.net").stat().st_size > 0
    assert "layers-legal" in g.facts and "quant-legal" in g.facts
    back = slayerc.load(tmp_path / "yolo_kp.net")
    convs = [n for n in back if n.OP == "synapse.conv"]
    assert len(convs) == 10  # nine conv blocks and the 1x1 head conv


def test_yolo_kp_with_trained_norms_compiles_in_lavas_form(tmp_path):
    """Trained mean-only norms are sigma-delta neuron biases: legalize-layers puts the chain in
    Lava's form (one step before each synapse) and warns of each bias head-start; netx + Lava
    run the netlist exactly as slayerc (tools/lavaref_check.py, 'compile obd yolo_kp')."""
    from slayerc.driver import compile_model

    torch.manual_seed(0)
    net = slayer.obd.models.yolo_kp.Network(num_classes=2)
    _settle_norms(net, torch.rand(1, 3, 32, 32, 2))
    _trained_norms(net)
    out = tmp_path / "k.net"
    done = compile_model(net, torch.rand(1, 3, 32, 32, 2), output=out)
    g = done.graph
    syns = [n for n in g if n.OP == "synapse.conv"]
    biased = [n for n in g if n.OP == "neuron.sigma_delta" and n.bias is not None]
    assert len(syns) == 10 and len(biased) == 9
    assert all(g[s.inputs[0]].OP == "axon.shift" for s in syns)  # Lava's form
    assert done.output_latency == len(syns)
    warned = [ln for r in done.passes.reports for ln in r.lines(warnings_only=True)
              if "bias head-start" in ln]
    assert sorted(w.split("%")[1].split(" ")[0] for w in warned) == sorted(
        n.name for n in biased)
    back = slayerc.load(out)
    assert sum(n.OP == "neuron.sigma_delta" and n.bias is not None for n in back) == 9


def test_sdnn_chain_without_biases_keeps_lava_dls_stepless_form(tmp_path):
    torch.manual_seed(0)
    net = slayer.obd.models.yolo_kp.Network(num_classes=2).eval()  # zero norms: no bias
    g = slayerc.compile(net, torch.rand(1, 3, 32, 32, 2))
    assert not any(n.OP == "axon.shift" for n in g)


def test_yolo_kp_trains_two_steps_then_compiles_for_loihi2_and_runs(tmp_path):
    """The whole obd story on lava-dl's YOLO-KP SDNN: train two steps on synthetic boxes (the
    norms' running means move: sigma-delta biases), trace the chip part, compile a loihi2
    netlist, run it in fixed point."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_obd import _synthetic_batch

    from slayerc.driver import compile_model, run_netlist

    torch.manual_seed(0)
    net = slayer.obd.models.yolo_kp.Network(num_classes=2)
    net.init_model((64, 64, 3))
    target = slayer.obd.YOLOtarget(net.anchors, net.scale, num_classes=2)
    frames, targets, _ = target.collate_fn(_synthetic_batch(2, 2, 64,
                                                            torch.Generator().manual_seed(1)))
    criterion = slayer.obd.YOLOLoss(net.anchors)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)
    for _ in range(2):
        net.train()
        output, _ = net(frames)
        loss, _ = criterion(output, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    norms = [m for m in net.modules() if isinstance(m, slayer.neuron.norm.MeanOnlyBatchNorm)]
    assert norms and all(float(m.running_mean.abs().max()) > 0 for m in norms)
    net.eval()
    done = compile_model(net, frames[:1], output=tmp_path / "kp.net")
    assert {"layers-legal", "quant-legal"} <= done.graph.facts
    steps = done.output_latency + 6  # the first frame held until the output has settled
    x = normalize(net, frames[:1])[0, ..., :1].repeat(1, 1, 1, steps).numpy()
    out = run_netlist(tmp_path / "kp.net", x, input_shape=tuple(x.shape[:-1]))
    assert out.shape[-1] == steps and np.count_nonzero(out[..., -1]) > 0
