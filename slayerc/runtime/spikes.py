"""Spike functions with surrogate gradients (``spec/slayer-dynamics.md`` §2).

Forward passes compare in the dtype of the state, exactly as lava-dl does, so a float32 model
spikes on the same steps.  Backward passes are lava-dl's surrogate derivatives; no gradient flows
to the threshold.
"""

from __future__ import annotations

import torch


def _as_tensor(th, like: torch.Tensor) -> torch.Tensor:
    if torch.is_tensor(th):
        return th.detach()
    return torch.tensor(th, dtype=like.dtype, device=like.device)


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, threshold, tau_rho, scale_rho, graded):
        if graded or (torch.is_tensor(threshold) and threshold.shape != v.shape):
            fired = v >= threshold
            out = v * fired if graded else fired.to(v.dtype)
        else:  # the comparison written straight as 0/1 in v's dtype: one tensor, not two
            out = torch.ge(v, threshold, out=torch.empty_like(v))
        ctx.save_for_backward(v, _as_tensor(threshold, v))
        ctx.params = (float(tau_rho), float(scale_rho), bool(graded))
        return out

    @staticmethod
    def backward(ctx, grad):
        v, th = ctx.saved_tensors
        tau, scale, graded = ctx.params
        # in place after the first op, same values: ``-|d|/τ`` is ``|d|/(−τ)``, and the final
        # products are commutative
        d = torch.sub(v, th)
        if graded:
            rho = d.clamp_(max=0).div_(tau).exp_().mul_(scale)
        else:
            rho = d.abs_().div_(-tau).exp_().mul_(scale / 2 / tau)
        return rho.mul_(grad), None, None, None, None


def spike(
    v: torch.Tensor, threshold, tau_rho: float, scale_rho: float, graded: bool = False
) -> torch.Tensor:
    """Real spike ``s = H(v − θ)`` (graded: ``s = H(v − θ)·v``).

    Surrogate derivative (lava-dl ``spike.Spike``):

    .. math::
        \\partial s/\\partial v = \\frac{\\sigma}{2\\tau} e^{-|v-\\vartheta|/\\tau}
        \\quad\\text{or, graded,}\\quad \\sigma\\, e^{\\min(v-\\vartheta, 0)/\\tau}

    Args:
        v: state ``[N, *S, T]``.
        threshold: float or tensor broadcastable to ``v`` (ALIF: ``θ[t] + r[t]``).
        tau_rho: ``τ`` of the surrogate.
        scale_rho: ``σ`` of the surrogate.
        graded: emit the state value instead of 1.
    """
    return _Spike.apply(v, threshold, tau_rho, scale_rho, graded)


def _delayed(im: torch.Tensor, im_last) -> torch.Tensor:
    """``im[t−1]`` with ``im[−1] = im_last`` (a tensor broadcastable to ``[N, *S]`` or a number)."""
    out = torch.empty_like(im)
    out[..., 1:] = im[..., :-1]
    out[..., 0] = im_last if im_last is not None else 0
    return out


class _ComplexSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, re, im, threshold, tau_rho, scale_rho, graded, im_last):
        fired = (re >= threshold) & (_delayed(im, im_last) < 0) & (im >= 0)
        out = re * fired if graded else fired.to(re.dtype)
        ctx.save_for_backward(re, im, _as_tensor(threshold, re))
        ctx.params = (float(tau_rho), float(scale_rho), bool(graded))
        return out

    @staticmethod
    def backward(ctx, grad):
        re, im, th = ctx.saved_tensors
        tau, scale, graded = ctx.params
        if graded:
            d_re = torch.exp(-(th - re).clamp(min=0) / tau)
        else:
            d_re = (1 / 2 / tau) * torch.exp(-torch.abs(re - th) / tau)
        d_im = (1 / 2 / tau) * torch.exp(-torch.abs(im) / tau)
        step = 0.5 * (1 + torch.sign(re - th) * (1 - 2 * tau * d_re))
        g_re = scale * d_re * d_im
        g_im = -(scale / tau) * torch.sign(im) * d_im * step
        return grad * g_re, grad * g_im, None, None, None, None, None


def complex_spike(
    re: torch.Tensor,
    im: torch.Tensor,
    threshold,
    tau_rho: float,
    scale_rho: float,
    graded: bool = False,
    im_last=None,
) -> torch.Tensor:
    """Phase spike: ``s[t] = (re[t] ≥ θ) ∧ (im[t−1] < 0) ∧ (im[t] ≥ 0)`` (graded: times ``re``).

    ``im[−1]`` is ``im_last`` (the neuron's stored imaginary state; 0 when None).  Surrogate
    (lava-dl ``spike.complex``), with ``δ_re = e^{−|re−θ|/τ}/2τ`` (graded:
    ``e^{−max(θ−re,0)/τ}``), ``δ_im = e^{−|im|/τ}/2τ`` and
    ``step = ½(1 + sign(re−θ)(1 − 2τδ_re))``:

    .. math::
        \\partial s/\\partial re = \\sigma\\,\\delta_{re}\\,\\delta_{im}, \\qquad
        \\partial s/\\partial im = -\\tfrac{\\sigma}{\\tau}\\,\\operatorname{sign}(im)\\,
                                    \\delta_{im}\\,\\text{step}
    """
    return _ComplexSpike.apply(re, im, threshold, tau_rho, scale_rho, graded, im_last)
