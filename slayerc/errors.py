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
