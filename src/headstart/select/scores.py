"""Transferability scores: how well a frozen backbone suits a labelled task, estimated without training.

    logme(features, labels)        You et al., 2021: log evidence of a Bayesian linear model, per example
    hscore(features, labels)       Bao et al., 2019: tr(cov(f)^-1 cov(E[f|y])), shrunk (Ibrahim et al., 2022)
    leep(source_probs, labels)     Nguyen et al., 2020: log-likelihood of the source-to-target label map
    nce(source_labels, labels)     Tran et al., 2019: -H(target label | source label)
Higher is better for all four; each compares backbones on one data set only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn.covariance import ledoit_wolf_shrinkage

from .._registry import Registry

__all__ = ["logme_of_targets", "logme", "hscore", "leep", "nce", "Metric", "METRICS", "DEFAULT_METRICS"]

_MAX_ITER = 100
_TOL = 1e-6


def _label_index(labels) -> tuple[np.ndarray, int]:
    """Any labels (strings, ints) -> indices 0..K-1 and K."""
    _, index = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    return index, int(index.max()) + 1


def _spectrum(features: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-zero squared singular values s^2 of F and the targets in its left singular basis, U^T Y.
    The Gram matrix of the smaller side is decomposed, so N < D and N > D are both cheap."""
    n, d = features.shape
    if n >= d:
        sigma, v = np.linalg.eigh(features.T @ features)
        keep = sigma > max(sigma.max(), 0.0) * 1e-10
        sigma, v = sigma[keep], v[:, keep]
        z = (v.T @ (features.T @ targets)) / np.sqrt(sigma)[:, None]  # U = F V / s
    else:
        sigma, u = np.linalg.eigh(features @ features.T)
        keep = sigma > max(sigma.max(), 0.0) * 1e-10
        sigma, z = sigma[keep], u[:, keep].T @ targets
    return sigma, z


def logme(features, labels) -> float:
    """Mean over classes of the maximised log evidence of y_k ~ N(F w, 1/beta), w ~ N(0, 1/alpha), divided by N.

    >>> logme(np.random.default_rng(0).normal(size=(100, 16)), np.arange(100) % 2)  # noise: low
    """
    index, k = _label_index(labels)
    return logme_of_targets(features, np.eye(k)[index])  # one-hot, N x K: one regression per class


def logme_of_targets(features, targets) -> float:
    """LogME of any N x K real targets (one-hot classes, a standardised number, multi-hot tags): the mean over
    the K columns of each one's maximised log evidence, divided by N (You et al., 2021, do regression this way)."""
    f = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64).reshape(len(f), -1)
    n, k = targets.shape
    sigma, z = _spectrum(f, targets)
    r = len(sigma)
    outside = np.maximum((targets ** 2).sum(0) - (z ** 2).sum(0), 0.0)  # |y|^2 outside F's column space
    s2 = sigma[:, None]
    alpha, beta = np.ones(k), np.ones(k)
    for _ in range(_MAX_ITER):  # MacKay's fixed-point updates, all classes at once
        denom = alpha + beta * s2
        gamma = (beta * s2 / denom).sum(0)
        mm = (beta ** 2 * s2 * z ** 2 / denom ** 2).sum(0)          # |m|^2, m the posterior mean of w
        res = ((alpha * z / denom) ** 2).sum(0) + outside          # |F m - y|^2
        new_alpha = np.clip(gamma / np.maximum(mm, 1e-300), 1e-10, 1e10)
        new_beta = np.clip((n - gamma) / np.maximum(res, 1e-300), 1e-10, 1e10)
        converged = np.all(np.abs(new_alpha / alpha - 1) < _TOL) and np.all(np.abs(new_beta / beta - 1) < _TOL)
        alpha, beta = new_alpha, new_beta
        if converged:
            break
    denom = alpha + beta * s2
    mm = (beta ** 2 * s2 * z ** 2 / denom ** 2).sum(0)
    res = ((alpha * z / denom) ** 2).sum(0) + outside
    # Directions F does not span cancel out of the evidence: only its r non-zero singular values count.
    evidence = (n / 2 * np.log(beta) + r / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
                - beta / 2 * res - alpha / 2 * mm - 0.5 * np.log(denom).sum(0))
    return float(np.mean(evidence / n))


