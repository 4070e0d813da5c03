"""The Task protocol: everything that depends on the kind of target, so that nothing else asks which kind it is.

The engine asks a Task for the targets of a set of labels, the head's size, the loss and the validation
score; prediction asks it how outputs become labels; evaluation asks it for the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["Task", "Score", "Decoded", "rows_of", "is_words", "as_text"]


def is_words(x) -> bool:
    """Whether an input is a tokenised sentence (a list of words) rather than a text or an image."""
    return isinstance(x, list)


def rows_of(x) -> int:
    """Rows of features (and of targets) an input gives: one per word of a tokenised sentence (a list of words),
    else one. The engine, the feature cache and `decode` count rows with this."""
    return len(x) if is_words(x) else 1


def as_text(x):
    """A tokenised sentence as one text (its words joined by spaces); a text or an image as it is. For what reads
    whole texts: mlm pretraining, a domain distance, a CSV cell."""
    return " ".join(x) if is_words(x) else x


@dataclass
class Score:
    """A validation score ("higher is better", what early stopping and auto compare), the validation loss, and per
    example whether it was right (auto's paired test compares two candidates example by example)."""

    value: float
    loss: float
    correct: np.ndarray


@dataclass
class Decoded:
    """One prediction as a user reads it: the label (a class name, a number, ...) and how sure the model is of it
    (None where the kind has no such score)."""

    label: Any
    score: Any


class Task:
    """Subclasses set `kind` and `column` and implement every method; `to_dict` / `from_dict` round-trip through JSON."""

    kind: str
    column: str  # the column of a .csv / .jsonl that holds this kind's labels
    score_name: str  # what the validation score is, in words (history's val_accuracy column holds it)
    score_key: str   # the metrics.json key of the test score that compare ranks by (higher is better)
    second_key: str  # and the one it breaks ties with and shows beside it
    second_name: str
    input_column: str | None = None  # the input column a table must have; None: 'text' or 'image', as it holds
    reads_words = False  # inputs are lists of words (one row each), not texts or images
    predictions_file = "predictions.csv"  # in a run folder, and predict's file name when --output is a folder
    self_trains = False  # whether self-train can pseudo-label this kind (pseudo_scores)

    @classmethod
    def read_labels(cls, values: list[Any], lines: list[int], where: str) -> list[Any]:
        """The labels of a table's rows as this kind reads them; a value it cannot read stops with its line."""
        raise NotImplementedError

    @classmethod
    def check_rows(cls, inputs: list, labels: list, lines: list[int], where: str) -> None:
        """Refuse, naming the line, a row whose labels do not fit its input (e.g. tags and words of two lengths)."""

    @classmethod
    def from_labels(cls, labels: list[Any]) -> "Task":
        """The task that the training labels define (the classes, the targets' scale)."""
        raise NotImplementedError

    @classmethod
    def strata(cls, labels: list[Any]) -> list | None:
        """What splits keep in proportion (the classes), or None for a plain random split."""
        return None

    def out_dim(self) -> int:
        """Outputs of the head."""
        raise NotImplementedError

    def encode(self, labels: list[Any]) -> np.ndarray:
        """Labels as read from the data -> the targets the loss takes."""
        raise NotImplementedError

    def evidence(self, labels: list[Any]) -> np.ndarray:
        """The labels as an N x K real matrix, for scores that read targets as regressions (rank's LogME)."""
        return np.asarray(self.encode(labels), dtype=np.float64).reshape(len(labels), -1)

    def label_counts(self, labels: list[Any]) -> dict[str, int]:
        """How many labels back each output (per class, per tag; a regression's one output: every example): what
        advise calls labels per class."""
        raise NotImplementedError

    def probe_classes(self, labels: list[Any]) -> list[str] | None:
        """One class name per feature row, for advise's linear-probe classifier; None: probe by ridge regression on
        evidence(labels) instead (R²)."""
        return None

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def validate(self, logits: torch.Tensor, targets: np.ndarray) -> Score:
        raise NotImplementedError

    def tuned(self, logits: torch.Tensor, targets: np.ndarray) -> "Task":
        """The task with whatever it decides on validation data once training ends (multilabel: its threshold)."""
        return self

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        """What a prediction reads from the head's logits (class probabilities, values)."""
        raise NotImplementedError

    def pseudo_scores(self, outputs: np.ndarray) -> np.ndarray:
        """For self-training, from outputs (or from evidence(labels)): a matrix whose row maximum is how sure the
        model is of that row's prediction and whose argmax is the group a curriculum shares its pseudo-labels
        between (the predicted class)."""
        raise NotImplementedError

    def decode(self, outputs: np.ndarray, inputs: list) -> list[Decoded]:
        """outputs (rows_of(input) rows per input, in order) -> one Decoded per input."""
        raise NotImplementedError

    def metrics(self, truth: list[Any], predicted: list[Any]) -> dict:
        """Test metrics, in the stable shape of metrics.json (with 'task': the kind)."""
        raise NotImplementedError

    def example_scores(self, truth: list[Any], predicted: list[Any]) -> np.ndarray | None:
        """Where the score is a mean over test examples (accuracy: 1 where right), those per-example values, so that
        a bootstrap resamples them instead of recomputing every metric (evaluate/noise.py); None otherwise."""
        return None

    @classmethod
    def headline(cls, metrics: dict) -> dict[str, str]:
        """The metrics a terminal table shows first, formatted."""
        raise NotImplementedError

    def plot_test(self, truth: list[Any], predicted: list[Any], metrics: dict, folder: Path, title: str) -> None:
        """The test set's picture in a run folder (a confusion matrix, predicted against true)."""
        raise NotImplementedError

    def baseline(self, labels: list[Any], seed: int):
        """The classical baseline's last step on these labels: (unfitted scikit-learn estimator, its targets, and
        None or (parameter grid, cross-validation splitter) to tune it with, the input step included)."""
        raise NotImplementedError

    def baseline_labels(self, predicted) -> list[Any]:
        """The baseline's predictions as this task's labels."""
        return list(predicted)

    def baseline_head(self, fitted) -> tuple[np.ndarray, np.ndarray]:
        """The fitted baseline estimator as a linear head's (weight [out_dim, features], bias [out_dim]): the
        head's logits then give what the estimator predicts (--strategy baseline)."""
        raise NotImplementedError

    def pair_classes(self, targets: np.ndarray) -> np.ndarray | None:
        """Each example's class as an integer, for pairing examples (--strategy setfit: the same class close, the
        others apart), or None where an example has no single class."""
        return None

    def source_classes(self) -> list[str] | None:
        """The classes a head trained for this task predicts with a softmax (what LEEP / NCE read), or None."""
        return None

    def check_known(self, labels: list[Any], source: str, known_to: str = "this model") -> None:
        """Refuse labels that `known_to` cannot score (e.g. classes it never saw)."""

    def prediction_columns(self) -> list[str]:
        """The columns of predictions.csv after 'input'."""
        return ["label", "score"]

    def prediction_cells(self, decoded) -> list[str]:
        """One row's cells under prediction_columns() (of a Decoded, or anything with its label and score);
        scores keep every bit (repr)."""
        return [str(decoded.label), repr(decoded.score)]

    def prediction_record(self, prediction) -> dict:
        """One prediction as a JSON object (a .jsonl predictions file), numbers kept as numbers."""
        return {"input": prediction.input, **dict(zip(self.prediction_columns(), (prediction.label, prediction.score)))}

    def to_dict(self) -> dict:
        raise NotImplementedError
