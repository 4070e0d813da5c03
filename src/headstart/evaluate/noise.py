"""How far a test score could move with another test set of the same size: a bootstrap interval.

The test examples are resampled with replacement and the task's headline score recomputed on each resample; the
interval holds the middle `level` of those scores. It says how much a single test set's score is worth, not how
much a retrained model would differ (compare's folds and seeds say that).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["score_interval", "RESAMPLES"]

RESAMPLES = 200


def score_interval(task, truth: list[Any], predicted: list[Any], seed: int = 0, resamples: int = RESAMPLES,
                  level: float = 0.95) -> dict:
    """{'metric', 'low', 'high', 'level', 'resamples'}: the bootstrap interval of the task's score on this test set."""
    rng = np.random.default_rng(seed)
    per_example = task.example_scores(truth, predicted)  # a mean's terms: resampled directly, ~1,000x faster
    scores = []
    for _ in range(resamples):
        pick = rng.integers(0, len(truth), len(truth))
        scores.append(per_example[pick].mean() if per_example is not None else
                      task.metrics([truth[i] for i in pick], [predicted[i] for i in pick])[task.score_key])
    scores = np.asarray(scores, dtype=float)
    scores = scores[np.isfinite(scores)]  # a resample can leave a score undefined (R² of one repeated value)
    tail = (1 - level) / 2
    low, high = (np.quantile(scores, [tail, 1 - tail]).tolist() if len(scores) else (None, None))
    return {"metric": task.score_key, "low": low, "high": high, "level": level, "resamples": resamples}
