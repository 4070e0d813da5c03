"""lp-ft: a linear probe first, then a gentle full fine-tune from that head (Kumar et al., 2022).

Starting the fine-tune from a trained head keeps the random head's large gradients from
distorting the pretrained features.
"""

from dataclasses import dataclass

from . import Phase, Plan, register


@dataclass(frozen=True)
class LpFtOptions:
    epochs: int = 10       # per phase
    lr: float = 1e-2       # the probe's; the fine-tune runs everything at lr * finetune_mult
    finetune_mult: float = 0.01


@register("lp-ft", LpFtOptions)
def lp_ft(options: LpFtOptions, argument=None) -> Plan:
    return Plan("lp-ft", (
        Phase("probe", options.epochs, options.lr, train_from=None),
        Phase("fine-tune", options.epochs, options.lr * options.finetune_mult, train_from=0, backbone_lr_mult=1.0),
    ))
