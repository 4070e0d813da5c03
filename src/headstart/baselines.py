"""Classical baselines that need no pretraining: the honest floor every transfer must beat.

Inputs: TF-IDF of words and word pairs for text, standardised 16x16 grey pixels for images (backbones/classical.py).
The last step is the Task's (tasks/): logistic regression with C chosen by cross-validation for classes, ridge
regression for numbers, one logistic regression per tag for multi-label. Its coefficients become the head of a
TransferModel (`fit_classical_head`), so `--strategy baseline` is saved, predicted and evaluated like any run and
compare's baseline row is that same model. For a tag per word the floor is each word's most frequent tag
(`word_floor`), which compare reports and no run serves.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch
from sklearn.model_selection import GridSearchCV

from .data import Examples
from .tasks import Task

__all__ = ["BASELINE_NAME", "baseline_refusal", "classical_matrix", "fit_classical_head", "word_floor"]

BASELINE_NAME = "baseline"
FEATURE_BATCH = 256  # classical features are computed this many inputs at a time (dense while computed)


def baseline_refusal(task: Task) -> str | None:
    """Why --strategy baseline cannot serve this task (None when it can): the one check, for fit and auto."""
    if task.reads_words:
        return ("strategy baseline: a tag per word has no classical model to save and serve (compare reports the "
                "floor of tagging, each word's most frequent tag); use linear-probe-cv, lp-ft or full")
    return None


def fit_classical_head(model, train: Examples, task: Task, seed: int) -> tuple[str, torch.Tensor]:
    """Fit the task's scikit-learn estimator (tuned as the Task says) on the model's classical features of the
    training examples and copy its coefficients into model.head; a note saying what was fitted and chosen, and
    the head's logits of the training examples (from the features already computed here)."""
    backbone = model.backbone
    x = classical_matrix(backbone, train.inputs)
    estimator, targets, tune = task.baseline(train.labels, seed)
    if tune is not None:
        grid, cv = tune
        search = GridSearchCV(estimator, grid, cv=cv).fit(x, targets)
        fitted, chosen = search.best_estimator_, ", ".join(f"{k} = {v:g}" for k, v in search.best_params_.items())
        chosen += f" by {cv.get_n_splits()}-fold cross-validation on them"
    else:
        fitted = estimator.fit(x, targets)
        chosen = f"alpha = {fitted.alpha_:g} by leave-one-out cross-validation" if hasattr(fitted, "alpha_") else ""
    weight, bias = task.baseline_head(fitted)
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(weight).to(model.head.weight.dtype))
        model.head.bias.copy_(torch.from_numpy(bias).to(model.head.bias.dtype))
    logits = torch.from_numpy(np.asarray(x @ weight.T + bias, dtype=np.float32))
    what = (f"TF-IDF of words and word pairs ({backbone.dim} terms)" if backbone.modality == "text"
            else "standardised 16x16 grey pixels")
    return (f"baseline: {what} of {len(train)} examples, then {type(fitted).__name__}"
            f"{', ' + chosen if chosen else ''}; its coefficients are the head"), logits


def classical_matrix(backbone, inputs: list):
    """Classical features of the inputs as one matrix, computed FEATURE_BATCH at a time: scipy sparse rows for
    TF-IDF (mostly zeros), a dense array for pixels."""
    with torch.no_grad():
        blocks = [backbone(backbone.preprocess(inputs[i:i + FEATURE_BATCH])).numpy()
                  for i in range(0, len(inputs), FEATURE_BATCH)]
    return scipy.sparse.vstack([scipy.sparse.csr_matrix(b) for b in blocks]).tocsr() if backbone.sparse \
        else np.concatenate(blocks)


def word_floor(train: Examples, test: Examples, task: Task) -> list:
    """The tagging floor's predictions for test: each word's most frequent training tag."""
    estimator, targets, _ = task.baseline(train.labels, 0)
    return task.baseline_labels(estimator.fit(train.inputs, targets).predict(test.inputs))
