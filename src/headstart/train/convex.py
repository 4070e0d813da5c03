"""A head on frozen features fitted as the convex problem it is: the task's own loss plus an L2 penalty,
minimised to convergence by L-BFGS, its strength chosen by K-fold cross-validation on every labelled example
(training and validation alike), then refit on all of them.

AdamW with early stopping on a validation split of a few examples per class gives up those examples and picks
epochs by noise; a tuned logistic regression on the same features does neither. The penalty is scikit-learn's
(C: 1/2 |W|^2 + C x the summed loss, the bias unpenalised), on standardised features for the solver's sake; the
scaling is folded back into the weights, so the head stays a plain nn.Linear on the raw features.

    fitted = fit_head(head, task, x_train, y_train, x_val, y_val, folds=5, seed=0)
    fitted.C, fitted.val_logits  # the chosen strength; each validation row's logits from a fold that left it out
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import KFold, StratifiedKFold

__all__ = ["fit_head", "ConvexFit", "C_GRID"]

C_GRID = tuple(10.0 ** k for k in range(-3, 4))  # 0.001 .. 1,000; on standardised features 1,000 is all but unpenalised
MAX_ITER = 200
TOLERANCE = (1e-5, 1e-9)  # L-BFGS stops when no gradient entry exceeds the first, or a step changes less than the second


@dataclass
class ConvexFit:
    C: float
    folds: int
    cv_score: float         # the task's validation score of the out-of-fold predictions at C
    loss: float             # the refit's mean training loss (without the penalty)
    val_logits: torch.Tensor  # the validation rows' out-of-fold logits at C: an honest validation score


def fit_head(head: torch.nn.Linear, task, x_train: torch.Tensor, y_train: np.ndarray, x_val: torch.Tensor,
             y_val: np.ndarray, folds: int = 5, seed: int = 0) -> ConvexFit:
    """Choose C by cross-validation on training + validation rows, refit on all of them, and write the weights
    into `head` (in place)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of small steps: threads cost more than they give (measured 8x on 2 cores)
    try:
        return _fit_head(head, task, x_train, y_train, x_val, y_val, folds, seed)
    finally:
        torch.set_num_threads(threads)


def _fit_head(head, task, x_train, y_train, x_val, y_val, folds, seed) -> ConvexFit:
    x = torch.cat([x_train, x_val]).double()
    y = np.concatenate([y_train, y_val])
    mean, spread = x.mean(0), x.std(0).clamp_min(1e-8)
    z = ((x - mean) / spread).float()  # fp32: the tasks' losses compute in it, and it halves every step's cost
    splits = _splits(y, folds, seed)
    previous = [None] * len(splits)  # each fold's solution at the last C: the next C starts from it
    best = None
    for C in C_GRID:
        out_of_fold = torch.empty(len(y), head.out_features)
        for fold, (fit_rows, held_out) in enumerate(splits):
            previous[fold] = _solve(task, z[fit_rows], y[fit_rows], C, previous[fold], head.out_features)
            out_of_fold[held_out] = _logits(z[held_out], previous[fold])
        score = task.validate(out_of_fold, y)
        if best is None or (score.value, -score.loss) > (best[1].value, -best[1].loss):
            best = (C, score, out_of_fold)
    C, score, out_of_fold = best
    weight, bias = _solve(task, z, y, C, None, head.out_features)
    loss = float(task.loss(_logits(z, (weight, bias)), torch.from_numpy(y)))
    weight, bias = weight.double(), bias.double()
    with torch.no_grad():  # logits = (x - mean) / spread @ W.T + b  =  x @ (W / spread).T + (b - W @ (mean / spread))
        head.weight.copy_((weight / spread).to(head.weight.dtype))
        head.bias.copy_((bias - weight @ (mean / spread)).to(head.bias.dtype))
    return ConvexFit(C, len(splits), score.value, loss, out_of_fold[len(y_train):])


def _splits(y: np.ndarray, folds: int, seed: int) -> list:
    """K folds, stratified where the targets are classes with at least K rows each (fewer folds if need be)."""
    if y.ndim == 1 and y.dtype.kind in "iu":
        smallest = int(np.unique(y, return_counts=True)[1].min())
        if smallest >= 2:
            k = min(folds, smallest)
            return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    return list(KFold(min(folds, len(y)), shuffle=True, random_state=seed).split(np.zeros(len(y))))


def _logits(z: torch.Tensor, weights) -> torch.Tensor:
    weight, bias = weights
    return z @ weight.T + bias


def _solve(task, z: torch.Tensor, y: np.ndarray, C: float, start, outputs: int):
    """argmin over (W, b) of 1/2 |W|^2 / (C n) + the task's mean loss: scikit-learn's objective divided by C n."""
    weight = torch.zeros(outputs, z.shape[1]) if start is None else start[0].clone()
    bias = torch.zeros(outputs) if start is None else start[1].clone()
    weight.requires_grad_(True)
    bias.requires_grad_(True)
    targets, penalty = torch.from_numpy(y), 0.5 / (C * len(y))
    optimizer = torch.optim.LBFGS([weight, bias], lr=1, max_iter=MAX_ITER, tolerance_grad=TOLERANCE[0],
                                  tolerance_change=TOLERANCE[1], history_size=20, line_search_fn="strong_wolfe")

    def objective():
        optimizer.zero_grad()
        value = task.loss(z @ weight.T + bias, targets) + penalty * (weight * weight).sum()
        value.backward()
        return value

    optimizer.step(objective)
    return weight.detach(), bias.detach()
