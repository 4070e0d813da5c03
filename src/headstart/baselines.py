"""Classical baselines that need no pretraining: the honest floor every transfer must beat.

Text: TF-IDF of words and word pairs + logistic regression with C chosen by cross-validation.
Images: logistic regression on standardised 16x16 grayscale pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .data import Examples

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


def fit_baseline(train: Examples, seed: int = 0):
    """A fitted scikit-learn pipeline; `predict(inputs)` for texts, `predict(_pixels(images))` for images."""
    smallest = min(train.labels.count(c) for c in set(train.labels))
    if train.modality == "text":
        pipeline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
                                 LogisticRegression(max_iter=2000))
        inputs = train.inputs
    else:
        pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        inputs = _pixels(train.inputs)
    if smallest >= 3:  # tune the regularisation as a careful practitioner would
        pipeline = GridSearchCV(pipeline, {"logisticregression__C": [0.1, 1.0, 10.0, 100.0]},
                                cv=StratifiedKFold(3, shuffle=True, random_state=seed))
    return pipeline.fit(inputs, train.labels)


def predict_baseline(model, examples: Examples) -> list[str]:
    inputs = examples.inputs if examples.modality == "text" else _pixels(examples.inputs)
    return [str(label) for label in model.predict(inputs)]
