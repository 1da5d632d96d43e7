"""Pictures of what a network is and does: its layer graph, spike rasters, quantization charts.

* :func:`graph_picture` ``(graph, path)``: the layer graph of an IR graph, one box per node (name,
  op, shape, neuron count), axonal delays (``axon.delay``/``axon.shift``) drawn as labelled edges
  (``d=1``, ``d=0..3``), recurrent edges as red arcs on the side; the figure grows with the
  number of layers, so a 50-layer net stays readable (zoom the SVG);
* :func:`raster_picture` ``(spikes_by_layer, path)``: one panel per layer, a spike raster
  (neuron index over time) for binary outputs and a heat map for graded ones;
* :func:`quant_picture` ``(report, path)``: a :class:`~slayerc.runtime.agreement.QuantReport`
  as two bar charts, the weight error per synapse and the spike agreement per neuron layer.

The file type follows the suffix (``.png`` or ``.svg``; SVG keeps text as ``<text>`` elements).
matplotlib is optional (``pip install 'slayerc[plot]'``) and imported only when drawing.  Files
are written atomically (no half pictures).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from slayerc.errors import SlayerError
from slayerc.ir.core import Graph, ParamRef
from slayerc.ir.summary import neurons

SUFFIXES = (".png", ".svg")
DELAY_OPS = ("axon.delay", "axon.shift")
MAX_RASTER_NEURONS = 4096
RAD = 0.5  # bend of a recurrent edge (arc3: upward edges bulge to the right)


def _pyplot() -> Any:
    """matplotlib's pyplot on the non-interactive Agg backend, or a clear error."""
    try:
        import matplotlib
    except ImportError:
        raise SlayerError("drawing pictures needs matplotlib: pip install 'slayerc[plot]'"
                          ) from None
    matplotlib.use("Agg", force=False)
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, countable
    import matplotlib.pyplot as plt

    return plt


def _check_path(path: str | os.PathLike) -> str:
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in SUFFIXES:
        raise SlayerError(f"{path}: pictures are written as .png or .svg (by suffix), got "
                          f"{suffix or 'no suffix'!r}")
    return suffix[1:]


def _save(fig: Any, path: str | os.PathLike, dpi: int = 100) -> None:
    """Write ``fig`` to ``path`` atomically (``ir.fileio.atomic_write``), then close it."""
    from slayerc.ir.fileio import atomic_write

    fmt = _check_path(path)
    metadata = {"Date": None} if fmt == "svg" else None  # same picture, same bytes
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi,
                                                   bbox_inches="tight", metadata=metadata))
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


# ---------------------------------------------------------------------------------- the graph


def _delay_label(g: Graph, node: Any) -> str:
    """``d=N`` or ``d=lo..hi`` for a delaying node."""
    value = getattr(node, "delay", None) if node.OP == "axon.delay" else node.steps
    if isinstance(value, ParamRef):
        arr = g.params.get(value.name)
        if arr is None or not arr.size:
            return "d=?"
        lo, hi = int(arr.min()), int(arr.max())
        return f"d={lo}" if lo == hi else f"d={lo}..{hi}"
    return f"d={int(value)}"


def layer_edges(g: Graph) -> tuple[list[str], list[tuple[str, str, str]]]:
    """The boxes (every node but the delays) and the edges ``(src, dst, label)`` between them,
    a chain of delays folded into one edge labelled with its delays."""
    boxes = [n.name for n in g if n.OP not in DELAY_OPS]

    def sources(name: str, labels: tuple[str, ...], seen: frozenset) -> list[tuple[str, str]]:
        node = g[name]
        if node.OP not in DELAY_OPS:
            return [(name, " + ".join(labels))]
        if name in seen:  # a cycle of delays only: nothing to draw
            return []
        out = []
        for src in node.inputs:
            out += sources(src, (_delay_label(g, node), *labels), seen | {name})
        return out
    edges = []
    for name in boxes:
        for src in g[name].inputs:
            edges += [(s, name, label) for s, label in sources(src, (), frozenset())]
    return boxes, edges


