"""linear-probe-cv: the backbone stays frozen and the new linear head is fitted as the convex problem it is
(L-BFGS to convergence, the L2 strength chosen by cross-validation on every labelled example, then refit on all
of them), as a tuned logistic regression on the same features would be; no validation split is given up."""

from dataclasses import dataclass

from . import Phase, Plan, register


@dataclass(frozen=True)
class LinearProbeCvOptions:
    folds: int = 5


@register("linear-probe-cv", LinearProbeCvOptions)
def linear_probe_cv(options: LinearProbeCvOptions, argument=None) -> Plan:
    return Plan("linear-probe-cv", (Phase("probe", 1, 0.0, train_from=None, solver="lbfgs", folds=options.folds),))
