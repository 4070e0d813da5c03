"""PNG plots of a run: the learning curve and the confusion matrix."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..runs import atomic_path  # noqa: E402

__all__ = ["plot_learning_curve", "plot_confusion_matrix", "plot_predicted_vs_true", "plot_per_label_f1"]


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_learning_curve(records: list[dict], path: Path, title: str, score: str = "accuracy") -> None:
    """The validation score per epoch (`score` names it: accuracy, R^2, ...), phases apart."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    epochs = [r["epoch"] for r in records]
    values = [r["val_accuracy"] for r in records]
    ax.plot(epochs, values, marker="o", label=f"validation {score}")
    ax.set_xlabel("epoch (0 = before training)")
    ax.set_ylabel(score)
    ax.set_ylim(min(0, *(v for v in values if v is not None)) if values else 0, 1.02)
    for r0, r1 in zip(records, records[1:]):
        if r1["phase"] != r0["phase"]:
            ax.axvline(r0["epoch"] + 0.5, color="grey", linestyle=":", linewidth=1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title)
    _save(fig, path)


def plot_confusion_matrix(metrics: dict, path: Path, title: str) -> None:
    labels, matrix = metrics["labels"], metrics["confusion_matrix"]
    size = max(3.5, 0.45 * len(labels) + 1.5)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black",
                    fontsize=8)
    ax.set_title(title)
    _save(fig, path)


def plot_predicted_vs_true(truth: list[float], predicted: list[float], path: Path, title: str) -> None:
    """Each test example's prediction against its true value, with the diagonal a perfect model would lie on."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(truth, predicted, s=10, alpha=0.6)
    low, high = min(*truth, *predicted), max(*truth, *predicted)
    ax.plot([low, high], [low, high], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.grid(alpha=0.3)
    ax.set_title(title)
    _save(fig, path)


def plot_per_label_f1(per_label: dict, path: Path, title: str) -> None:
    """Each label's test F1 as a bar, with its support (how many test examples carry it)."""
    names = list(per_label)
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.3 * len(names) + 1)))
    ax.barh(names, [per_label[n]["f1"] for n in names])
    for i, n in enumerate(names):
        ax.text(per_label[n]["f1"] + 0.01, i, f"n = {per_label[n]['support']}", va="center", fontsize=8)
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("F1")
    ax.invert_yaxis()
    ax.set_title(title)
    _save(fig, path)
