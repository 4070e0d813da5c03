"""select: choose before training. `rank` scores candidate backbones on a task from their frozen features.

    headstart.rank("builtin:digits", backbones=["efficientnet-lite0", "efficientnet-lite0:random"], image_size=32)
"""

from .rank import RankSpec, rank
from .scores import DEFAULT_METRICS, METRICS, hscore, leep, logme, nce
from .advise import Advice, advise
from .auto import AUTO, Race, race, resolve_auto

__all__ = ["rank", "RankSpec", "logme", "hscore", "leep", "nce", "METRICS", "DEFAULT_METRICS",
           "advise", "Advice", "AUTO", "Race", "race", "resolve_auto"]
