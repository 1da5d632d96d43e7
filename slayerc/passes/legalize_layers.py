"""``legalize-layers``: give every layer the timing and bias placement a netlist layer has.

A netx layer is ``synapse → neuron`` whose synapse holds its input for one step (Lava's
``Dense``/``Conv``), with the bias on the neuron's voltage (``bias_mant``), integrated from step
0 (spec §7).  Traced models need not look like that:

* a plain torch model feeding slayer neurons has no step per layer at all (``conv → cuba``);
* slayer blocks put their step after the neuron (``delay_shift``), so a block's bias and its
  first input arrive together, where Lava integrates the bias one step before the input;
* a synapse bias (what ``fold-batchnorm`` leaves of a BatchNorm) has no netlist key.

The pass rewrites the graph into Lava's form and says what that costs:

1. **Synapse bias → neuron bias.**  A bias ``b`` on the synapse feeding a ``neuron.cuba``/
   ``neuron.alif`` (directly or through a recurrent ``tensor.add``) adds ``b`` to the current
   every step.  An ALIF neuron adds its own bias to its input too (where slayer applies its
   norm), so there ``b`` moves exactly; so it does for a CUBA neuron with ``current_decay`` 1
   (the current is the input itself).  Otherwise it becomes ``b/αu``, the current's steady
   state share of the bias, which the float model only reaches after a few ``1/αu`` steps: a
   warning naming the node (a :class:`PassError` with ``exact=true``).  With ``current_decay``
   0 (the bias grows without bound) or any other consumer the bias stays, with a warning (the
   writer refuses it; a ``.sir`` keeps it).
2. **One step per synapse, in Lava's form.**  When a layer of the main chain has no step of its
   own (fewer one-step ``axon.shift`` nodes than synapses), or a biased layer is not already in
   Lava's form, every one-step ``axon.shift`` between layers is removed and one is put right
   before each synapse.  A node's *latency* is how many more shifts lie upstream of it than
   before; the output's latency is what a user of the netlist sees (the netlist's output at
   step ``t + latency`` is the model's at ``t``), and the report gives it per neuron and output
   (``Report.values``: ``NAME.latency``).  Without biases this is exact up to the latency (a
   neuron at rest stays at rest).  A biased neuron whose latency is not 0 integrates its bias
   that many steps before its first input arrives (Lava's bias head-start): a warning naming
   it (a :class:`PassError` with ``exact=true``); ``slayerc compile --quant-report`` measures
   the effect.  Networks of slayer blocks behind an ``Input`` block keep latency 0 on every
   neuron, so their biases stay exact.

Chains with sigma-delta layers are stored without a step, as lava-dl does, unless a sigma-delta
neuron has a bias (a trained mean-only norm): such a chain is put in Lava's form like any other,
with the same head-start warning (a sigma-delta network settles to the same values on a static
input; only the first steps differ).  Graphs that are not one chain are left as they are; a
chain that needs new steps but carries axonal delays, persistent (streaming) or multi-step
shifts is left too, with a warning (moving those is not exact).  A KWTA's lateral input carries
a bias (``q(b)``) and counts as one.

Before (a torch Conv2d + BatchNorm2d, folded, feeding a cuba neuron)::

    %conv1 = synapse.conv(%x) {bias = @conv1.bias, weight = @conv1.weight} : f32[8, 16, 16]
    %lif1 = neuron.cuba(%conv1) {current_decay = 1.0, ...} : f32[8, 16, 16]
After::

    %conv1_hold = axon.shift(%x) : f32[2, 16, 16]
    %conv1 = synapse.conv(%conv1_hold) {weight = @conv1.weight} : f32[8, 16, 16]
    %lif1 = neuron.cuba(%conv1) {bias = @lif1.bias, current_decay = 1.0, ...} : f32[8, 16, 16]

Requires ``shapes``; establishes ``layers-legal`` (not when it leaves a chain as it was);
invalidates ``quant-legal`` (new biases).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slayerc.errors import PassError
from slayerc.ir import ops
from slayerc.ir.core import Graph, Op, ParamRef
from slayerc.passes.report import Note, Report, note, warning
from slayerc.passes.rewrite import Rewriter, channel_view

NAME = "legalize-layers"
SUMMARY = "one step per synapse in Lava's form; synapse biases onto the neuron"
REQUIRES = frozenset({"shapes"})
ESTABLISHES = frozenset({"layers-legal"})
INVALIDATES = frozenset({"quant-legal"})

#: Neurons whose current integrates a synapse bias: ``u[t] = (1 − αu) u[t−1] + x[t] + b``.
CURRENT_NEURONS = frozenset({"neuron.cuba", "neuron.alif"})
#: ... of which these add their own bias to the input too (slayer's ALIF norm): always exact.
INPUT_BIAS = frozenset({"neuron.alif"})
SDNN = frozenset({"neuron.sigma_delta", "axon.delta", "dendrite.sigma"})


@dataclass(frozen=True)
class Options:
    """``exact``: refuse (instead of warn about) the two changes that are not exact."""

    exact: bool = False


def run(g: Graph, opts: Options = Options()) -> Graph:
    """Return ``g`` in netlist layer form (see the module docstring)."""
    return run_with_report(g, opts)[0]


def run_with_report(g: Graph, opts: Options = Options()) -> tuple[Graph, Report]:
    """:func:`run`, plus notes, warnings and the latency of every neuron and output."""
    rw, notes, values = Rewriter(g), [], {}
    legal = True
    for node in list(g):
        if node.OP in ops.SYNAPSE_OPS and getattr(node, "bias", None) is not None:
            legal &= _bias_to_neuron(rw, rw.nodes[node.name], opts, notes)
    legal &= _timing(rw, opts, notes, values)
    return (rw.finish(ESTABLISHES if legal else (), INVALIDATES),
            Report(NAME, tuple(notes), values))


# ----------------------------------------------------------------------- synapse bias


def _current_neuron(rw: Rewriter, syn: Op) -> Op | None:
    """The neuron whose current ``syn``'s output adds to (directly or through tensor.add)."""
    user = rw.only_user(syn.name)
    if user is not None and user.OP == "tensor.add":
        user = rw.only_user(user.name)
    return user if user is not None and user.OP in CURRENT_NEURONS else None