def hscore(features, labels) -> float:
    """Shrinkage H-score (Ibrahim et al., 2022) of Bao et al.'s tr(cov(f)^-1 cov(E[f|y])): class-mean spread
    against total spread. cov(f) is shrunk towards a multiple of the identity by the Ledoit-Wolf weight a,
    and cov(E[f|y]) by (1 - a): with fewer examples than dimensions the plain H-score is singular or, with
    a ridge alone, grows with the dimension even for noise.

    >>> hscore(np.r_[np.zeros((50, 2)), np.ones((50, 2))] + noise, [0] * 50 + [1] * 50)   # in [0, K - 1]
    """
    f = np.asarray(features, dtype=np.float64)
    index, k = _label_index(labels)
    n, d = f.shape
    f = f - f.mean(0)
    counts = np.bincount(index, minlength=k).astype(np.float64)
    means = (np.eye(k)[index].T @ f) / counts[:, None]             # K x D class means (of centred f)
    weighted = means * np.sqrt(counts / n)[:, None]               # cov(E[f|y]) = weighted.T @ weighted
    shrinkage = float(ledoit_wolf_shrinkage(f, assume_centered=True))
    solved = _shrunk_solve(f, shrinkage, weighted.T)
    return float((1.0 - shrinkage) * np.sum(weighted.T * solved))


def _shrunk_solve(f: np.ndarray, shrinkage: float, rhs: np.ndarray) -> np.ndarray:
    """cov^-1 rhs for the shrunk covariance c I + a F^T F of centred f, without a D x D inverse when N < D."""
    n, d = f.shape
    scale = np.sum(f ** 2) / (n * d)                                # mean variance: the shrinkage target
    c, a = max(shrinkage * scale, 1e-12 * scale + 1e-300), (1.0 - shrinkage) / n
    if d <= n or a == 0.0:
        return np.linalg.solve(c * np.eye(d) + a * (f.T @ f), rhs)
    # Woodbury: (c I + a F^T F)^-1 = (I - F^T (c/a I + F F^T)^-1 F) / c, an N x N solve
    return (rhs - f.T @ np.linalg.solve(c / a * np.eye(n) + f @ f.T, f @ rhs)) / c


def leep(source_probs, labels) -> float:
    """Mean log-probability of each target label under the empirical source->target label map.

    >>> leep([[0.9, 0.1], [0.2, 0.8]], ["cat", "dog"])
    """
    p = np.asarray(source_probs, dtype=np.float64)
    index, k = _label_index(labels)
    joint = np.eye(k)[index].T @ p / len(p)                        # P(y, z), K x Z
    cond = joint / np.maximum(joint.sum(0, keepdims=True), 1e-300)  # P(y | z)
    expected = (p * cond[index]).sum(1)                            # sum_z P(y_i | z) theta_z(x_i)
    return float(np.mean(np.log(np.maximum(expected, 1e-300))))


def nce(source_labels, labels) -> float:
    """Negative conditional entropy -H(Y | Z) of target labels given source labels (0 is the best).

    >>> nce([0, 0, 1, 1], ["a", "a", "b", "b"])   # 0.0: the source label determines the target
    """
    index, k = _label_index(labels)
    source, z = _label_index(source_labels)
    joint = np.zeros((k, z))
    np.add.at(joint, (index, source), 1.0 / len(index))
    cond = joint / joint.sum(0, keepdims=True)
    nonzero = joint > 0
    return float(np.sum(joint[nonzero] * np.log(cond[nonzero])))


@dataclass(frozen=True)
class Metric:
    """A score by name; `needs_source` scores read the backbone's source-task probabilities instead of features,
    `needs_classes` ones labels that are classes (the others read the task's targets as a matrix)."""

    name: str
    needs_source: bool
    compute: Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]
    meaning: str
    needs_classes: bool = True


METRICS: Registry[Metric] = Registry("metric")
DEFAULT_METRICS = ("logme", "hscore", "leep", "nce")

for _metric in (
    Metric("logme", False, lambda f, y, p: logme_of_targets(f, y), "log evidence per example of a linear model on "
           "the features", needs_classes=False),
    Metric("hscore", False, lambda f, y, p: hscore(f, y), "class-mean spread against total spread of the features"),
    Metric("leep", True, lambda f, y, p: leep(p, y), "mean log-likelihood of the source-to-target label map"),
    Metric("nce", True, lambda f, y, p: nce(p.argmax(1), y), "-H(target label | argmax source label)"),
):
    METRICS.register(_metric.name)(_metric)
