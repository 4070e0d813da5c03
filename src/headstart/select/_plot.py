"""advice.png: where the task sits among the four quadrants of the rule of thumb."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ._rule import SMALL_BELOW  # noqa: E402

__all__ = ["plot_advice"]


def plot_advice(advice, path: Path) -> None:
    """Labels per class (log) against similarity, the thresholds as lines, the task as a point."""
    threshold = advice.thresholds["similar_at"]
    x = max(1.0, advice.labels_per_class["median"])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.set_xscale("log")
    ax.set_xlim(1, max(10 * SMALL_BELOW, 3 * x))
    ax.set_ylim(0, 1)
    ax.axvline(SMALL_BELOW, color="grey", lw=1, ls="--")
    ax.axhline(threshold, color="grey", lw=1, ls="--")
    for (cx, cy), label in {(3, (1 + threshold) / 2): "small+similar", (3, threshold / 2): "small+different",
                            (SMALL_BELOW * 1.5, (1 + threshold) / 2): "large+similar",
                            (SMALL_BELOW * 1.5, threshold / 2): "large+different"}.items():
        ax.text(cx, cy, label, color="grey", va="center")
    ax.scatter([x], [advice.similarity], s=80, color="tab:red", zorder=3)
    ax.annotate(advice.strategy, (x, advice.similarity), textcoords="offset points", xytext=(8, 8),
                color="tab:red", weight="bold")
    ax.set_xlabel(f"labelled examples per class (median; small below {SMALL_BELOW})")
    ax.set_ylabel(f"similarity ({advice.similarity_method})")
    ax.set_title(f"{advice.backbone} on {Path(str(advice.train)).name}: {advice.quadrant}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
