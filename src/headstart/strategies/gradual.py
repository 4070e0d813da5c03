"""gradual: unfreezing from the top down (ULMFiT, Howard & Ruder 2018): the first epoch trains the new head
alone, each later one unfreezes one more group from the top, so that the head settles before the features move."""

from dataclasses import dataclass

from . import Phase, Plan, register


@dataclass(frozen=True)
class GradualOptions:
    epochs: int = 10
    lr: float = 1e-3
    backbone_lr_mult: float = 0.1


@register("gradual", GradualOptions)
def gradual(options: GradualOptions, argument=None) -> Plan:
    return Plan("gradual", (Phase("fine-tune", options.epochs, options.lr, train_from=0,
                                  backbone_lr_mult=options.backbone_lr_mult, unfreeze="gradual"),))
