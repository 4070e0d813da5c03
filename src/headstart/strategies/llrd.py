"""llrd: everything fine-tunes as in `full`, with layer-wise learning-rate decay: the top group at the backbone's
rate, each group below it at `decay` times the rate of the one above (general early features move least)."""

from dataclasses import dataclass

from . import Phase, Plan, register


@dataclass(frozen=True)
class LlrdOptions:
    epochs: int = 10
    lr: float = 1e-3
    backbone_lr_mult: float = 0.1  # the top group's rate, relative to the head's
    decay: float = 0.8


@register("llrd", LlrdOptions)
def llrd(options: LlrdOptions, argument=None) -> Plan:
    return Plan("llrd", (Phase("fine-tune", options.epochs, options.lr, train_from=0,
                               backbone_lr_mult=options.backbone_lr_mult, lr_decay=options.decay),))
