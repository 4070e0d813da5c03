"""lora: the backbone's attention projections learn low-rank updates through PEFT (Hu et al., 2021) while the rest
stays frozen; the updates are merged into the weights when training ends, so the saved model is a plain one."""

from dataclasses import dataclass

from . import Phase, Plan, register


@dataclass(frozen=True)
class LoraOptions:
    epochs: int = 10
    lr: float = 1e-3
    backbone_lr_mult: float = 1.0  # the low-rank factors start at zero: they learn at the head's rate
    rank: int = 8


@register("lora", LoraOptions)
def lora(options: LoraOptions, argument=None) -> Plan:
    return Plan("lora", (Phase("fine-tune", options.epochs, options.lr, train_from=0,
                               backbone_lr_mult=options.backbone_lr_mult, lora_rank=options.rank),))
