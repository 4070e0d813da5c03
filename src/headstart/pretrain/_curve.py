"""pretrain_curve.png: every loss and accuracy a method reports, per epoch, whatever the method.

    plot_pretrain_curve([{"epoch": 1, "loss": 2.3, "positive_accuracy": 0.4}, ...], path, "contrastive")
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..runs import atomic_path  # noqa: E402

__all__ = ["plot_pretrain_curve"]

# val_perplexity is exp(val_loss), already drawn, and would dwarf the losses on their axis.
_NOT_PLOTTED = {"epoch", "seconds", "lr", "val_perplexity"}


def _series(history: list[dict], keep) -> dict[str, tuple[list, list]]:
    """key -> (epochs, values) for the numeric keys `keep` accepts; rows without a value are skipped."""
    series: dict[str, tuple[list, list]] = {}
    for row in history:
        for key, value in row.items():
            if key in _NOT_PLOTTED or not keep(key) or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            epochs, values = series.setdefault(key, ([], []))
            epochs.append(row["epoch"])
            values.append(value)
    return series


def plot_pretrain_curve(history: list[dict], path: Path, title: str) -> None:
    """Losses on the left axis, accuracies (0..1) on the right, one line per key."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    lines = []
    for key, (epochs, values) in _series(history, lambda k: "accuracy" not in k).items():
        lines += ax.plot(epochs, values, marker="o", label=key.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    accuracies = _series(history, lambda k: "accuracy" in k)
    if accuracies:
        right = ax.twinx()
        for key, (epochs, values) in accuracies.items():
            lines += right.plot(epochs, values, marker="s", linestyle="--", label=key.replace("_", " "),
                                color=f"C{len(lines)}")
        right.set_ylabel("accuracy")
        right.set_ylim(0, 1.02)
    if lines:
        ax.legend(lines, [line.get_label() for line in lines], loc="center right", fontsize=8)
    ax.set_title(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
