"""Training assistant (``slayer.utils.Assistant``): one call per batch for train/valid/test.

Same interface as lava-dl's: ``Assistant(net, error, optimizer, stats=None, classifier=None,
count_log=False, lam=None)``; ``train(input, target)`` runs the forward pass, the loss, the
backward pass and the optimizer step, and ``valid``/``test`` run the forward pass without
gradients; each adds the batch's size, loss and (with a ``classifier``) correct predictions to
``stats.training`` / ``stats.validation`` / ``stats.testing`` and returns the network output.

The network's return value follows lava-dl's protocol: ``output`` by default, ``(output,
count)`` with ``count_log=True`` (the event-rate log, returned by the methods beside the
output), ``(output, net_loss)`` with ``lam`` set, and ``(output, net_loss, count)`` with both.
``train`` adds ``lam · net_loss`` (e.g. a layer-wise sparsity loss, see
``slayer.loss.SparsityEnforcer``) to the loss before the backward pass; the statistics log the
loss without it, and ``valid``/``test`` ignore ``net_loss``.  Inputs and targets move to the
device of the network's first parameter.
``reduce_lr(factor)`` divides every learning rate of the optimizer by ``factor``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from slayerc.errors import FrontendError

__all__ = ["Assistant"]


class Assistant:
    """Runs one batch of training, validation or testing and keeps the statistics."""

    def __init__(self, net: torch.nn.Module, error: Callable[..., torch.Tensor],
                 optimizer: torch.optim.Optimizer, stats: Any = None,
                 classifier: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 count_log: bool = False, lam: float | None = None):
        self.net, self.error, self.optimizer = net, error, optimizer
        self.stats, self.classifier = stats, classifier
        self.count_log, self.lam = count_log, lam

    @property
    def device(self) -> torch.device:
        """Where the network's parameters live (CPU for a network without parameters)."""
        param = next(self.net.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    def reduce_lr(self, factor: float = 10 / 3) -> None:
        """Divide the learning rate of every parameter group by ``factor``."""
        for group in self.optimizer.param_groups:
            group["lr"] /= factor

    def _forward(self, input: torch.Tensor) -> tuple[Any, Any, Any]:
        """``(output, net_loss, count)`` from the network's return value (None where absent)."""
        result = self.net(input)
        fields = ("output",) + (("net_loss",) if self.lam is not None else ()) + (
            ("count",) if self.count_log else ())
        if len(fields) == 1:
            return result, None, None
        if not (isinstance(result, tuple) and len(result) == len(fields)):
            got = (f"a tuple of {len(result)}" if isinstance(result, tuple)
                   else type(result).__name__)
            raise FrontendError(
                f"Assistant(count_log={self.count_log}, lam={self.lam}): the network must return "
                f"({', '.join(fields)}), got {got}")
        named = dict(zip(fields, result))
        return named["output"], named.get("net_loss"), named.get("count")

    def _step(self, phase: str, input: torch.Tensor, target: torch.Tensor,
              learn: bool) -> Any:
        device = self.device
        input, target = input.to(device), target.to(device)
        output, net_loss, count = self._forward(input)
        loss = self.error(output, target)
        stat = getattr(self.stats, phase) if self.stats is not None else None
        if stat is not None:
            stat.num_samples += input.shape[0]
            stat.loss_sum += float(loss.detach()) * output.shape[0]
            if self.classifier is not None:
                stat.correct_samples += int(torch.sum(self.classifier(output) == target))
        if learn:
            if self.lam is not None:
                loss = loss + self.lam * net_loss
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return (output, count) if self.count_log else output

    def train(self, input: torch.Tensor, target: torch.Tensor) -> Any:
        """One training step on a batch; returns the output (and count with ``count_log``)."""
        self.net.train()
        return self._step("training", input, target, learn=True)

    def valid(self, input: torch.Tensor, target: torch.Tensor) -> Any:
        """Forward a validation batch without gradients and log it."""
        self.net.eval()
        with torch.no_grad():
            return self._step("validation", input, target, learn=False)

    def test(self, input: torch.Tensor, target: torch.Tensor) -> Any:
        """Forward a test batch without gradients and log it."""
        self.net.eval()
        with torch.no_grad():
            return self._step("testing", input, target, learn=False)
