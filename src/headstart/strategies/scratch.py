"""scratch: the same architecture from random weights, every group at one learning rate: the baseline."""

from dataclasses import dataclass

from . import Phase, Plan, register


@dataclass(frozen=True)
class ScratchOptions:
    epochs: int = 20
    lr: float = 1e-3


@register("scratch", ScratchOptions)
def scratch(options: ScratchOptions, argument=None) -> Plan:
    return Plan("scratch", (Phase("train", options.epochs, options.lr, train_from=0, backbone_lr_mult=1.0,
                                        update_bn_stats=True),),
                init="random")
