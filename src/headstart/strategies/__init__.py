"""Strategies: each file registers one function that turns options into a Plan.

    plan("linear-probe")            frozen backbone, new head (features computed once)
    plan("freeze:3", epochs=5)      first 3 groups frozen, the rest fine-tuned
    plan("full"), plan("lp-ft"), plan("scratch")
    plan("linear-probe-cv")         frozen backbone, head fitted to convergence, L2 strength by cross-validation
    plan("l2sp"), plan("llrd"), plan("gradual"), plan("bitfit"), plan("lora")   regularised fine-tuning
    plan("wise-ft")                 lp-ft, then the fine-tuned weights mixed with the probed ones (WiSE-FT)
    plan("baseline")                TF-IDF / pixels + the task's scikit-learn estimator: no backbone at all
    plan("setfit")                  the backbone on pairs of examples (SetFit), then a head fitted by L-BFGS
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Callable, Optional

from .._registry import Registry
from ..errors import HeadstartError
from ._plan import Phase, Plan

__all__ = ["Phase", "Plan", "STRATEGIES", "register", "plan", "strategy_names", "check_fits"]

# name -> (options class, builder(options, argument) -> Plan, argument hint or None)
STRATEGIES: Registry[tuple[type, Callable, Optional[str]]] = Registry("strategy")


def register(name: str, options: type, argument: Optional[str] = None):
    """Register a strategy builder; `argument` names what follows 'name:' (e.g. K in freeze:K)."""
    def add(builder):
        STRATEGIES.register(name)((options, builder, argument))
        return builder
    return add


def strategy_names() -> list[str]:
    return [f"{n}:{STRATEGIES.get(n)[2]}" if STRATEGIES.get(n)[2] else n for n in STRATEGIES.names()]


def plan(name: str, epochs: Optional[int] = None, lr: Optional[float] = None) -> Plan:
    """The Plan of a strategy name, with --epochs / --lr overriding its defaults."""
    base, _, argument = name.partition(":")
    if base not in STRATEGIES:
        raise HeadstartError(STRATEGIES.unknown_message(name).replace(
            ", ".join(STRATEGIES.names()), ", ".join(strategy_names())))
    options_cls, builder, needs = STRATEGIES.get(base)
    if needs and not argument:
        raise HeadstartError(f"strategy '{base}' needs {needs}: write {base}:{needs}, e.g. {base}:2")
    if argument and not needs:
        raise HeadstartError(f"strategy '{base}' takes no ':{argument}'; write just '{base}'")
    options = options_cls()
    overrides = {k: v for k, v in {"epochs": epochs, "lr": lr}.items() if v is not None}
    known = {f.name for f in fields(options_cls)}
    options = replace(options, **{k: v for k, v in overrides.items() if k in known})
    return builder(options, argument or None)


def check_fits(plan: Plan, backbone) -> None:
    """Refuse a plan the backbone cannot follow: freezing more layer groups than it has (freeze:20 on 9 groups),
    or LoRA on a backbone without attention projections."""
    n_groups = len(backbone.layer_groups())
    for phase in plan.phases:
        if phase.train_from is not None and phase.train_from > n_groups:
            raise HeadstartError(f"strategy {plan.strategy}: the backbone has {n_groups} layer groups, "
                                 f"so K can be at most {n_groups}")
        if phase.lora_rank and not backbone.attention_projections():
            raise HeadstartError(f"strategy {plan.strategy} adapts attention projections (query and value), and this "
                                 f"{backbone.modality} backbone has none (a convolutional network): use bitfit, l2sp "
                                 "or freeze:K instead")


# each registers itself
from . import (baseline, bitfit, freeze, full, gradual, l2sp, linear_probe, linear_probe_cv,  # noqa: E402,F401
               llrd, lora, lp_ft, scratch, setfit, wise_ft)
