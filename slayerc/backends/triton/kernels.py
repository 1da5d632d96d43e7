"""Fused Triton kernels of the SLAYER neuron families (forward and backward).

One launch per layer: one program per block of ``BLOCK`` neurons (a neuron is one element of
``N·C·H·W``), the time loop runs inside the kernel and every state stays in registers, the way
lava-dl's CUDA kernels are built (``spec/slayer-dynamics.md`` §8) but with the spike function,
the one-step ``delay_shift`` and the integer axonal delay folded in.

Integer arithmetic: states are ``int64`` and the decay product is truncated toward zero with
``tz(p) = sign(p)·(|p| >> 12)``; inputs enter as ``I(S·x)`` (the product in ``x``'s dtype, then
truncated) and traces leave as ``y_int / S`` in ``x``'s dtype.  That is exactly the arithmetic of
the torch reference (:mod:`slayerc.runtime.dynamics`, which holds the same integers in float64),
so spikes are identical bit for bit; int64 also avoids float64 throughput limits on consumer GPUs.

Layout: every ``[N·M, T]`` trace is addressed as ``row·sn + t·st``; time-last tensors use
``sn = T, st = 1`` and time-major ones ``sn = 1, st = N·M`` (see ``docs/triton-backend.md``).

Parameters (decays, thresholds, biases, shifts) are flat tensors indexed by
``(n mod M) // div``: ``div = M`` for one value, ``M / C`` per channel, ``1`` per neuron.

Saved for backward: the surrogate derivative ``ρ[t]`` (computed in the forward pass, so the
backward never recomputes spikes) and, only for learnable decays, the pre-reset traces.  The
backward kernels return per-neuron partial sums of the parameter gradients, which the host
reduces over batch (and space, for per-channel parameters).
"""

from __future__ import annotations

import triton
import triton.language as tl

# --------------------------------------------------------------------------------- helpers


@triton.jit
def _tz(p):
    """``sign(p)·(|p| >> 12)``: the decay product truncated toward zero."""
    q = tl.abs(p) >> 12
    return tl.where(p < 0, -q, q)


@triton.jit
def _to_int(x, S: tl.constexpr):
    """``I(S·x)``: product in ``x``'s dtype, truncated toward zero."""
    return (x * S).to(tl.int64)


@triton.jit
def _to_float(y, S: tl.constexpr, POW2: tl.constexpr, DT: tl.constexpr):
    """``y_int / S`` in ``DT`` (exact reciprocal for a power of two, else correctly rounded)."""
    f = y.to(DT)
    if POW2:
        out = f * (1.0 / S)
    else:
        out = tl.math.div_rn(f, tl.full(f.shape, S, DT))
    return out


