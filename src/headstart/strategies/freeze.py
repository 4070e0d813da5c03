"""freeze:K: the first K layer groups stay frozen (general, early features); the rest fine-tune."""

from dataclasses import dataclass

from ..errors import HeadstartError
from . import Phase, Plan, register


@dataclass(frozen=True)
class FreezeOptions:
    epochs: int = 10
    lr: float = 1e-3
    backbone_lr_mult: float = 0.1  # the unfrozen pretrained groups learn 10x slower than the new head


@register("freeze", FreezeOptions, argument="K")
def freeze(options: FreezeOptions, argument: str) -> Plan:
    if not argument.isdigit():
        raise HeadstartError(f"strategy 'freeze:{argument}': K is how many layer groups to freeze, a "
                             "whole number from 0, e.g. freeze:2")
    k = int(argument)
    return Plan(f"freeze:{k}", (Phase("fine-tune", options.epochs, options.lr, train_from=k,
                                      backbone_lr_mult=options.backbone_lr_mult),))
