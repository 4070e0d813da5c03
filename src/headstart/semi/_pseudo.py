"""Pseudo-labels: which unlabelled examples the teacher is sure enough about, and what they are worth.

    chosen = select_curriculum(proba, share=0.5, class_shares=[0.5, 0.5])    # round 2 of a 0.25-step curriculum
    chosen = select_pseudo_labels(proba, threshold=0.9, per_class_cap=100)   # an absolute threshold
    chosen.index, chosen.targets, chosen.confidence
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PseudoLabels", "select_pseudo_labels", "select_curriculum", "pseudo_label_accuracy"]


@dataclass
class PseudoLabels:
    """Rows of the unlabelled pool that were kept, the class index given to each, and the teacher's probability."""

    index: np.ndarray       # int64, ascending
    targets: np.ndarray     # int64 class indices
    confidence: np.ndarray  # float, >= the threshold

    def __len__(self) -> int:
        return len(self.index)


def select_pseudo_labels(proba: np.ndarray, threshold: float, per_class_cap: int | None = None) -> PseudoLabels:
    """Keep rows whose top probability reaches `threshold`; with a cap, only each class's N most confident."""
    predicted, confidence = proba.argmax(axis=1), proba.max(axis=1)
    keep = np.flatnonzero(confidence >= threshold)
    if per_class_cap is not None:
        capped = []
        for label in np.unique(predicted[keep]):
            rows = keep[predicted[keep] == label]
            # Most confident first; ties go to the earlier row, so the choice does not depend on sort internals.
            order = np.lexsort((rows, -confidence[rows]))
            capped.extend(rows[order[:per_class_cap]])
        keep = np.sort(np.asarray(capped, dtype=np.int64))
    keep = keep.astype(np.int64)
    return PseudoLabels(keep, predicted[keep].astype(np.int64), confidence[keep].astype(float))


def select_curriculum(proba: np.ndarray, share: float, class_shares, threshold: float | None = None,
                      per_class_cap: int | None = None) -> PseudoLabels:
    """Curriculum Labeling: the `share` of the pool the teacher ranks most confident, split by class shares.

    Class c gets the round(share * len(pool) * class_shares[c]) rows predicted as c with the highest probability
    (all of them if fewer), so a confident majority class cannot crowd out the others; a rank, unlike an absolute
    threshold, does not depend on how calibrated the teacher is. `threshold` and `per_class_cap` narrow it further.
    """
    predicted, confidence = proba.argmax(axis=1), proba.max(axis=1)
    wanted = np.round(min(share, 1.0) * len(proba) * np.asarray(class_shares, dtype=float)).astype(np.int64)
    if per_class_cap is not None:
        wanted = np.minimum(wanted, per_class_cap)
    eligible = np.ones(len(proba), dtype=bool) if threshold is None else confidence >= threshold
    keep = []
    for label, n in enumerate(wanted):
        rows = np.flatnonzero((predicted == label) & eligible)
        keep.extend(rows[np.lexsort((rows, -confidence[rows]))[:n]])  # most confident first, ties to the earlier row
    keep = np.sort(np.asarray(keep, dtype=np.int64))
    return PseudoLabels(keep, predicted[keep].astype(np.int64), confidence[keep].astype(float))


def pseudo_label_accuracy(chosen: PseudoLabels, labels: list, truth: list | None) -> float | None:
    """Share of kept pseudo-labels (`labels`, in chosen's order) that match the pool's own labels exactly (a class,
    a whole tag set); None when the pool has none (or none kept)."""
    if truth is None or not len(chosen):
        return None
    return float(np.mean([label == truth[i] for i, label in zip(chosen.index, labels)]))
