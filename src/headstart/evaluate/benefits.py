"""The three benefits of transfer against training from scratch, with their fold-to-fold noise.

start      accuracy after the first epoch (validation)
slope      area under the validation learning curve over scratch's epochs (mean accuracy per epoch),
           and the epochs needed to reach 90% of scratch's final validation accuracy
asymptote  final test accuracy
Each difference to scratch is paired by fold; it is `significant` when a two-sided paired t-test over
the folds gives p < 0.05 (with one fold there is no noise estimate, and nothing is significant).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["start", "area_under_curve", "epochs_to_reach", "paired_difference", "benefits"]

ALPHA = 0.05


def start(curve: list[float]) -> float:
    """Validation accuracy after the first epoch (curve[0] is before training)."""
    return curve[1] if len(curve) > 1 else curve[0]


def _padded(curve: list[float], epochs: int) -> list[float]:
    """Epochs 1..epochs of the curve; an early-stopped curve keeps its last value."""
    trained = curve[1:] or curve[:1]
    return (trained + [trained[-1]] * epochs)[:epochs]


def area_under_curve(curve: list[float], epochs: int) -> float:
    """Mean validation accuracy over the first `epochs` epochs: 1.0 is perfect from the first epoch on."""
    return float(np.mean(_padded(curve, epochs)))


def epochs_to_reach(curve: list[float], target: float) -> int | None:
    """The first epoch whose validation accuracy reaches target; None when it never does."""
    for epoch, accuracy in enumerate(curve[1:], start=1):
        if accuracy >= target:
            return epoch
    return None


def paired_difference(values: list[float], scratch: list[float]) -> dict:
    """Mean difference to scratch over paired folds, its 95% interval, p-value and significance."""
    diffs = np.asarray(values, dtype=float) - np.asarray(scratch, dtype=float)
    result = {"value": float(np.mean(values)), "scratch": float(np.mean(scratch)),
              "delta_vs_scratch": float(diffs.mean()), "p_value": None, "interval": None, "significant": False}
    if len(diffs) >= 2:
        spread = diffs.std(ddof=1)
        half = float(stats.t.ppf(0.975, len(diffs) - 1) * spread / math.sqrt(len(diffs)))
        result["interval"] = [float(diffs.mean()) - half, float(diffs.mean()) + half]
        if spread == 0:
            result["p_value"] = 0.0 if diffs.mean() != 0 else 1.0
        else:
            result["p_value"] = float(stats.ttest_rel(values, scratch).pvalue)
        result["significant"] = bool(result["p_value"] < ALPHA)
    return result


def benefits(curves: list[list[float]], accuracies: list[float],
             scratch_curves: list[list[float]], scratch_accuracies: list[float]) -> dict:
    """start, slope and asymptote of one strategy against scratch, fold by fold."""
    epochs = max(len(c) - 1 for c in scratch_curves) or 1
    slope = paired_difference([area_under_curve(c, epochs) for c in curves],
                              [area_under_curve(c, epochs) for c in scratch_curves])
    targets = [0.9 * c[-1] for c in scratch_curves]
    reach = [epochs_to_reach(c, t) for c, t in zip(curves, targets)]
    scratch_reach = [epochs_to_reach(c, t) for c, t in zip(scratch_curves, targets)]
    slope["epochs_to_90pct_of_scratch"] = _mean_or_none(reach)
    slope["scratch_epochs_to_90pct"] = _mean_or_none(scratch_reach)
    return {
        "start": paired_difference([start(c) for c in curves], [start(c) for c in scratch_curves]),
        "slope": slope,
        "asymptote": paired_difference(accuracies, scratch_accuracies),
    }


def _mean_or_none(values: list[int | None]) -> float | None:
    return None if any(v is None for v in values) else float(np.mean(values))
