"""regression: one number per example (a rating, a measured quantity)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from sklearn.linear_model import RidgeCV

from ..errors import HeadstartError
from ..evaluate.plots import plot_predicted_vs_true
from ._base import Decoded, Score, Task

__all__ = ["RegressionTask", "regression_metrics"]


class RegressionTask(Task):
    """One output, trained on standardised targets (the training set's mean and spread, saved with the model) by
    mean squared error; the validation score is R^2, the prediction the de-standardised output."""

    kind = "regression"
    column = "target"
    score_name, score_key, second_key, second_name = "R²", "r2", "spearman", "Spearman"

    @classmethod
    def read_labels(cls, values: list, lines: list[int], where: str) -> list[float]:
        numbers = []
        for value, line in zip(values, lines):
            try:
                number = float(value) if not isinstance(value, (bool, list, dict)) else math.nan
            except (TypeError, ValueError):
                number = math.nan
            if not math.isfinite(number):
                raise HeadstartError(f"{where}, line {line}: 'target' is {value!r}, not a finite number; "
                                     "a regression target is one number per row")
            numbers.append(number)
        return numbers

    def __init__(self, mean: float, std: float):
        self.mean, self.std = float(mean), float(std)

    @classmethod
    def from_labels(cls, values: list[float]) -> "RegressionTask":
        values = np.asarray(values, dtype=np.float64)
        std = float(values.std())
        return cls(float(values.mean()), std if std > 0 else 1.0)

    def out_dim(self) -> int:
        return 1

    def encode(self, values: list[float]) -> np.ndarray:
        return ((np.asarray(values, dtype=np.float64) - self.mean) / self.std).astype(np.float32)

    def label_counts(self, values: list[float]) -> dict[str, int]:
        return {"target": len(values)}

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(logits.float().squeeze(-1), targets.float())

    def validate(self, logits: torch.Tensor, targets: np.ndarray) -> Score:
        error = (logits.float().squeeze(-1).numpy() - targets) ** 2
        spread = float(((targets - targets.mean()) ** 2).sum())
        r2 = 1.0 - float(error.sum()) / spread if spread > 0 else -float(error.mean())
        return Score(r2, float(error.mean()), -error)

    def outputs(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float() * self.std + self.mean

    def decode(self, outputs: np.ndarray, inputs: list) -> list[Decoded]:
        return [Decoded(float(row[0]), None) for row in outputs]

    def metrics(self, truth: list[float], predicted: list[float]) -> dict:
        return {"task": self.kind, **regression_metrics(truth, predicted)}

    @classmethod
    def headline(cls, metrics: dict) -> dict[str, str]:
        number = lambda key: "n/a" if metrics[key] is None else f"{metrics[key]:.4f}"
        return {"R²": number("r2"), "MAE": number("mae"), "RMSE": number("rmse"), "Spearman": number("spearman")}

    def plot_test(self, truth: list[float], predicted: list[float], metrics: dict, folder: Path, title: str) -> None:
        plot_predicted_vs_true(truth, predicted, folder / "predicted_vs_true.png", title)

    def baseline(self, labels: list[float], seed: int):
        """Ridge regression, its penalty chosen by efficient leave-one-out cross-validation."""
        return RidgeCV(alphas=[0.1, 1.0, 10.0, 100.0]), [float(v) for v in labels], None

    def baseline_labels(self, predicted) -> list[float]:
        return [float(v) for v in predicted]

    def baseline_head(self, fitted) -> tuple[np.ndarray, np.ndarray]:
        """Ridge predicts the raw number; the head predicts it standardised (outputs() scales it back)."""
        return (np.asarray(fitted.coef_).reshape(1, -1) / self.std,
                np.atleast_1d((fitted.intercept_ - self.mean) / self.std))

    def prediction_columns(self) -> list[str]:
        return ["prediction"]

    def prediction_cells(self, decoded) -> list[str]:
        return [repr(decoded.label)]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, facts: dict) -> "RegressionTask":
        return cls(facts["mean"], facts["std"])


def regression_metrics(truth: list[float], predicted: list[float]) -> dict:
    """r2, mae, rmse, spearman and n, in the stable shape of metrics.json (r2 and spearman null when undefined)."""
    y, p = np.asarray(truth, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    if len(y) == 0:
        raise HeadstartError("no examples to score")
    error = p - y
    spread = float(((y - y.mean()) ** 2).sum())
    rho = spearmanr(y, p).statistic if len(y) > 1 and np.ptp(y) > 0 and np.ptp(p) > 0 else math.nan
    return {"r2": 1.0 - float((error ** 2).sum()) / spread if spread > 0 else None,
            "mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error ** 2).mean())),
            "spearman": None if math.isnan(rho) else float(rho), "n": len(y)}
