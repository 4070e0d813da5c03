"""multilabel: any number of labels per example (tags), from a fixed set."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_recall_fscore_support
from sklearn.multioutput import MultiOutputClassifier

from ..errors import HeadstartError
from ..evaluate.plots import plot_per_label_f1
from ._base import Decoded, Score, Task
from .classification import clean_labels

__all__ = ["MultilabelTask", "multilabel_metrics", "SEPARATOR"]

SEPARATOR = "|"  # between the tags of one example in a CSV cell and in predictions.csv
CERTAIN_LOGIT = 30.0  # sigmoid(30) = 1 - 1e-13: a tag every (or, negated, no) training example carries
_THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)


class MultilabelTask(Task):
    """One sigmoid per label, binary cross-entropy; the decision threshold (one for all labels) is tuned on the
    validation set for micro-F1 when training ends, and saved with the model."""

    kind = "multilabel"
    column = "labels"
    self_trains = True
    score_name, score_key, second_key, second_name = "micro-F1", "micro_f1", "macro_f1", "macro-F1"

    def __init__(self, labels: list[str], threshold: float = 0.5):
        self.labels, self.threshold = list(labels), float(threshold)
        self._index = {label: i for i, label in enumerate(self.labels)}

    @classmethod
    def read_labels(cls, values: list, lines: list[int], where: str) -> list[list[str]]:
        """A JSON list (in JSONL, or a CSV cell starting with '[') or tags joined by '|'; at least one per row."""
        rows = []
        for value, line in zip(values, lines):
            if isinstance(value, str) and value.lstrip().startswith("["):
                try:
                    value = json.loads(value)
                except json.JSONDecodeError:
                    raise HeadstartError(f"{where}, line {line}: 'labels' starts like a JSON list but is not one; "
                                         f"write [\"a\", \"b\"] or a{SEPARATOR}b") from None
            tags = value if isinstance(value, list) else str(value).split(SEPARATOR)
            if any(isinstance(t, (list, dict)) for t in tags):
                raise HeadstartError(f"{where}, line {line}: 'labels' holds a nested list; give a flat list of tags")
            tags = [str(t).strip() for t in tags if str(t).strip()]
            if not tags:
                raise HeadstartError(f"{where}, line {line}: 'labels' is empty; give at least one tag, or remove "
                                     "the row")
            rows.append(sorted(set(tags)))
        clean_labels(sorted({t for tags in rows for t in tags}), where)  # names tags that differ only by case
        return rows

    @classmethod
    def from_labels(cls, labels: list[list[str]]) -> "MultilabelTask":
        return cls(sorted({t for tags in labels for t in tags}))

    def out_dim(self) -> int:
        return len(self.labels)

    def encode(self, labels: list[list[str]]) -> np.ndarray:
        hot = np.zeros((len(labels), len(self.labels)), dtype=np.float32)
        for row, tags in enumerate(labels):
            hot[row, [self._index[t] for t in tags if t in self._index]] = 1.0
        return hot

    def label_counts(self, labels: list[list[str]]) -> dict[str, int]:
        return dict(sorted(Counter(t for tags in labels for t in tags).items()))

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), targets.float())

    def validate(self, logits: torch.Tensor, targets: np.ndarray) -> Score:
        probability = torch.sigmoid(logits.float()).numpy()
        loss = float(F.binary_cross_entropy_with_logits(logits.float(), torch.from_numpy(targets)))
        predicted = probability >= self.threshold
        exact = (predicted == targets.astype(bool)).all(axis=1)
        return Score(float(f1_score(targets, predicted, average="micro", zero_division=0)), loss, exact)

    def tuned(self, logits: torch.Tensor, targets: np.ndarray) -> "MultilabelTask":
        """The same task with the threshold that gives the best validation micro-F1 (ties: the one nearest 0.5)."""
        probability = torch.sigmoid(logits.float()).numpy()
        scores = [f1_score(targets, probability >= t, average="micro", zero_division=0) for t in _THRESHOLDS]
        best = max(range(len(_THRESHOLDS)), key=lambda i: (round(scores[i], 12), -abs(_THRESHOLDS[i] - 0.5)))
        return MultilabelTask(self.labels, float(_THRESHOLDS[best]))

    def pseudo_scores(self, outputs: np.ndarray) -> np.ndarray:
        """One group (column 0): how sure the model is of a whole tag set, the probability of its least sure
        decision (p or 1 - p, over tags); 0 for an empty set, which no labelled row may be (so it comes last: with
        a mean, confident 'no tag' rows would come first)."""
        decided = outputs >= self.threshold
        scores = np.zeros_like(outputs, dtype=np.float64)
        scores[:, 0] = np.where(decided.any(axis=1), np.where(decided, outputs, 1.0 - outputs).min(axis=1), 0.0)
        return scores

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(logits.float())

    def decode(self, outputs: np.ndarray, inputs: list) -> list[Decoded]:
        return [Decoded([self.labels[i] for i in np.flatnonzero(row >= self.threshold)], [float(p) for p in row])
                for row in outputs]

    def metrics(self, truth: list[list[str]], predicted: list[list[str]]) -> dict:
        return {"task": self.kind, **multilabel_metrics(self.encode(truth), self.encode(predicted), self.labels),
                "threshold": self.threshold}

    @classmethod
    def headline(cls, metrics: dict) -> dict[str, str]:
        return {"micro-F1": f"{metrics['micro_f1']:.4f}", "macro-F1": f"{metrics['macro_f1']:.4f}",
                "subset accuracy": f"{metrics['subset_accuracy']:.4f}", "threshold": f"{metrics['threshold']:g}"}

    def plot_test(self, truth, predicted, metrics: dict, folder: Path, title: str) -> None:
        plot_per_label_f1(metrics["per_label"], folder / "per_label_f1.png", title)

    def baseline(self, labels: list[list[str]], seed: int):
        """One logistic regression per tag; a tag every (or no) training example carries is predicted constant."""
        return MultiOutputClassifier(_ConstantOr(LogisticRegression(max_iter=2000))), self.encode(labels).astype(int), None

    def baseline_labels(self, predicted) -> list[list[str]]:
        return [[self.labels[i] for i in np.flatnonzero(row)] for row in np.asarray(predicted)]

    def baseline_head(self, fitted) -> tuple[np.ndarray, np.ndarray]:
        """One sigmoid per tag: each tag's logistic regression, or a certain logit for a tag constant in training."""
        rows = []
        for per_tag in fitted.estimators_:
            model = per_tag.model_
            if hasattr(model, "coef_"):
                rows.append((model.coef_[0], model.intercept_[0]))
            else:  # DummyClassifier: always 1 or always 0
                rows.append((None, CERTAIN_LOGIT if model.classes_[0] == 1 else -CERTAIN_LOGIT))
        width = fitted.estimators_[0].model_.n_features_in_
        weight = np.stack([np.zeros(width) if w is None else w for w, _ in rows])
        return weight, np.array([b for _, b in rows], dtype=np.float64)

    def check_known(self, labels: list[list[str]], source: str, known_to: str = "this model") -> None:
        unknown = sorted({t for tags in labels for t in tags} - set(self.labels))
        if unknown:
            raise HeadstartError(f"{source}: labels {unknown[:5]} are not labels of {known_to} "
                                 f"({', '.join(self.labels)})")

    def prediction_columns(self) -> list[str]:
        return ["labels", *(f"score:{label}" for label in self.labels)]

    def prediction_cells(self, decoded) -> list[str]:
        return [SEPARATOR.join(decoded.label), *(repr(p) for p in decoded.score)]

    def prediction_record(self, prediction) -> dict:
        return {"input": prediction.input, "labels": prediction.label, "scores": dict(zip(self.labels, prediction.score))}

    def to_dict(self) -> dict:
        return {"kind": self.kind, "labels": self.labels, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, facts: dict) -> "MultilabelTask":
        return cls(facts["labels"], facts["threshold"])


def multilabel_metrics(truth: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict:
    """micro_f1, macro_f1, subset_accuracy (every label right), per_label precision/recall/f1/support, n."""
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, zero_division=0)
    return {"micro_f1": float(f1_score(truth, predicted, average="micro", zero_division=0)),
            "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
            "subset_accuracy": float((truth == predicted).all(axis=1).mean()), "n": len(truth),
            "per_label": {label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                          for label, p, r, f, s in zip(labels, precision, recall, f1, support)}}


class _ConstantOr(ClassifierMixin, BaseEstimator):
    """The estimator, or a constant prediction for a tag whose training column holds one value (a tag absent
    from a small split would otherwise stop logistic regression)."""

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y):
        one_value = len(np.unique(y)) < 2
        self.model_ = (DummyClassifier(strategy="most_frequent") if one_value else clone(self.estimator)).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict(self, X):
        return self.model_.predict(X)
