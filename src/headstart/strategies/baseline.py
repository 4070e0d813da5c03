"""baseline: the classical floor as a run of its own. TF-IDF (texts) or pixels (images) fitted on the training
examples, the task's scikit-learn estimator on them, its coefficients in the head: saved, predicted and evaluated
like any run, and raced by auto, which picks it when it wins on validation."""

from dataclasses import dataclass

from ..baselines import BASELINE_NAME
from . import Phase, Plan, register


@dataclass(frozen=True)
class BaselineOptions:
    pass


@register(BASELINE_NAME, BaselineOptions)
def baseline(options: BaselineOptions, argument=None) -> Plan:
    return Plan(BASELINE_NAME, (Phase(BASELINE_NAME, 1, 0.0, solver="classical"),), init="classical")
