"""bitfit: only the backbone's bias terms and the new head train (Ben Zaken et al., 2022): a fine-tune that
changes 0.1% of MiniLM's weights (0.6% of EfficientNet-Lite0's), so a small task has little room to overfit them."""

from dataclasses import dataclass

from . import Phase, Plan, register


@dataclass(frozen=True)
class BitfitOptions:
    epochs: int = 10
    lr: float = 1e-3
    backbone_lr_mult: float = 1.0  # biases are few and start small: they learn at the head's rate


@register("bitfit", BitfitOptions)
def bitfit(options: BitfitOptions, argument=None) -> Plan:
    return Plan("bitfit", (Phase("fine-tune", options.epochs, options.lr, train_from=0,
                                 backbone_lr_mult=options.backbone_lr_mult, params="bias"),))