def _bias_to_neuron(rw: Rewriter, syn: Op, opts: Options, notes: list[Note]) -> bool:
    """Move ``syn``'s bias onto its neuron; False (with a warning) when it cannot move."""
    neuron = _current_neuron(rw, syn)
    if neuron is None:
        users = ", ".join(u.describe() for u in rw.users(syn.name)) or "nothing"
        notes.append(warning(f"{syn.describe()}: kept its bias: it feeds {users}, not one "
                             "neuron.cuba/neuron.alif it could move to, and a netlist has no "
                             "synapse bias (the writer will refuse it); remove the bias or add "
                             "a neuron"))
        return False
    b = np.asarray(rw.array(syn.bias), dtype=np.float64)  # type: ignore[attr-defined]
    decay = neuron.current_decay  # type: ignore[attr-defined]
    du = np.asarray(rw.params[decay.name] if isinstance(decay, ParamRef) else decay,
                    dtype=np.float64)
    if neuron.OP in INPUT_BIAS:  # its bias is added to the input, where the synapse's was
        du = np.ones_like(du)
    if np.any(du <= 0):
        notes.append(warning(f"{neuron.describe()}: kept the bias of {syn.describe()} on the "
                             "synapse: with current_decay 0 the current integrates it without "
                             "bound, which no neuron bias can express (the writer will refuse "
                             "it); use a current decay above 0 or a synapse without bias"))
        return False
    beta = channel_view(b, max(du.ndim, 1)) / du if du.ndim else b / float(du)
    if np.all(du == 1.0):
        why = "ALIF adds it to the input" if neuron.OP in INPUT_BIAS else "current_decay 1"
        notes.append(note(f"moved the bias of {syn.describe()} onto {neuron.describe()} "
                          f"({why}: exact)"))
    else:
        text = (f"{neuron.describe()}: the bias of {syn.describe()} became the neuron bias "
                f"b/current_decay (its steady state); the float model's current reaches it "
                f"only after about {_settle(du)} steps, so early steps may differ (exact only "
                "with current_decay 1)")
        if opts.exact:
            raise PassError(text + "; exact=true forbids this")
        notes.append(warning(text))
    _add_bias(rw, neuron, beta)
    rw.nodes[syn.name] = syn.replace(bias=None)
    return True


def _settle(du: np.ndarray) -> int:
    """Steps until ``(1 − αu)^t`` falls under 1 % for the slowest current."""
    keep = float(np.max(1.0 - du))
    return 1 if keep <= 0 else int(np.ceil(np.log(0.01) / np.log(keep)))


def _add_bias(rw: Rewriter, neuron: Op, beta: np.ndarray) -> None:
    """``neuron.bias += beta`` (``beta`` per channel or per neuron), stored compactly."""
    shape = tuple(neuron.shape or ())
    old = neuron.bias  # type: ignore[attr-defined]
    base = np.asarray(rw.params[old.name] if isinstance(old, ParamRef) else (old or 0.0))
    ndim = max(len(shape), 1)
    parts = [a if a.ndim in (0, ndim) else channel_view(a, ndim) for a in (base, beta)]
    total = parts[0] + parts[1]
    if total.ndim > 1 and np.all(total == total.reshape(total.shape[0], -1)[:, :1].reshape(
            (total.shape[0],) + (1,) * (total.ndim - 1))):
        total = total.reshape(total.shape[0], -1)[:, 0]  # one value per channel
    dtype = np.float64 if isinstance(old, ParamRef) and base.dtype == np.float64 else np.float32
    ref = rw.put(old if isinstance(old, ParamRef) else None, f"{neuron.name}.bias",
                 total.astype(dtype))
    rw.nodes[neuron.name] = neuron.replace(bias=ref)


# ---------------------------------------------------------------------------- timing