@triton.jit
def _param(ptr, rem, div):
    """Scalar, per-channel or per-neuron parameter for neurons with ``rem = n mod M``."""
    return tl.load(ptr + rem // div)


@triton.jit
def _prev_load(tr_ptr, init, row, t, st, m):
    """``trace[t−1]``, or ``init`` at ``t = 0``."""
    tt = tl.zeros_like(row) + t
    val = tl.load(tr_ptr + row + (tt - 1) * st, mask=m & (tt > 0), other=0.0)
    return tl.where(tt > 0, val, init)


@triton.jit
def _emit(out_ptr, row, t, val, k, prev, T, st, m, SHIFT: tl.constexpr):
    """Store ``s[t]`` at ``t + k``; a position no spike lands on gets ``prev`` (at ``k−1``) or 0."""
    if SHIFT:
        pos = t + k
        tl.store(out_ptr + row + pos * st, val, mask=m & (pos >= 0) & (pos < T))
        src = t - k
        fill = tl.where(src == -1, prev, tl.zeros_like(prev))
        tl.store(out_ptr + row + t * st, fill, mask=m & ((src < 0) | (src >= T)))
    else:
        tl.store(out_ptr + row + t * st, val, mask=m)


@triton.jit
def _gather(g_ptr, row, t, k, T, st, m, SHIFT: tl.constexpr):
    """Gradient of ``s[t]``: the output gradient at ``t + k`` (0 past the end)."""
    if SHIFT:
        pos = t + k
        g = tl.load(g_ptr + row + pos * st, mask=m & (pos >= 0) & (pos < T), other=0.0)
    else:
        g = tl.load(g_ptr + row + t * st, mask=m, other=0.0)
    return g


@triton.jit
def _delay_term(g_ptr, y_ptr, row, t, st, m, g_next):
    """One term ``y[t]·(g[t+1] − g[t])`` of the axonal delay gradient; returns it and ``g[t]``."""
    gt = tl.load(g_ptr + row + t * st, mask=m, other=0.0)
    yt = tl.load(y_ptr + row + t * st, mask=m, other=0.0)
    return yt * (g_next - gt), gt


@triton.jit
def _rho_real(v, th, tau, c, GRADED: tl.constexpr):
    """Real-spike surrogate ``c·e^{−|v−θ|/τ}`` (``c = σ/2τ``); graded ``c·e^{min(v−θ,0)/τ}``."""
    e = v - th
    if GRADED:
        r = c * tl.exp(tl.where(e < 0, e, tl.zeros_like(e)) / tau)
    else:
        r = c * tl.exp(-tl.abs(e) / tau)
    return r


@triton.jit
def _sign(x):
    one = tl.full(x.shape, 1.0, x.dtype)
    return tl.where(x > 0, one, tl.where(x < 0, -one, tl.zeros_like(x)))


@triton.jit
def _rho_complex(re, im, th, tau, sig, GRADED: tl.constexpr):
    """Phase-spike surrogate ``(∂s/∂re, ∂s/∂im)`` (``spec/slayer-dynamics.md`` §2.2)."""
    e = re - th
    half = 0.5 / tau
    if GRADED:
        d_re = tl.exp(tl.where(e < 0, e, tl.zeros_like(e)) / tau)
    else:
        d_re = half * tl.exp(-tl.abs(e) / tau)
    d_im = half * tl.exp(-tl.abs(im) / tau)
    step = 0.5 * (1.0 + _sign(e) * (1.0 - 2.0 * tau * d_re))
    return sig * d_re * d_im, -(sig / tau) * _sign(im) * d_im * step


# ----------------------------------------------------------------------- LIF: cuba and alif


@triton.jit
def lif_fwd(  # noqa: C901 — one kernel, specialised at compile time by the constexpr flags
    x_ptr, out_ptr, u_tr, v_tr, rho_tr, last_ptr,
    du_ptr, dv_ptr, div_u, div_v, u0_ptr, v0_ptr,
    dth_ptr, dref_ptr, div_th, div_ref, th0_ptr, r0_ptr, th_base, th_step,
    k_ptr, prev_ptr, th_ptr, level, tau, c_rho,
    total, M, T, sn, st,
    S: tl.constexpr, POW2: tl.constexpr, ADAPT: tl.constexpr, RESET: tl.constexpr,
    GRADED: tl.constexpr, SHIFT: tl.constexpr, SAVE_U: tl.constexpr, SAVE_V: tl.constexpr,
    SAVE_RHO: tl.constexpr, BLOCK: tl.constexpr,
):
    """CUBA-LIF (``ADAPT=False``) or ALIF (``ADAPT=True``) forward over all T steps."""
    n = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    m = n < total
    rem = n % M
    row = n * sn
    DT: tl.constexpr = out_ptr.dtype.element_ty
    ku = 4096 - _param(du_ptr, rem, div_u)
    kv = 4096 - _param(dv_ptr, rem, div_v)
    u = tl.load(u0_ptr + n, mask=m, other=0)
    v = tl.load(v0_ptr + n, mask=m, other=0)
    th = tl.load(th_ptr).to(DT)
    if ADAPT:
        kth = 4096 - _param(dth_ptr, rem, div_th)
        kr = 4096 - _param(dref_ptr, rem, div_ref)
        thi = tl.load(th0_ptr + n, mask=m, other=0)
        r = tl.load(r0_ptr + n, mask=m, other=0)
    k = tl.load(k_ptr + rem)
    prev = tl.load(prev_ptr + n, mask=m, other=0.0).to(DT)
    uf = tl.zeros([BLOCK], DT)
    vf = tl.zeros([BLOCK], DT)
    s = tl.zeros([BLOCK], DT)
    thf = tl.zeros([BLOCK], DT)
    rf = tl.zeros([BLOCK], DT)
    for t in range(T):
        x = tl.load(x_ptr + row + t * st, mask=m, other=0.0)
        u = _tz(u * ku) + _to_int(x, S)
        uf = _to_float(u, S, POW2, DT)
        v_new = _tz(v * kv) + _to_int(uf, S)
        vf = _to_float(v_new, S, POW2, DT)
        thr = th
        if ADAPT:
            r_new = _tz(r * kr)
            th_new = _tz((thi - th_base) * kth) + th_base
            fa = (_to_int(vf, S) >= th_new + r_new).to(tl.int64)
            thi = th_new + th_step * fa
            r = r_new + 2 * th_new * fa
            thf = _to_float(th_new, S, POW2, DT)
            rf = _to_float(r_new, S, POW2, DT)
            thr = thf + rf
        fired = (vf >= thr).to(DT)
        if GRADED:
            s = vf * fired
        else:
            s = fired
        if RESET:
            v = tl.where(v_new >= level, tl.zeros_like(v_new), v_new)
        else:
            v = v_new
        _emit(out_ptr, row, t, s, k, prev, T, st, m, SHIFT)
        if SAVE_U:
            tl.store(u_tr + row + t * st, uf, mask=m)
        if SAVE_V:
            tl.store(v_tr + row + t * st, vf, mask=m)
        if SAVE_RHO:
            tl.store(rho_tr + row + t * st, _rho_real(vf, thr, tau, c_rho, GRADED), mask=m)
    tl.store(last_ptr + n, uf, mask=m)
    tl.store(last_ptr + total + n, vf, mask=m)
    tl.store(last_ptr + 2 * total + n, s, mask=m)
    tl.store(last_ptr + 3 * total + n, thf, mask=m)
    tl.store(last_ptr + 4 * total + n, rf, mask=m)


@triton.jit
def lif_bwd(  # noqa: C901 — constexpr-specialised like lif_fwd
    g_ptr, y_ptr, gx_ptr, acc_ptr, rho_tr, u_tr, v_tr, u_init, v_init,
    ku_ptr, kv_ptr, div_u, div_v, k_ptr, th_ptr, tau, c_rho,
    total, M, T, sn, st,
    SHIFT: tl.constexpr, LEARN_U: tl.constexpr, LEARN_V: tl.constexpr, DGRAD: tl.constexpr,
    RHO_FROM_V: tl.constexpr, GRADED: tl.constexpr, BLOCK: tl.constexpr,
):
    """Backward of :func:`lif_fwd`: surrogate, then the two linearised leaky integrators.

    ``RHO_FROM_V`` (CUBA with a saved voltage trace): the surrogate is recomputed from ``v[t]``
    instead of being saved, so a learnable voltage decay costs no extra trace.
    """
    n = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    m = n < total
    rem = n % M
    row = n * sn
    DT: tl.constexpr = gx_ptr.dtype.element_ty
    keep_u = _param(ku_ptr, rem, div_u)
    keep_v = _param(kv_ptr, rem, div_v)
    k = tl.load(k_ptr + rem)
    hv = tl.zeros([BLOCK], DT)
    hx = tl.zeros([BLOCK], DT)
    acc_u = tl.zeros([BLOCK], DT)
    acc_v = tl.zeros([BLOCK], DT)
    acc_d = tl.zeros([BLOCK], DT)
    g_next = tl.zeros([BLOCK], DT)
    u0 = tl.load(u_init + n, mask=m, other=0.0)
    v0 = tl.load(v_init + n, mask=m, other=0.0)
    th = tl.load(th_ptr).to(DT)
    for i in range(T):
        t = T - 1 - i
        gs = _gather(g_ptr, row, t, k, T, st, m, SHIFT)
        if RHO_FROM_V:
            vt = tl.load(v_tr + row + t * st, mask=m, other=0.0)
            rho = _rho_real(vt, th, tau, c_rho, GRADED)
        else:
            rho = tl.load(rho_tr + row + t * st, mask=m, other=0.0)
        hv = keep_v * hv + gs * rho
        hx = keep_u * hx + hv
        if LEARN_V:
            acc_v += hv * _prev_load(v_tr, v0, row, t, st, m)
        if LEARN_U:
            acc_u += hx * _prev_load(u_tr, u0, row, t, st, m)
        if DGRAD:
            term, g_next = _delay_term(g_ptr, y_ptr, row, t, st, m, g_next)
            acc_d += term
        tl.store(gx_ptr + row + t * st, hx, mask=m)
    tl.store(acc_ptr + n, acc_u, mask=m)
    tl.store(acc_ptr + total + n, acc_v, mask=m)
    tl.store(acc_ptr + 2 * total + n, acc_d, mask=m)


# --------------------------------------------------------- resonators: rf, rf_iz, adrf, adrf_iz


@triton.jit
def _rotate(re, im, C, Sn, ONE_TRUNC: tl.constexpr):
    """Integer rotation; adrf_iz truncates the combined product once (lava-dl)."""
    if ONE_TRUNC:
        re_r = _tz(re * C - im * Sn)
        im_r = _tz(re * Sn + im * C)
    else:
        re_r = _tz(re * C) - _tz(im * Sn)
        im_r = _tz(re * Sn) + _tz(im * C)
    return re_r, im_r


@triton.jit
def rf_fwd(  # noqa: C901 — constexpr-specialised: PHASE / RESET / ADAPT / ONE_TRUNC variants
    xr_ptr, xi_ptr, out_ptr, re_tr, im_tr, rho_re_tr, rho_im_tr, last_ptr,
    sin_ptr, cos_ptr, div_s, div_c, re0_ptr, im0_ptr, im_last_ptr,
    dth_ptr, dref_ptr, div_th, div_ref, th0_ptr, r0_ptr, th_base, th_step,
    k_ptr, prev_ptr, th_ptr, level, im_reset, tau, sig,
    total, M, T, sn, st,
    S: tl.constexpr, POW2: tl.constexpr, PHASE: tl.constexpr, RESET: tl.constexpr,
    ADAPT: tl.constexpr, ONE_TRUNC: tl.constexpr, GRADED: tl.constexpr, SHIFT: tl.constexpr,
    SAVE_STATE: tl.constexpr, SAVE_RHO: tl.constexpr, BLOCK: tl.constexpr,
):
    """Resonator forward: rf (PHASE), rf_iz (RESET), adrf (PHASE+ADAPT), adrf_iz (ADAPT)."""
    n = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    m = n < total
    rem = n % M
    row = n * sn
    DT: tl.constexpr = out_ptr.dtype.element_ty
    Sn = _param(sin_ptr, rem, div_s)
    C = _param(cos_ptr, rem, div_c)
    re = tl.load(re0_ptr + n, mask=m, other=0)
    im = tl.load(im0_ptr + n, mask=m, other=0)
    im_prev_i = im
    im_prev_f = tl.load(im_last_ptr + n, mask=m, other=0.0).to(DT)
    th = tl.load(th_ptr).to(DT)
    if ADAPT:
        kth = 4096 - _param(dth_ptr, rem, div_th)
        kr = 4096 - _param(dref_ptr, rem, div_ref)
        thi = tl.load(th0_ptr + n, mask=m, other=0)
        r = tl.load(r0_ptr + n, mask=m, other=0)
    k = tl.load(k_ptr + rem)
    prev = tl.load(prev_ptr + n, mask=m, other=0.0).to(DT)
    ref = tl.zeros([BLOCK], DT)
    imf = tl.zeros([BLOCK], DT)
    s = tl.zeros([BLOCK], DT)
    thf = tl.zeros([BLOCK], DT)
    rf = tl.zeros([BLOCK], DT)
    for t in range(T):
        xr = tl.load(xr_ptr + row + t * st, mask=m, other=0.0)
        xi = tl.load(xi_ptr + row + t * st, mask=m, other=0.0)
        re_r, im_r = _rotate(re, im, C, Sn, ONE_TRUNC)
        re_n = re_r + _to_int(xr, S)
        im_n = im_r + _to_int(xi, S)
        ref = _to_float(re_n, S, POW2, DT)
        imf = _to_float(im_n, S, POW2, DT)
        thr = th
        if ADAPT:
            r_new = _tz(r * kr)
            th_new = _tz((thi - th_base) * kth) + th_base
            if PHASE:
                im_i = _to_int(imf, S)
                fa = (_to_int(ref, S) >= th_new + r_new) & (im_i >= 0) & (im_prev_i < 0)
                im_prev_i = im_i
            else:
                fa = im_n >= th_new + r_new
            fa = fa.to(tl.int64)
            thi = th_new + th_step * fa
            r = r_new + 2 * th_new * fa
            thf = _to_float(th_new, S, POW2, DT)
            rf = _to_float(r_new, S, POW2, DT)
            thr = thf + rf
        if PHASE:
            fired = ((ref >= thr) & (im_prev_f < 0) & (imf >= 0)).to(DT)
            payload = ref
        else:
            fired = (imf >= thr).to(DT)
            payload = imf
        if GRADED:
            s = payload * fired
        else:
            s = fired
        if RESET:
            spiked = im_n >= level
            re = tl.where(spiked, tl.zeros_like(re_n), re_n)
            im = tl.where(spiked, tl.zeros_like(im_n) + im_reset, im_n)
        else:
            re = re_n
            im = im_n
        im_prev_f = imf
        _emit(out_ptr, row, t, s, k, prev, T, st, m, SHIFT)
        if SAVE_STATE:
            tl.store(re_tr + row + t * st, ref, mask=m)
            tl.store(im_tr + row + t * st, imf, mask=m)
        if SAVE_RHO:
            if PHASE:
                d_re, d_im = _rho_complex(ref, imf, thr, tau, sig, GRADED)
                tl.store(rho_re_tr + row + t * st, d_re, mask=m)
            else:
                c = sig
                if not GRADED:
                    c = sig * 0.5 / tau
                d_im = _rho_real(imf, thr, tau, c, GRADED)
            tl.store(rho_im_tr + row + t * st, d_im, mask=m)
    tl.store(last_ptr + n, ref, mask=m)
    tl.store(last_ptr + total + n, imf, mask=m)
    tl.store(last_ptr + 2 * total + n, s, mask=m)
    tl.store(last_ptr + 3 * total + n, thf, mask=m)
    tl.store(last_ptr + 4 * total + n, rf, mask=m)


@triton.jit
def rf_bwd(  # noqa: C901 — constexpr-specialised like rf_fwd
    g_ptr, y_ptr, gxr_ptr, gxi_ptr, acc_ptr, rho_re_tr, rho_im_tr, re_tr, im_tr,
    re_init, im_init, ks_ptr, kc_ptr, div_s, div_c, k_ptr,
    total, M, T, sn, st,
    PHASE: tl.constexpr, SHIFT: tl.constexpr, LEARN: tl.constexpr, DGRAD: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Backward of :func:`rf_fwd`: surrogate, then the linearised complex rotation."""
    n = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    m = n < total
    rem = n % M
    row = n * sn
    DT: tl.constexpr = gxr_ptr.dtype.element_ty
    s = _param(ks_ptr, rem, div_s)
    c = _param(kc_ptr, rem, div_c)
    k = tl.load(k_ptr + rem)
    hr = tl.zeros([BLOCK], DT)
    hi = tl.zeros([BLOCK], DT)
    acc_s = tl.zeros([BLOCK], DT)
    acc_c = tl.zeros([BLOCK], DT)
    acc_d = tl.zeros([BLOCK], DT)
    g_next = tl.zeros([BLOCK], DT)
    re0 = tl.load(re_init + n, mask=m, other=0.0)
    im0 = tl.load(im_init + n, mask=m, other=0.0)
    for i in range(T):
        t = T - 1 - i
        gs = _gather(g_ptr, row, t, k, T, st, m, SHIFT)
        g_im = gs * tl.load(rho_im_tr + row + t * st, mask=m, other=0.0)
        if PHASE:
            g_re = gs * tl.load(rho_re_tr + row + t * st, mask=m, other=0.0)
        else:
            g_re = tl.zeros_like(g_im)
        hr, hi = c * hr + s * hi + g_re, c * hi - s * hr + g_im
        if LEARN:
            pre = _prev_load(re_tr, re0, row, t, st, m)
            pim = _prev_load(im_tr, im0, row, t, st, m)
            acc_s += hi * pre - hr * pim
            acc_c += hr * pre + hi * pim
        if DGRAD:
            term, g_next = _delay_term(g_ptr, y_ptr, row, t, st, m, g_next)
            acc_d += term
        tl.store(gxr_ptr + row + t * st, hr, mask=m)
        tl.store(gxi_ptr + row + t * st, hi, mask=m)
    tl.store(acc_ptr + n, acc_s, mask=m)
    tl.store(acc_ptr + total + n, acc_c, mask=m)
    tl.store(acc_ptr + 2 * total + n, acc_d, mask=m)


# --------------------------------------------------------------------------- sigma-delta


@triton.jit
def sd_fwd(  # noqa: C901 — constexpr-specialised: bias, cumulative error, saved traces
    x_ptr, out_ptr, d_tr, mask_tr, last_ptr,
    sig0_ptr, bias_ptr, div_b, th_ptr, div_th, pre_ptr, res_ptr, err_ptr,
    k_ptr, prev_ptr, step_ptr, scale_q,
    total, M, T, sn, st,
    HAS_BIAS: tl.constexpr, CUM: tl.constexpr, QPOW2: tl.constexpr, SHIFT: tl.constexpr,
    SAVE_D: tl.constexpr, SAVE_MASK: tl.constexpr, BLOCK: tl.constexpr,
):
    """Sigma-delta forward: ``σ = Σx`` (+ state), ``a = relu(σ + b)``, delta encode, quantize."""
    n = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    m = n < total
    rem = n % M
    row = n * sn
    DT: tl.constexpr = out_ptr.dtype.element_ty
    sig0 = tl.load(sig0_ptr + n, mask=m, other=0.0).to(DT)
    th = _param(th_ptr, rem, div_th).to(DT)
    if HAS_BIAS:
        b = _param(bias_ptr, rem, div_b).to(DT)
    a_prev = tl.load(pre_ptr + n, mask=m, other=0.0).to(DT)
    res = tl.load(res_ptr + n, mask=m, other=0.0).to(DT)
    err = tl.load(err_ptr + n, mask=m, other=0.0).to(DT)
    k = tl.load(k_ptr + rem)
    prev = tl.load(prev_ptr + n, mask=m, other=0.0).to(DT)
    acc = tl.zeros([BLOCK], tl.float64)
    sg = tl.zeros([BLOCK], DT)
    y = tl.zeros([BLOCK], DT)
    step = tl.load(step_ptr).to(DT)
    for t in range(T):
        x = tl.load(x_ptr + row + t * st, mask=m, other=0.0)
        acc += x.to(tl.float64)
        sg = acc.to(DT) + sig0
        dend = sg
        if HAS_BIAS:
            dend = sg + b
        a = tl.where(dend > 0, dend, tl.zeros_like(dend))
        d = (a - a_prev) + res
        if CUM:
            err = err + d
            send = (tl.abs(err) >= th).to(DT)
            out = d * send
            err = err * (out == 0).to(DT)
        else:
            send = (tl.abs(d) >= th).to(DT)
            out = d * send
        res = d - out
        a_prev = a
        if QPOW2:
            q = out * scale_q
        else:
            q = tl.math.div_rn(out, tl.full(out.shape, step, DT))
        y = tl.floor(q) * step
        _emit(out_ptr, row, t, y, k, prev, T, st, m, SHIFT)
        if SAVE_D:
            tl.store(d_tr + row + t * st, d, mask=m)
        if SAVE_MASK:
            tl.store(mask_tr + row + t * st, (dend > 0).to(tl.int8), mask=m)
    tl.store(last_ptr + n, sg, mask=m)
    tl.store(last_ptr + total + n, a_prev, mask=m)
    tl.store(last_ptr + 2 * total + n, res, mask=m)
    tl.store(last_ptr + 3 * total + n, err, mask=m)
    tl.store(last_ptr + 4 * total + n, y, mask=m)


@triton.jit
def sd_bwd(  # noqa: C901 — constexpr-specialised like sd_fwd
    g_ptr, y_ptr, gx_ptr, acc_ptr, d_tr, mask_tr, th_ptr, div_th, k_ptr, tau, sg_scale,
    total, M, T, sn, st,
    SHIFT: tl.constexpr, LEARN_TH: tl.constexpr, DGRAD: tl.constexpr, BLOCK: tl.constexpr,
):
    """Sigma-delta backward: delta straight-through, relu mask, reverse cumulative sum."""
    n = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    m = n < total
    rem = n % M
    row = n * sn
    DT: tl.constexpr = gx_ptr.dtype.element_ty
    th = _param(th_ptr, rem, div_th).to(DT)
    k = tl.load(k_ptr + rem)
    hx = tl.zeros([BLOCK], DT)
    gy_next = tl.zeros([BLOCK], DT)
    acc_b = tl.zeros([BLOCK], DT)
    acc_th = tl.zeros([BLOCK], DT)
    acc_d = tl.zeros([BLOCK], DT)
    g_next = tl.zeros([BLOCK], DT)
    for i in range(T):
        t = T - 1 - i
        gy = _gather(g_ptr, row, t, k, T, st, m, SHIFT)
        ga = gy - gy_next
        gy_next = gy
        keep = tl.load(mask_tr + row + t * st, mask=m, other=0).to(DT)
        gd = ga * keep
        acc_b += gd
        hx += gd
        if LEARN_TH:
            d = tl.load(d_tr + row + t * st, mask=m, other=0.0)
            sub = tl.abs(d) - th
            rate = tl.where(sub > 0, -d * sg_scale * tl.exp(-sub / tau) / th, -_sign(d))
            acc_th += rate * gy
        if DGRAD:
            term, g_next = _delay_term(g_ptr, y_ptr, row, t, st, m, g_next)
            acc_d += term
        tl.store(gx_ptr + row + t * st, hx, mask=m)
    tl.store(acc_ptr + n, acc_b, mask=m)
    tl.store(acc_ptr + total + n, acc_th, mask=m)
    tl.store(acc_ptr + 2 * total + n, acc_d, mask=m)
