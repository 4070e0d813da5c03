"""Classical baselines that need no pretraining: the honest floor every transfer must beat.

Inputs: TF-IDF of words and word pairs for text, standardised 16x16 grayscale pixels for images. The last step is
the Task's (tasks/): logistic regression with C chosen by cross-validation for classes, ridge regression for
numbers, one logistic regression per tag for multi-label; for a tag per word, each word's most frequent tag.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .data import Examples
from .tasks import Task

__all__ = ["fit_baseline", "predict_baseline", "BASELINE_NAME"]

BASELINE_NAME = "baseline"
PIXELS = 16


def _pixels(images: list) -> np.ndarray:
    rows = []
    for image in images:
        x = torch.from_numpy(np.asarray(image, dtype=np.float32))
        x = x.mean(-1) if x.ndim == 3 else x
        rows.append(F.interpolate(x[None, None], size=(PIXELS, PIXELS), mode="area").flatten().numpy())
    return np.stack(rows) / 255.0


def fit_baseline(train: Examples, task: Task, seed: int = 0):
    """A fitted scikit-learn pipeline on train's raw inputs; `predict_baseline` turns its output into labels."""
    head, targets, tune = task.baseline(train.labels, seed)
    if task.reads_words:  # the Task's estimator reads the words itself (the most frequent tag of each)
        return head.fit(train.inputs, targets)
    if train.modality == "text":
        pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1), head)
    else:
        pipeline = make_pipeline(StandardScaler(), head)
    if tune is not None:  # the whole pipeline is cross-validated, its input step refitted on every fold
        grid, cv = tune
        step = pipeline.steps[-1][0]
        pipeline = GridSearchCV(pipeline, {f"{step}__{k}": v for k, v in grid.items()}, cv=cv)
    return pipeline.fit(_inputs(train), targets)


def predict_baseline(model, examples: Examples, task: Task) -> list:
    return task.baseline_labels(model.predict(_inputs(examples)))


def _inputs(examples: Examples):
    return examples.inputs if examples.modality == "text" else _pixels(examples.inputs)  # texts, or lists of words