def _chain(g: Graph) -> list[Op] | None:
    """io.input, the forward path, io.output; None when the graph is not one chain."""
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        return None
    order = {name: i for i, name in enumerate(g.nodes)}
    forward: dict[str, list[Op]] = {}
    for user in g:
        for src in dict.fromkeys(user.inputs):
            if order[user.name] > order[src]:
                forward.setdefault(src, []).append(user)
    node, chain = g.inputs[0], [g.inputs[0]]
    while node.OP != "io.output":
        users = forward.get(node.name, [])
        if len(users) != 1:
            return None
        node = users[0]
        chain.append(node)
    return chain


def _movable(node: Op) -> bool:
    return node.OP == "axon.shift" and node.steps == 1 and not node.persistent  # type: ignore


def _depths(chain: list[Op]) -> dict[str, int]:
    """Per chain node: the one-step shifts before it on the chain."""
    depth, out = 0, {}
    for node in chain:
        out[node.name] = depth
        depth += _movable(node)
    return out


def _biased(g: Graph, node: Op) -> bool:
    """A neuron with a bias, or fed a KWTA's lateral input (which carries ``q(b)``)."""
    if node.OP not in ops.NEURON_OPS:
        return False
    bias = getattr(node, "bias", None)
    src = g.nodes.get(node.inputs[0]) if node.inputs else None
    lateral = src is not None and src.OP == "tensor.add" and any(
        g[i].OP == "synapse.kwta" for i in src.inputs)
    return lateral or (bias is not None and bool(np.any(g.value(bias))))


def _timing(rw: Rewriter, opts: Options, notes: list[Note], values: dict[str, float]) -> bool:
    """Put the main chain in Lava's form if needed; False when it had to be left as it is."""
    g = rw.graph()
    chain = _chain(g)
    if chain is None:
        return True  # not a netlist chain: the writer judges
    syns = [n for n in chain if n.OP in ops.SYNAPSE_OPS]
    steps = [n for n in chain if n.OP == "axon.shift" and n.steps == 1]  # type: ignore[attr-defined]
    lava_form = all(_lead_shift(g, s) is not None for s in syns) and len(steps) == len(syns)
    biased = [n for n in chain if _biased(g, n)]
    if any(n.OP in SDNN for n in chain) and not biased:
        return True  # sigma-delta: stored without steps, as lava-dl does
    if not syns or lava_form or (len(steps) >= len(syns) and not biased):
        return True
    fixed = [n for n in chain if n.OP == "axon.delay" or (n.OP == "axon.shift" and not _movable(n))]
    if fixed:
        notes.append(warning(f"{fixed[0].describe()}: left the layer timing as it is: a layer "
                             "lacks its one-step hold or a biased layer is not in Lava's form, "
                             "and moving it (an axonal delay, a persistent or multi-step shift) "
                             "is not supported; the netlist writer will name the layer"))
        return False
    shifts = [n for n in chain if _movable(n)]
    before = _depths(chain)
    _reshift(rw, shifts, syns)
    after_chain = _chain(rw.graph())
    assert after_chain is not None  # only shifts moved
    after = _depths(after_chain)
    for node in (n for n in chain if n.name in after):
        lat = after[node.name] - before[node.name]
        if node.OP in ops.NEURON_OPS or node.OP == "io.output":
            values[f"{node.name}.latency"] = float(lat)
        if lat and node in biased:
            _head_start(node, lat, opts, notes)
    out = chain[-1]
    lat = after[out.name] - before[out.name]
    notes.append(note(f"one step per synapse in Lava's form ({len(syns)} synapses); the output "
                      f"{out.describe()} is {_steps(lat)} the model's (netlist step t + {lat} "
                      "= model step t)"))
    return True


def _reshift(rw: Rewriter, shifts: list[Op], syns: list[Op]) -> None:
    """Remove the chain's one-step shifts and put one right before every synapse."""
    for shift in shifts:
        rw.bypass(shift.name)
    for syn in syns:
        src = rw.nodes[rw.nodes[syn.name].inputs[0]]
        rw.insert_before(syn.name, ops.Shift(name=rw.fresh_name(f"{syn.name}_hold"),
                                             inputs=(src.name,), shape=src.shape,
                                             dtype=src.dtype, loc=syn.loc))


def _head_start(node: Op, lat: int, opts: Options, notes: list[Note]) -> None:
    text = (f"{node.describe()}: bias head-start: in the netlist its bias acts from step 0 "
            f"but its input now arrives {lat} step(s) later than in the model (Lava holds "
            "every synapse's input one step, spec §7), so its first outputs can differ from "
            "the model's; exact for slayer blocks behind an Input block or without biases")
    if opts.exact:
        raise PassError(text + "; exact=true forbids this")
    notes.append(warning(text))


def _steps(lat: int) -> str:
    if lat == 0:
        return "in step with"
    return f"{abs(lat)} step(s) {'later than' if lat > 0 else 'earlier than'}"


def _lead_shift(g: Graph, syn: Op) -> Op | None:
    src = g.nodes.get(syn.inputs[0]) if syn.inputs else None
    one = src is not None and src.OP == "axon.shift" and src.steps == 1  # type: ignore[attr-defined]
    return src if one else None