def _ranks(boxes: list[str], edges: list[tuple[str, str, str]]) -> dict[str, int]:
    """Longest-path rank of each box over the forward edges (back edges are recurrent)."""
    index = {b: i for i, b in enumerate(boxes)}
    rank = {b: 0 for b in boxes}
    forward = sorted((index[s], index[d]) for s, d, _ in edges if index[s] < index[d])
    for s, d in sorted(forward, key=lambda e: e[1]):
        rank[boxes[d]] = max(rank[boxes[d]], rank[boxes[s]] + 1)
    fed = {d for _, d in forward}
    for s, d in sorted(forward, reverse=True):  # a synapse fed only by a recurrent edge sits
        if s not in fed and any(e[1] == boxes[s] for e in edges if index[e[0]] >= index[e[1]]):
            rank[boxes[s]] = max(0, rank[boxes[d]] - 1)  # just above its consumer
    return rank


def _box_text(g: Graph, name: str) -> str:
    node = g[name]
    shape = "?" if node.shape is None else "×".join(map(str, node.shape))
    n = neurons(node)
    extra = f"  {n} neurons" if n else ""
    return f"%{name}\n{node.OP}  [{shape}]{extra}"


def graph_picture(g: Graph, path: str | os.PathLike, title: str | None = None) -> int:
    """Draw the layer graph of ``g`` to ``path`` (``.png``/``.svg``); return the box count.

    One box per node (delays become edge labels), ranked top to bottom by the longest forward
    path; boxes of one rank sit side by side.  Recurrent (backward) edges are red arcs.
    """
    _check_path(path)
    plt = _pyplot()
    boxes, edges = layer_edges(g)
    rank = _ranks(boxes, edges)
    rows: dict[int, list[str]] = {}
    for b in boxes:
        rows.setdefault(rank[b], []).append(b)
    width = max(len(r) for r in rows.values())
    pos = {b: (i - (len(r) - 1) / 2, -k) for k, r in rows.items() for i, b in enumerate(r)}
    fig, ax = plt.subplots(figsize=(3.2 * width + 2.5, 0.9 * len(rows) + 0.8))
    index = {b: i for i, b in enumerate(boxes)}
    for src, dst, label in edges:
        _edge(ax, pos[src], pos[dst], label, back=index[src] >= index[dst])
    for b in boxes:
        color = "#dbe9f6" if neurons(g[b]) else "#f2f2f2"
        ax.text(*pos[b], _box_text(g, b), ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round,pad=0.3", "fc": color, "ec": "#4a6fa5"}, zorder=3)
    ax.set_xlim(-width / 2 - 0.3, width / 2 + 0.6)
    ax.set_ylim(-len(rows) + 0.4, 0.6)
    ax.axis("off")
    ax.set_title(title or f"{g.name}: {len(boxes)} layers", fontsize=10)
    _save(fig, path)
    return len(boxes)


def _edge(ax: Any, a: tuple[float, float], b: tuple[float, float], label: str,
          back: bool) -> None:
    """An arrow from box ``a`` to box ``b`` (a red arc on the right when it goes back)."""
    style = {"arrowstyle": "-|>", "color": "#c0392b" if back else "#555555", "lw": 1.0,
             "shrinkA": 14, "shrinkB": 14,
             "connectionstyle": f"arc3,rad={RAD if back else 0}"}
    ax.annotate("", xy=b, xytext=a, arrowprops=style, zorder=1)
    if label:
        # the middle of the arc: half way from the chord's middle to arc3's control point
        dx, dy = b[0] - a[0], b[1] - a[1]
        bend = RAD / 2 if back else 0.0
        mid = ((a[0] + b[0]) / 2 + bend * dy + 0.06, (a[1] + b[1]) / 2 - bend * dx)
        ax.text(*mid, label, fontsize=7, color=style["color"], ha="left", va="center",
                zorder=2)


# ------------------------------------------------------------------------------------- rasters


def _one_sample(x: Any) -> np.ndarray:
    """``[C(,H,W), T]`` of sample 0 flattened to ``[neurons, T]`` (a batch axis is taken as the
    first when there are more than two axes and the array was given batched)."""
    a = np.asarray(x)
    if a.ndim < 1:
        raise SlayerError(f"a raster needs an array [..., T], got a scalar {a!r}")
    if a.ndim == 1:
        return a[None, :]
    return a.reshape(-1, a.shape[-1])


def raster_picture(spikes_by_layer: Mapping[str, Any], path: str | os.PathLike,
                   title: str | None = None) -> int:
    """Draw one panel per layer of ``spikes_by_layer`` (name → ``[C(,H,W), T]``, one sample,
    time last) to ``path``; return the panel count.

    Binary outputs (only 0 and 1) are rasters (a dot per spike, neuron index over time step);
    graded outputs (messages, values) are heat maps.  Layers above 4096 neurons show their
    first 4096.
    """
    _check_path(path)
    if not spikes_by_layer:
        raise SlayerError("raster_picture needs at least one layer")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    n = len(spikes_by_layer)
    fig, axes = plt.subplots(n, 1, figsize=(9, 1.2 + 1.6 * n), squeeze=False, sharex=True)
    for ax, (name, x) in zip(axes[:, 0], spikes_by_layer.items()):
        a = _one_sample(x)[:MAX_RASTER_NEURONS]
        binary = bool(np.isin(a, (0, 1)).all())
        if binary:
            nz, t = np.nonzero(a)
            size = float(np.clip(2000 / max(a.shape[0], 1), 2, 40))
            ax.scatter(t, nz, s=size, marker="|", color="black", linewidths=0.8)
            ax.set_ylim(-0.5, a.shape[0] - 0.5)
            kind = f"{int(a.sum())} spikes"
        else:
            im = ax.imshow(a.astype(float), aspect="auto", interpolation="nearest",
                           cmap="viridis", origin="lower")
            fig.colorbar(im, ax=ax, pad=0.01)
            kind = f"graded, {int(np.count_nonzero(a))} nonzero"
        ax.set_xlim(-0.5, a.shape[1] - 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("neuron")
        ax.set_title(f"{name}: {a.shape[0]} neurons, {kind}", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("time step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    return n


# -------------------------------------------------------------------------------- quantization


def _weights(report: Any) -> dict[str, tuple[float, float]]:
    """Per synapse ``(max_err, rms_err)`` from the report's pass values."""
    out: dict[str, tuple[float, float]] = {}
    w = dict(getattr(report, "weights", {}) or {})
    for key in w:
        name, _, kind = key.rpartition(".")
        if kind == "max_err":
            out[name] = (float(w[key]), float(w.get(f"{name}.rms_err", 0.0)))
    return dict(sorted(out.items()))


def quant_picture(report: Any, path: str | os.PathLike, title: str | None = None) -> int:
    """Draw a :class:`~slayerc.runtime.agreement.QuantReport` to ``path``; return the panel
    count (2: weight error per synapse, spike agreement per neuron layer in %)."""
    _check_path(path)
    plt = _pyplot()
    weights = _weights(report)
    agree = dict(report.agreement)
    quant = dict(getattr(report, "quant", {}) or {})
    height = 1.5 + 0.28 * max(len(weights), len(agree), 3)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, height))
    y = np.arange(len(weights))
    if weights:
        left.barh(y - 0.2, [v[0] for v in weights.values()], 0.4, label="max", color="#e67e22")
        left.barh(y + 0.2, [v[1] for v in weights.values()], 0.4, label="rms", color="#2e86c1")
        left.legend(fontsize=8)
    if not any(v[0] for v in weights.values()):  # an empty chart would look like a failure
        left.set_xlim(0, 1)
        left.text(0.5, 0.5, "error 0: every weight is on the 8-bit grid", fontsize=9,
                  ha="center", va="center", transform=left.transAxes)
    left.set_yticks(y, list(weights), fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("weight error (slayer units)")
    left.set_title("quantization error per synapse", fontsize=10)
    y = np.arange(len(agree))
    right.barh(y - 0.2, [100 * v for v in agree.values()], 0.4, label="= float model",
               color="#27ae60")
    if quant:
        right.barh(y + 0.2, [100 * quant.get(k, np.nan) for k in agree], 0.4,
                   label="= unquantized graph", color="#8e44ad")
    right.set_yticks(y, list(agree), fontsize=8)
    right.invert_yaxis()
    low = min([100 * v for v in (*agree.values(), *quant.values())] or [100.0])
    right.set_xlim(max(0.0, low - 5), 100.5)
    right.set_xlabel("equal outputs (%)")
    right.set_title(f"spike agreement per layer (all: {100 * report.total:.2f}%)", fontsize=10)
    right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    return 2
