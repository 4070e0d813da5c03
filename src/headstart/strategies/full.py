"""full: everything trains; the pretrained part at a 10x smaller learning rate than the new head."""

from dataclasses import dataclass

from . import Phase, Plan, register


@dataclass(frozen=True)
class FullOptions:
    epochs: int = 10
    lr: float = 1e-3
    backbone_lr_mult: float = 0.1


@register("full", FullOptions)
def full(options: FullOptions, argument=None) -> Plan:
    return Plan("full", (Phase("fine-tune", options.epochs, options.lr, train_from=0,
                               backbone_lr_mult=options.backbone_lr_mult),))
