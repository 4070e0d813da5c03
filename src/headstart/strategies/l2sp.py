"""l2sp: everything fine-tunes as in `full`, but the pretrained weights are pulled back towards where they
started instead of towards zero (L2-SP, Li et al. 2018), so that a small task cannot drag them far."""

from dataclasses import dataclass

from . import Phase, Plan, register


@dataclass(frozen=True)
class L2spOptions:
    epochs: int = 10
    lr: float = 1e-3
    backbone_lr_mult: float = 0.1
    strength: float = 100.0  # a weight settles within about 1 / strength of its pretrained value (events.L2SP)


@register("l2sp", L2spOptions)
def l2sp(options: L2spOptions, argument=None) -> Plan:
    return Plan("l2sp", (Phase("fine-tune", options.epochs, options.lr, train_from=0,
                               backbone_lr_mult=options.backbone_lr_mult, l2sp=options.strength),))
