"""The two measurements behind `advise`, on frozen features: a cross-validated linear probe, and a
proxy A-distance between two domains. Both are scikit-learn logistic regressions, cross-validated.

    probe_accuracy(features, labels, seed=0)        # mean held-out accuracy of a linear classifier
    proxy_a_distance(source_features, target_features, seed=0)   # (PAD in 0..2, domain classifier error)
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["probe_accuracy", "probe_r2", "proxy_a_distance", "PROBE_FOLDS", "PROBE_DIMS", "PROBE_C"]

PROBE_FOLDS = 5
# Features are standardised and projected on their first PROBE_DIMS principal components, whitened,
# before a strongly regularised logistic regression (C = 0.1). Fitted on a few hundred examples of
# 384-1,280 raw features, the probe overfits and its accuracy says more about C than about the
# features; projected, it separated pretrained from random MiniLM features on 300 reviews by 16 points
# instead of 1, and it fits in about a second where the raw features need a minute to converge.
PROBE_DIMS = 32
PROBE_C = 0.1


def _projection(n_examples: int, dim: int, seed: int, sparse: bool = False) -> list:
    """The probe's first steps: standardise, then the first principal components, whitened. Sparse features
    (the baseline's TF-IDF: ~100,000 terms for 1,000 e-mails) are projected as they are, by truncated SVD (LSA),
    its components then standardised: densified, they took a minute and 4.7 GB where this takes seconds."""
    components = max(1, min(PROBE_DIMS, dim - 1 if sparse else dim, int(0.5 * n_examples)))
    if sparse:
        return [TruncatedSVD(components, random_state=seed), StandardScaler()]
    return [StandardScaler(), PCA(components, whiten=True, random_state=seed)]


def _classifier(n_examples: int, dim: int, seed: int, sparse: bool = False):
    return make_pipeline(*_projection(n_examples, dim, seed, sparse), LogisticRegression(C=PROBE_C, max_iter=500))


def _cross_validated(features, labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a probe that has not fully converged still measures separability
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier = _classifier(features.shape[0], features.shape[1], seed, scipy.sparse.issparse(features))
        return cross_val_score(classifier, features, labels, cv=splitter)


def _as_matrix(features):
    """float64 rows: a dense array, or a sparse matrix kept sparse."""
    return features.astype(np.float64) if scipy.sparse.issparse(features) else np.asarray(features, dtype=np.float64)


def probe_accuracy(features, labels, seed: int = 0) -> tuple[float, int]:
    """(mean held-out accuracy, folds) of a linear probe; folds shrink to the smallest class (at least 2)."""
    labels = np.asarray(labels, dtype=object).astype(str)
    smallest = int(np.unique(labels, return_counts=True)[1].min())
    folds = max(2, min(PROBE_FOLDS, smallest))
    scores = _cross_validated(_as_matrix(features), labels, folds, seed)
    return float(scores.mean()), folds


def probe_r2(features, targets, seed: int = 0) -> tuple[float, int]:
    """(mean held-out R², folds) of a linear regression probe on the same projected features, for targets that are
    not classes (a number; tags as 0/1 columns): the share of their variance a linear map of the features explains.
    The ridge penalty is chosen inside each training fold (leave-one-out, RidgeCV), and predictions are clipped to
    the training fold's range of each target, as the classifier's probabilities are bounded: on 80 Ising spin
    images a few held-out outliers along whitened components otherwise drove R² to -1.7 (0.94 on 1,000)."""
    features, targets = _as_matrix(features), np.asarray(targets, dtype=np.float64)
    targets = targets.reshape(len(targets), -1)
    n = features.shape[0]
    folds = max(2, min(PROBE_FOLDS, n // 4))
    scores = []
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(n)):
        probe = make_pipeline(*_projection(n, features.shape[1], seed, scipy.sparse.issparse(features)),
                              RidgeCV(alphas=np.logspace(-2, 4, 13)))
        predicted = probe.fit(features[train], targets[train]).predict(features[test]).reshape(len(test), -1)
        predicted = np.clip(predicted, targets[train].min(axis=0), targets[train].max(axis=0))
        scores.append(r2_score(targets[test], predicted))
    return float(np.mean(scores)), folds


def proxy_a_distance(source, target, seed: int = 0) -> tuple[float, float]:
    """(PAD, error) of a classifier telling source from target features: PAD = 2 (1 - 2 error), in 0..2.

    Ben-David et al. (2007): PAD near 0 when the domains cannot be told apart, 2 when they always can.
    Both sides are cut to the same size, so the domain classifier's chance error is 0.5.
    """
    rng = np.random.default_rng(seed)
    n = min(len(source), len(target))
    source = np.asarray(source, dtype=np.float64)[rng.permutation(len(source))[:n]]
    target = np.asarray(target, dtype=np.float64)[rng.permutation(len(target))[:n]]
    features = np.concatenate([source, target])
    domains = np.array([0] * n + [1] * n)
    error = 1.0 - float(_cross_validated(features, domains, min(PROBE_FOLDS, n), seed).mean())
    return float(np.clip(2.0 * (1.0 - 2.0 * error), 0.0, 2.0)), error
