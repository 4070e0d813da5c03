"""linear-probe: the backbone stays frozen, only a new linear head trains (on cached features)."""

from dataclasses import dataclass

from . import Phase, Plan, register


@dataclass(frozen=True)
class LinearProbeOptions:
    epochs: int = 30    # cheap: the features are computed once, each epoch only trains the head
    lr: float = 1e-2


@register("linear-probe", LinearProbeOptions)
def linear_probe(options: LinearProbeOptions, argument=None) -> Plan:
    return Plan("linear-probe", (Phase("probe", options.epochs, options.lr, train_from=None),))
