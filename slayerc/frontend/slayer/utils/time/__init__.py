"""Time-axis utilities (``slayer.utils.time``): ``shift`` and ``replicate`` (functions, as
lava-dl; the modules are ``slayerc.slayer.utils.time.shift``/``.replicate`` in sys.modules)."""

from .replicate import replicate
from .shift import shift

__all__ = ["replicate", "shift"]
