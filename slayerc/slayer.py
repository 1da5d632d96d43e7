"""``import slayerc.slayer as slayer``: the drop-in replacement for ``lava.lib.dl.slayer``.

This module is an alias of :mod:`slayerc.frontend.slayer`: importing it yields that package, and
every submodule is registered under ``slayerc.slayer.*`` too, so ``import
slayerc.slayer.block.cuba`` and ``from slayerc.slayer.neuron.norm import MeanOnlyBatchNorm``
resolve to the same module objects (no second copy of any class).
"""

import importlib
import pkgutil
import sys

from slayerc.frontend import slayer as _impl


def _alias_submodules(package, alias: str) -> None:
    prefix = package.__name__
    for info in pkgutil.walk_packages(package.__path__, prefix + "."):
        module = importlib.import_module(info.name)
        sys.modules[alias + info.name[len(prefix):]] = module


_alias_submodules(_impl, __name__)
sys.modules[__name__] = _impl
