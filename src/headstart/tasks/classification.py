"""classification: one label per example, from a fixed set of classes."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from ..errors import HeadstartError
from ..evaluate.metrics import classification_metrics
from ..evaluate.plots import plot_confusion_matrix
from ._base import Decoded, Score, Task

ABSENT_LOGIT = -30.0  # a probability of about 1e-13 beside any class the baseline saw

__all__ = ["ClassificationTask", "clean_labels"]


class ClassificationTask(Task):
    """Softmax over the classes, cross-entropy, validation accuracy; predictions are the most probable class."""

    kind = "classification"
    column = "label"
    self_trains = True
    score_name, score_key, second_key, second_name = "accuracy", "accuracy", "macro_f1", "macro-F1"

    def __init__(self, classes: list[str]):
        self.classes = list(classes)
        self._index = {c: i for i, c in enumerate(self.classes)}

    @classmethod
    def read_labels(cls, values: list, lines: list[int], where: str) -> list[str]:
        for value, line in zip(values, lines):
            if isinstance(value, (list, dict)):
                raise HeadstartError(f"{where}, line {line}: 'label' is a JSON {type(value).__name__}, not one value; "
                                     "give a single string (several labels per text are not supported)")
        return clean_labels([str(v) for v in values], where)

    @classmethod
    def from_labels(cls, labels: list[str]) -> "ClassificationTask":
        return cls(sorted(set(labels)))

    @classmethod
    def strata(cls, labels: list[str]) -> list[str]:
        return labels

    def out_dim(self) -> int:
        return len(self.classes)

    def encode(self, labels: list[str]) -> np.ndarray:
        return np.array([self._index[label] for label in labels], dtype=np.int64)

    def evidence(self, labels: list[str]) -> np.ndarray:
        return np.eye(len(self.classes))[self.encode(labels)]  # one-hot: one regression per class

    def label_counts(self, labels: list[str]) -> dict[str, int]:
        return dict(sorted(Counter(map(str, labels)).items()))

    def probe_classes(self, labels: list[str]) -> list[str]:
        return list(labels)

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), targets)

    def pair_classes(self, targets: np.ndarray) -> np.ndarray:
        return targets

    def validate(self, logits: torch.Tensor, targets: np.ndarray) -> Score:
        logits = logits.float()
        y = torch.from_numpy(targets)
        correct = logits.argmax(-1) == y
        return Score(float(correct.float().mean()), float(F.cross_entropy(logits, y)), correct.numpy())

    def pseudo_scores(self, outputs: np.ndarray) -> np.ndarray:
        return outputs  # class probabilities: the predicted class, and its probability

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits.float(), dim=-1)

    def decode(self, outputs: np.ndarray, inputs: list) -> list[Decoded]:
        return [Decoded(self.classes[int(row.argmax())], float(row.max())) for row in outputs]

    def metrics(self, truth: list[str], predicted: list[str]) -> dict:
        return {"task": self.kind, **classification_metrics(truth, predicted, self.classes)}

    def example_scores(self, truth: list[str], predicted: list[str]) -> np.ndarray:
        return np.array([t == p for t, p in zip(truth, predicted)], dtype=float)  # their mean is the accuracy

    @classmethod
    def headline(cls, metrics: dict) -> dict[str, str]:
        return {"accuracy": f"{metrics['accuracy']:.4f}", "macro-F1": f"{metrics['macro_f1']:.4f}"}

    def plot_test(self, truth: list[str], predicted: list[str], metrics: dict, folder: Path, title: str) -> None:
        plot_confusion_matrix(metrics, folder / "confusion_matrix.png", title)

    def baseline(self, labels: list[str], seed: int):
        """Logistic regression, its C tuned by 3-fold cross-validation where every class has 3 examples."""
        tune = None
        if min(labels.count(c) for c in set(labels)) >= 3:  # tune the regularisation as a careful practitioner would
            tune = ({"C": [0.1, 1.0, 10.0, 100.0]}, StratifiedKFold(3, shuffle=True, random_state=seed))
        return LogisticRegression(max_iter=2000), list(labels), tune

    def baseline_labels(self, predicted) -> list[str]:
        return [str(label) for label in predicted]

    def baseline_head(self, fitted) -> tuple[np.ndarray, np.ndarray]:
        coef, intercept = fitted.coef_, fitted.intercept_
        if coef.shape[0] == 1:  # two classes: sklearn's one logit is the second class's; softmax([0, z]) = sigmoid(z)
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], intercept])
        rows = {str(c): i for i, c in enumerate(fitted.classes_)}
        weight = np.zeros((len(self.classes), coef.shape[1]))
        bias = np.full(len(self.classes), ABSENT_LOGIT)  # a class no training example has is never predicted
        for i, c in enumerate(self.classes):
            if c in rows:
                weight[i], bias[i] = coef[rows[c]], intercept[rows[c]]
        return weight, bias

    def source_classes(self) -> list[str]:
        return self.classes

    def check_known(self, labels: list[str], source: str, known_to: str = "this model") -> None:
        unknown = sorted(set(labels) - set(self.classes))
        if unknown:
            raise HeadstartError(f"{source}: labels {unknown[:5]} are not classes of {known_to} "
                                 f"({', '.join(self.classes)})")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "classes": self.classes}

    @classmethod
    def from_dict(cls, facts: dict) -> "ClassificationTask":
        return cls(facts["classes"])


def clean_labels(labels: list[str], source) -> list[str]:
    """Labels without surrounding spaces (a warning says how many had them); labels that differ only by case are
    kept apart, with a warning naming them, since they are more often a typo than two classes."""
    stripped = [label.strip() for label in labels]
    changed = [a for a, b in zip(labels, stripped) if a != b]
    if changed:
        warnings.warn(f"{source}: removed the spaces around {len(changed)} label(s), e.g. {changed[0]!r}", stacklevel=3)
    by_case: dict[str, set[str]] = {}
    for label in stripped:
        by_case.setdefault(label.casefold(), set()).add(label)
    clashes = [sorted(names) for names in by_case.values() if len(names) > 1]
    if clashes:
        warnings.warn(f"{source}: labels {', '.join(' / '.join(map(repr, c)) for c in clashes[:3])} differ only by "
                      "case and stay separate classes; make them one label if they are one class", stacklevel=3)
    return stripped
