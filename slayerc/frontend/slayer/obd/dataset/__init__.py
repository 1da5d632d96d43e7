"""Object-detection datasets read from local files (``slayer.obd.dataset``): ``BDD`` (BDD100K
MOT layout).  lava-dl's ``PropheseeAutomotive`` is not provided."""

from .bdd100k import BDD

__all__ = ["BDD"]
