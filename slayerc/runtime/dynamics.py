"""Reference neuron dynamics of SLAYER, written once and vectorised over neurons.

Every kernel here reproduces the integer arithmetic of lava-dl's CPU path bit for bit
(``spec/slayer-dynamics.md`` §3) and is a ``torch.autograd.Function`` with an explicit backward.
The modelling API (``slayerc.slayer``), the IR interpreter and the tests all call these functions.

Conventions (slayer units, time last):

* ``x`` has shape ``[N, *S, T]``; ``S`` is the per-sample neuron shape ``(C,)`` or ``(C, H, W)``.
* ``scale`` is the integer state scale ``S`` (``s_scale``, 4096 by default).  A slayer value ``v``
  is the integer ``v·S`` inside the kernel; the input enters as ``I(S·x)`` (truncation toward zero
  of the product computed in ``x``'s dtype), the output leaves as ``y_int / S``.
* ``tz(p) = sign(p)·(|p| >> 12)``: the decay product is truncated toward zero.
* Decays ``D`` are 12-bit fractions ×4096 (the stored lava-dl parameter).  The kernels round them
  (``torch.round``, as ``slayer.utils.quantize``) and pass gradients straight through the rounding.
  A decay is a scalar (one element), per channel (shape ``(C,)``) or per neuron (shape ``S``).

How the integers are held: as integer-valued ``float64`` tensors.  Every product ``y·(4096−D)`` is
an integer below 2**53, so multiplying by the exact dyadic ``(4096−D)/4096`` and truncating gives
exactly ``tz(y·(4096−D))``: the results are identical to int64 arithmetic for ``|state| < 2**41``,
and a CPU step is about five times cheaper than with int64 (measured).  The per-step loop uses
preallocated time-major buffers and ``out=`` operations only.

Gradients (the surrogate rules of lava-dl, with the decay gradient corrected):

* Input: the map is treated as linear (truncation and reset ignored), as lava-dl does:
  ``gx[t] = d·gx[t+1] + gy[t]`` with ``d = 1 − D/4096``.  It is evaluated with a log-depth
  (Kogge–Stone) scan instead of a Python loop over ``T``.
* Decay: the analytic derivative of that same linear map with respect to the *stored* parameter,
  ``∂L/∂D = −Σ_{n,t} gx[t]·y[t−1] / 4096`` with ``y[−1]`` the initial state.  lava-dl returns
  ``+Σ gx[t+1]·y[t]`` instead (wrong sign, 4096× too large).  ``y`` is the recorded pre-reset
  output, consistent with the input gradient ignoring the reset.
* Resonator: ``gz[t] = conj(w)·gz[t+1] + g[t]`` with ``w = (C + i·Sn)/4096`` on
  ``gz = g_re + i·g_im``; ``∂L/∂C = Σ (g_re[t]·re[t−1] + g_im[t]·im[t−1]) / 4096`` and
  ``∂L/∂Sn = Σ (−g_re[t]·im[t−1] + g_im[t]·re[t−1]) / 4096`` (lava-dl: 4096× too large).
* Adaptive threshold and refractory states carry no gradient (as lava-dl).

Performance (CUBA): :func:`cuba_lif` runs both integrators in one loop, compiled with numba for
float32 CPU inputs (bit-identical to the torch loop, which runs otherwise: five operations per
step, in chunks of 32 steps on small recycled scratch buffers), and hands back ``[N, *S, T]``
views of time-major storage (:func:`is_time_major`); the dense synapse, the blocks' one-step
delay and the axonal delay keep that layout in training.  Inference (no autograd) keeps the
input's time-last layout instead (:func:`slayerc.runtime.cuba_lif.cuba_lif_spikes`).

Performance (other families): the forward recursions here (leaky integrator, resonator, adaptive
threshold and phase threshold, adaptive resonator) run as numba loops of
:mod:`slayerc.runtime.compiled` on CPU (same bits; a float32 leaky integrator in one fused pass
over the time-last layout); ``SLAYERC_NO_NUMBA=1`` or ``compiled.set_compiled(False)`` keeps the
torch loops.  Their backwards are log-depth scans, not per-step loops.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from slayerc.ir.target import STATE_SCALE
from slayerc.runtime import compiled as _cmp
from slayerc.runtime.timescan import (  # noqa: F401  (public names re-exported here)
    _F64,
    P_SCALE,
    DynamicsShapeError,
    _decay_keep,
    _prev,
    _spatial,
    from_time_major,
    is_time_major,
    param_view,
    reduce_to,
    reset_level,
    reverse_scan,
    state_int,
    time_major_int,
)

# ------------------------------------------------------------------------- leaky integrator


def _li_loop(xin: torch.Tensor, keep: torch.Tensor, y0: torch.Tensor, level: float | None):
    """Run ``y = tz(y·(4096−D)) + xin[t]`` (reset to 0 when ``y >= level``), time major."""
    if _cmp.fits(xin):
        return _cmp.li_loop(xin, keep, y0, level)
    out = torch.empty_like(xin)
    prev = y0
    if level is None:
        for t in range(xin.shape[0]):
            yt = out[t]
            torch.mul(prev, keep, out=yt)
            yt.trunc_().add_(xin[t])
            prev = yt
        return out
    mask = torch.empty_like(y0)
    carry = torch.empty_like(y0)
    for t in range(xin.shape[0]):
        yt = out[t]
        torch.mul(prev, keep, out=yt)
        yt.trunc_().add_(xin[t])
        torch.lt(yt, level, out=mask)
        torch.mul(yt, mask, out=carry)
        prev = carry
    return out


class _LeakyIntegrator(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, decay, state, scale, threshold, exact=False):
        spatial = _spatial(x)
        keep = _decay_keep(decay, spatial, "decay", exact)
        level = None
        if threshold is not None and threshold * scale > 0:
            level = reset_level(threshold * scale)
        y0 = state_int(state, x, scale)
        if _cmp.fits_f32(x):
            y = _cmp.li_f32(x, keep, y0, level, scale)
        else:
            y = from_time_major(_li_loop(time_major_int(x, scale), keep, y0, level), x.dtype,
                                scale)
        init = None if state is None else (y0 / scale)
        ctx.save_for_backward(y, decay, init)
        ctx.spatial, ctx.exact = spatial, exact
        return y

    @staticmethod
    def backward(ctx, gy):
        y, decay, init = ctx.saved_tensors
        view = param_view(decay.detach(), ctx.spatial).to(gy.dtype)
        view = view if ctx.exact else view.round()
        gx = reverse_scan(gy, 1 - view / P_SCALE)
        gd = None
        if ctx.needs_input_grad[1]:
            full = -(gx * _prev(y, init)).sum(-1) / P_SCALE
            gd = reduce_to(full, view.shape, decay.shape).to(decay.dtype)
        return gx, gd, None, None, None, None


def leaky_integrator(
    x: torch.Tensor,
    decay: torch.Tensor,
    state: torch.Tensor | None = None,
    scale: int = STATE_SCALE,
    threshold: float | None = None,
    exact_decay: bool = False,
) -> torch.Tensor:
    """Leaky integrator with optional reset (``spec/slayer-dynamics.md`` §3.1).

    .. math::
        y_\\text{int}[t] = \\operatorname{tz}\\big(y_\\text{old}\\,(4096 - D)\\big) + I(S\\,x[t]),
        \\qquad y[t] = y_\\text{int}[t] / S

    and ``y_old ← 0`` when ``threshold > 0`` and ``float32(y_int) ≥ float32(threshold·S)``
    (lava-dl's CPU rule), else ``y_old ← y_int``.  ``y`` is the pre-reset value.

    Args:
        x: input ``[N, *S, T]`` in slayer units.
        decay: ``D`` ×4096, one value, per channel ``(C,)`` or per neuron ``S``; learnable.
        state: initial value ``y[−1]`` in slayer units (broadcast to ``[N, *S]``), or None for 0.
        scale: the integer state scale ``S``.
        threshold: reset threshold in slayer units, or None for no reset.
        exact_decay: use ``D`` as given instead of ``round(D)`` (an IR node's ``exact_decays``).

    Returns:
        ``y`` with the shape and dtype of ``x``.  Gradients: see the module docstring.
    """
    return _LeakyIntegrator.apply(x, decay, state, int(scale), threshold, bool(exact_decay))


# -------------------------------------------------------------------------------- resonator


def _res_decays(sin_decay, cos_decay, spatial):
    s = param_view(sin_decay.detach(), spatial, "sin_decay").to(_F64).round() / P_SCALE
    c = param_view(cos_decay.detach(), spatial, "cos_decay").to(_F64).round() / P_SCALE
    return s, c


def _res_loop(xr, xi, s, c, re0, im0, level, im_reset):
    """Resonator recursion, time major; ``level``/``im_reset`` give the rf_iz reset (or None)."""
    if _cmp.fits(xr):
        return _cmp.res_loop(xr, xi, s, c, re0, im0, level, im_reset)
    steps = xr.shape[0]
    out_re, out_im = torch.empty_like(xr), torch.empty_like(xi)
    tmp = torch.empty_like(re0)
    re, im = re0, im0
    mask = torch.empty_like(re0) if level is not None else None
    for t in range(steps):
        rt, it = out_re[t], out_im[t]
        torch.mul(re, c, out=rt).trunc_()
        rt.sub_(torch.mul(im, s, out=tmp).trunc_()).add_(xr[t])
        torch.mul(re, s, out=it).trunc_()
        it.add_(torch.mul(im, c, out=tmp).trunc_()).add_(xi[t])
        if mask is None:
            re, im = rt, it
            continue
        torch.lt(it, level, out=mask)  # 1 where no spike
        re = rt * mask
        im = torch.where(mask > 0, it, im_reset)
    return out_re, out_im


class _Resonator(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_re, x_im, sin_decay, cos_decay, re_state, im_state, scale, threshold):
        spatial = _spatial(x_re)
        if x_im.shape != x_re.shape:
            raise DynamicsShapeError(
                f"real input {list(x_re.shape)} and imaginary input {list(x_im.shape)} differ"
            )
        s, c = _res_decays(sin_decay, cos_decay, spatial)
        level = im_reset = None
        if threshold is not None and threshold * scale >= 0:
            level = reset_level(threshold * scale)
            im_reset = float(math.trunc(float(np.float32(threshold * scale - 1))))
        re0, im0 = state_int(re_state, x_re, scale), state_int(im_state, x_re, scale)
        yr, yi = _res_loop(
            time_major_int(x_re, scale), time_major_int(x_im, scale), s, c, re0, im0, level,
            im_reset,
        )
        re = from_time_major(yr, x_re.dtype, scale)
        im = from_time_major(yi, x_im.dtype, scale)
        _save_res(ctx, re, im, sin_decay, cos_decay, re_state, im_state, re0, im0, scale)
        ctx.spatial = spatial
        return re, im

    @staticmethod
    def backward(ctx, g_re, g_im):
        return _res_backward(ctx, g_re, g_im) + (None, None, None, None)


def _save_res(ctx, re, im, sin_decay, cos_decay, re_state, im_state, re0, im0, scale):
    init_re = None if re_state is None else re0 / scale
    init_im = None if im_state is None else im0 / scale
    ctx.save_for_backward(re, im, sin_decay, cos_decay, init_re, init_im)


def _res_backward(ctx, g_re, g_im):
    """Input and sin/cos gradients of the (linearised) resonator; see the module docstring."""
    re, im, sin_decay, cos_decay, init_re, init_im = ctx.saved_tensors
    g_re = torch.zeros_like(re) if g_re is None else g_re
    g_im = torch.zeros_like(im) if g_im is None else g_im
    sv = param_view(sin_decay.detach(), ctx.spatial).to(g_re.dtype).round() / P_SCALE
    cv = param_view(cos_decay.detach(), ctx.spatial).to(g_re.dtype).round() / P_SCALE
    h = reverse_scan(torch.complex(g_re, g_im), torch.complex(cv, -sv))
    gr, gi = h.real.contiguous(), h.imag.contiguous()
    gs = gc = None
    if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
        pre, pim = _prev(re, init_re), _prev(im, init_im)
        full_s = (gi * pre - gr * pim).sum(-1) / P_SCALE
        full_c = (gr * pre + gi * pim).sum(-1) / P_SCALE
        gs = reduce_to(full_s, sv.shape, sin_decay.shape).to(sin_decay.dtype)
        gc = reduce_to(full_c, cv.shape, cos_decay.shape).to(cos_decay.dtype)
    return gr, gi, gs, gc


def resonator(
    x_re: torch.Tensor,
    x_im: torch.Tensor,
    sin_decay: torch.Tensor,
    cos_decay: torch.Tensor,
    re_state: torch.Tensor | None = None,
    im_state: torch.Tensor | None = None,
    scale: int = STATE_SCALE,
    threshold: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resonator with optional Izhikevich reset (``spec/slayer-dynamics.md`` §3.2).

    .. math::
        re[t] &= \\operatorname{tz}(C\\,re) - \\operatorname{tz}(S_n\\,im) + I(S\\,x_{re}[t]) \\\\
        im[t] &= \\operatorname{tz}(S_n\\,re) + \\operatorname{tz}(C\\,im) + I(S\\,x_{im}[t])

    ``C = round(cos_decay)`` and ``S_n = round(sin_decay)`` already contain ``(1−α)``.  With a
    ``threshold ≥ 0`` (rf_iz), when ``float32(im_int) ≥ float32(θ·S)`` the carried state becomes
    ``re = 0``, ``im = θ·S − 1``; the returned traces are pre-reset.  Gradients flow to both
    inputs and both decays (module docstring).
    """
    return _Resonator.apply(
        x_re, x_im, sin_decay, cos_decay, re_state, im_state, int(scale), threshold
    )


# ------------------------------------------------------------------ adaptive threshold (3.3-3.5)


class _Adaptation:
    """Threshold/refractory recursion shared by ALIF, ADRF and ADRF-Iz (integer domain)."""

    def __init__(
        self, th_decay, ref_decay, th_step, th0, scale, spatial, like, th_state, ref_state
    ):
        self.kth = _decay_keep(th_decay, spatial, "threshold_decay")
        self.kref = _decay_keep(ref_decay, spatial, "refractory_decay")
        self.step = float(int(th_step * scale))
        self.th0 = float(int(th0 * scale))
        self.th = state_int(th_state, like, scale) if th_state is not None else None
        if self.th is None:
            self.th = torch.full(like.shape[:-1], self.th0, dtype=_F64, device=like.device)
        self.ref = state_int(ref_state, like, scale)
        self.fired = torch.empty_like(self.ref)

    def decay(self, th_out: torch.Tensor, ref_out: torch.Tensor) -> None:
        """``r = tz(r·(4096−Dr))``, ``θ = tz((θ−θ0)·(4096−Dθ)) + θ0`` into the output rows."""
        torch.mul(self.ref, self.kref, out=ref_out).trunc_()
        torch.sub(self.th, self.th0, out=th_out).mul_(self.kth).trunc_().add_(self.th0)

    def fire(self, th_new: torch.Tensor, ref_new: torch.Tensor) -> None:
        """After ``self.fired`` is set: ``θ = θ_new + step·s``, ``r = r_new + 2·θ_new·s``."""
        self.th = torch.addcmul(th_new, self.fired, torch.tensor(self.step, dtype=_F64))
        self.ref = torch.addcmul(ref_new, self.fired, th_new, value=2.0)


def _adaptive_loop(ad: _Adaptation, drive: torch.Tensor, im_gate: torch.Tensor | None, im_prev):
    """Spike on ``drive ≥ θ+r`` (and an upward zero crossing of ``im`` when gated)."""
    if _cmp.fits(drive):
        return _cmp.adaptive_loop(ad, drive, im_gate, im_prev)
    th_out, ref_out = torch.empty_like(drive), torch.empty_like(drive)
    gate = torch.empty_like(ad.ref) if im_gate is not None else None
    for t in range(drive.shape[0]):
        ad.decay(th_out[t], ref_out[t])
        torch.ge(drive[t], th_out[t] + ref_out[t], out=ad.fired)
        if gate is not None:
            ad.fired.mul_(torch.ge(im_gate[t], 0, out=gate)).mul_(torch.lt(im_prev, 0, out=gate))
            im_prev = im_gate[t]
        ad.fire(th_out[t], ref_out[t])
    return th_out, ref_out


def adaptive_threshold(
    v: torch.Tensor,
    threshold_decay: torch.Tensor,
    refractory_decay: torch.Tensor,
    threshold_step: float,
    threshold: float,
    scale: int = STATE_SCALE,
    threshold_state: torch.Tensor | None = None,
    refractory_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive threshold and refractory traces driven by a voltage (§3.3, ALIF).

    .. math::
        r[t] &= \\operatorname{tz}(r\\,(4096 - D_r)) \\qquad
        \\vartheta[t] = \\operatorname{tz}((\\vartheta - \\vartheta_0)(4096 - D_\\vartheta))
                         + \\vartheta_0 \\\\
        s[t] &= I(S\\,v[t]) \\ge \\vartheta[t] + r[t]; \\text{ then }
        \\vartheta \\mathrel{+}= \\vartheta_\\text{step}\\,s,\\ r \\mathrel{+}= 2\\vartheta[t]\\,s

    with ``θ0 = I(θ·S)``, ``step = I(θ_step·S)``; the state starts at ``θ0`` (or
    ``threshold_state``) and ``0`` (or ``refractory_state``).  Returns ``(θ[t], r[t])`` in slayer
    units.  No gradient flows through it.
    """
    with torch.no_grad():
        spatial = _spatial(v)
        ad = _Adaptation(
            threshold_decay, refractory_decay, threshold_step, threshold, scale, spatial, v,
            threshold_state, refractory_state,
        )
        th, ref = _adaptive_loop(ad, time_major_int(v, scale), None, None)
        return from_time_major(th, v.dtype, scale), from_time_major(ref, v.dtype, scale)


def adaptive_phase_threshold(
    re: torch.Tensor,
    im: torch.Tensor,
    threshold_decay: torch.Tensor,
    refractory_decay: torch.Tensor,
    threshold_step: float,
    threshold: float,
    scale: int = STATE_SCALE,
    im_state: torch.Tensor | None = None,
    threshold_state: torch.Tensor | None = None,
    refractory_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive threshold driven by a resonator's phase (§3.4, ADRF).

    As :func:`adaptive_threshold`, with the spike condition
    ``I(S·re[t]) ≥ θ[t] + r[t] ∧ I(S·im[t]) ≥ 0 ∧ I(S·im[t−1]) < 0`` (``im[−1]`` from
    ``im_state``, 0 when None).  No gradient.
    """
    with torch.no_grad():
        spatial = _spatial(re)
        ad = _Adaptation(
            threshold_decay, refractory_decay, threshold_step, threshold, scale, spatial, re,
            threshold_state, refractory_state,
        )
        im_t = time_major_int(im, scale)
        im0 = state_int(im_state, re, scale)
        th, ref = _adaptive_loop(ad, time_major_int(re, scale), im_t, im0)
        return from_time_major(th, re.dtype, scale), from_time_major(ref, re.dtype, scale)


def _adres_loop(ad: _Adaptation, xr, xi, s, c, re, im):
    """Adaptive resonator recursion: one truncation of the combined product, no reset."""
    if _cmp.fits(xr):
        return _cmp.adres_loop(ad, xr, xi, s, c, re, im)
    out = [torch.empty_like(xr) for _ in range(4)]
    tmp = torch.empty_like(re)
    for t in range(xr.shape[0]):
        rt, it, tht, reft = out[0][t], out[1][t], out[2][t], out[3][t]
        ad.decay(tht, reft)
        torch.mul(re, c, out=rt).sub_(torch.mul(im, s, out=tmp)).trunc_().add_(xr[t])
        torch.mul(re, s, out=it).add_(torch.mul(im, c, out=tmp)).trunc_().add_(xi[t])
        torch.ge(it, tht + reft, out=ad.fired)
        ad.fire(tht, reft)
        re, im = rt, it
    return out


class _AdaptiveResonator(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x_re, x_im, sin_decay, cos_decay, adapt, states, scale):
        spatial = _spatial(x_re)
        re_state, im_state, th_state, ref_state = states
        th_decay, ref_decay, th_step, th0 = adapt
        s, c = _res_decays(sin_decay, cos_decay, spatial)
        ad = _Adaptation(
            th_decay, ref_decay, th_step, th0, scale, spatial, x_re, th_state, ref_state
        )
        re0, im0 = state_int(re_state, x_re, scale), state_int(im_state, x_re, scale)
        rows = _adres_loop(
            ad, time_major_int(x_re, scale), time_major_int(x_im, scale), s, c, re0, im0
        )
        re, im, th, ref = (from_time_major(r, x_re.dtype, scale) for r in rows)
        _save_res(ctx, re, im, sin_decay, cos_decay, re_state, im_state, re0, im0, scale)
        ctx.spatial = spatial
        ctx.mark_non_differentiable(th, ref)
        return re, im, th, ref

    @staticmethod
    def backward(ctx, g_re, g_im, _g_th, _g_ref):
        return _res_backward(ctx, g_re, g_im) + (None, None, None)


def adaptive_resonator(
    x_re: torch.Tensor,
    x_im: torch.Tensor,
    sin_decay: torch.Tensor,
    cos_decay: torch.Tensor,
    threshold_decay: torch.Tensor,
    refractory_decay: torch.Tensor,
    threshold_step: float,
    threshold: float,
    scale: int = STATE_SCALE,
    states: tuple | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Resonator with adaptive threshold, Izhikevich spike (§3.5, ADRF-Iz).

    .. math::
        re[t] &= \\operatorname{tz}(C\\,re - S_n\\,im) + I(S\\,x_{re}[t]) \\\\
        im[t] &= \\operatorname{tz}(S_n\\,re + C\\,im) + I(S\\,x_{im}[t]) \\\\
        s[t] &= im[t] \\ge \\vartheta[t] + r[t]

    θ and r as :func:`adaptive_threshold`.  Note the single truncation of the combined product:
    this is what lava-dl's ``adaptive_resonator`` (CPU and CUDA) computes, unlike the plain
    resonator's two truncations.  There is no re/im reset (lava-dl has it commented out).
    ``states`` is ``(re, im, θ, r)`` initial values (each may be None).  Returns
    ``(re, im, θ, r)``; gradients flow to the inputs and sin/cos decays only.
    """
    states = states if states is not None else (None, None, None, None)
    adapt = (threshold_decay, refractory_decay, threshold_step, threshold)
    return _AdaptiveResonator.apply(x_re, x_im, sin_decay, cos_decay, adapt, states, int(scale))
