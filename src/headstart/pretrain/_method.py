"""What every pretraining method shares: its options, what it returns, and the registry that finds it.

A method is one file that registers a function
    method(backbone, examples, options, show_progress, checkpoints) -> Pretrained
which trains `backbone` in place on `examples` (labelled for supervised, inputs only otherwise) and
returns it with one history row per epoch. The recipe in `pretrain/__init__.py` loads the data and the
backbone, calls the method, and saves the backbone folder; methods never touch the disk themselves: they
hand their state to `checkpoints` after every epoch and resume from its latest one (None: no checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from .._registry import Registry
from ..backbones import Backbone
from ..checkpoints import Checkpoints
from ..data import Examples

__all__ = ["PretrainOptions", "Pretrained", "METHODS"]


@dataclass(frozen=True)
class PretrainOptions:
    epochs: Optional[int] = None      # None: the method's own default
    lr: Optional[float] = None        # None: the method's own default
    batch_size: int = 32
    seed: int = 0
    precision: str = "fp32"
    mask_prob: float = 0.15           # mlm: share of tokens masked (80% [MASK], 10% random, 10% kept)
    temperature: float = 0.1          # contrastive: NT-Xent temperature
    strategy: str = "full"            # supervised: how the backbone trains on the source task


@dataclass
class Pretrained:
    backbone: Backbone                                  # trained in place, ready to save
    history: list[dict] = field(default_factory=list)   # one row per epoch: {"epoch": n, "loss": x, ...}
    summary: dict = field(default_factory=dict)          # the final figures, for metrics.json


# name -> method(backbone, examples, options, show_progress, checkpoints) -> Pretrained
METHODS: Registry[Callable[[Backbone, Examples, PretrainOptions, bool, Optional[Checkpoints]], Pretrained]] = \
    Registry("pretraining method")
