"""setfit: contrastive fine-tuning on pairs of labelled examples, then a head fitted on the new features (SetFit,
Tunstall et al., 2022): with a few labels per class, the pairs multiply what the body learns from (each example
is in many pairs), and the head is a convex fit, as linear-probe-cv fits it. Classification only."""

from dataclasses import dataclass

from . import Phase, Plan, register


@dataclass(frozen=True)
class SetFitOptions:
    epochs: int = 1      # of pairs; SetFit's default
    lr: float = 2e-5     # the body's (SetFit's default body learning rate); the pairs phase trains no head
    folds: int = 5       # the head's cross-validation, as linear-probe-cv


@register("setfit", SetFitOptions)
def setfit(options: SetFitOptions, argument=None) -> Plan:
    return Plan("setfit", (
        Phase("pairs", options.epochs, options.lr, train_from=0, backbone_lr_mult=1.0, objective="pairs"),
        Phase("head", 1, 0.0, train_from=None, solver="lbfgs", folds=options.folds),
    ))
