"""Errors raised by slayerc.

Every user-facing failure is a :class:`SlayerError` subclass whose message names what went wrong
(the node with its origin, or the file and key) and says what to do.  ``assert`` only guards
internal invariants.
"""

from __future__ import annotations


class SlayerError(Exception):
    """Base class of every error slayerc reports to its users."""


class FrontendError(SlayerError):
    """A model could not be traced or converted (unsupported op, module or control flow)."""


class ParseError(SlayerError):
    """A ``.sir`` text could not be parsed; the message starts with ``file:line:col``."""

    def __init__(self, message: str, filename: str = "<string>", line: int = 0, col: int = 0):
        self.filename, self.line, self.col, self.detail = filename, line, col, message
        super().__init__(f"{filename}:{line}:{col}: error: {message}")


class VerifyError(SlayerError):
    """A graph broke one or more IR invariants; ``problems`` lists every one of them."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        if len(self.problems) == 1:
            super().__init__(self.problems[0])
            return
        head = f"graph verification failed with {len(self.problems)} problems"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class PassError(SlayerError):
    """A pass failed, or a pipeline is malformed or ordered wrongly."""


class BackendError(SlayerError):
    """A backend could not read or write a file, or the graph does not fit the target."""


class RuntimeSimError(SlayerError):
    """The interpreter or a simulator could not run a graph or netlist."""


# ------------------------------------------------- specific errors (raised by one part each)


class DynamicsShapeError(SlayerError, ValueError):
    """A parameter or state does not fit the neuron shape of the input.

    Raised by :mod:`slayerc.runtime.timescan`.
    """


class DatasetError(SlayerError, FileNotFoundError):
    """The dataset files are missing or unreadable.

    Raised by :mod:`slayerc.frontend.slayer.obd.dataset.bdd100k`.
    """


class SynapseShapeError(SlayerError, ValueError):
    """An input does not fit a synapse (wrong rank or channel count).

    Raised by :mod:`slayerc.frontend.slayer.synapse.layer`.
    """


class ExportError(SlayerError):
    """A block or synapse cannot be written to a netx netlist as it is.

    Raised by :mod:`slayerc.frontend.slayer.synapse.layer`.
    """


class BlockError(SlayerError, ValueError):
    """A block was built with arguments it cannot use.

    Raised by :mod:`slayerc.frontend.slayer.block.base`.
    """


class EventError(SlayerError, ValueError):
    """Events that do not fit a tensor or a file format.

    Raised by :mod:`slayerc.frontend.slayer.io`.
    """


class DeltaShapeError(FrontendError, ValueError):
    """An input does not fit the delta unit's shape.

    Raised by :mod:`slayerc.frontend.slayer.axon.delta`.
    """


class DelayShapeError(FrontendError, ValueError):
    """An input does not fit a delay's channels.

    Raised by :mod:`slayerc.frontend.slayer.axon.delay`.
    """


class AutoError(FrontendError, ValueError):
    """A netlist layer holds something no slayer block can express.

    Raised by :mod:`slayerc.frontend.slayer.auto`.
    """


class NeuronShapeError(FrontendError, ValueError):
    """An input does not fit the neuron's shape (fixed by the first call).

    Raised by :mod:`slayerc.frontend.slayer.neuron.base`.
    """


class NeuronConfigError(FrontendError, ValueError):
    """A neuron was constructed with inconsistent parameters.

    Raised by :mod:`slayerc.frontend.slayer.neuron.base`.
    """


class LossError(SlayerError, ValueError):
    """A loss was configured or called with values it cannot use.

    Raised by :mod:`slayerc.frontend.slayer.loss`.
    """


class SigmaShapeError(FrontendError, ValueError):
    """An input does not fit the sigma unit's shape.

    Raised by :mod:`slayerc.frontend.slayer.dendrite.sigma`.
    """


class ClassifierError(SlayerError, ValueError):
    """Unknown confidence mode or bad input.

    Raised by :mod:`slayerc.frontend.slayer.classifier`.
    """
