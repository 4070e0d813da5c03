"""What a self-training run reports: one record per round (rounds.json) and val/test accuracy per round (PNG)."""

from __future__ import annotations

from pathlib import Path

from ..evaluate.plots import plt
from ..runs import atomic_path

__all__ = ["round_record", "plot_rounds"]


def round_record(number: int, counts: dict[str, int], n_pseudo: int, pseudo_accuracy: float | None, n_train: int,
                 val: tuple[float, float], test_accuracy: float, seconds: float) -> dict:
    """One line of rounds.json; round 0 is the teacher, trained on the labelled data alone. `counts`: pseudo-labels
    per class (per tag for tag sets), `n_pseudo`: pseudo-labelled examples; the scores are the task's (accuracy,
    micro-F1) under the accuracy keys."""
    return {"round": number, "pseudo_labels": counts, "n_pseudo": n_pseudo,
            "pseudo_label_accuracy": pseudo_accuracy, "n_train": n_train, "val_accuracy": val[0],
            "val_loss": val[1], "test_accuracy": test_accuracy, "seconds": round(seconds, 2)}


def plot_rounds(records: list[dict], best_round: int, path: Path, title: str, score: str = "accuracy") -> None:
    """Validation and test score (the task's: accuracy, micro-F1) per round; the kept round is circled."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    numbers = [r["round"] for r in records]
    ax.plot(numbers, [r["val_accuracy"] for r in records], marker="o", label=f"validation {score}")
    ax.plot(numbers, [r["test_accuracy"] for r in records], marker="s", label=f"test {score}")
    best = next(r for r in records if r["round"] == best_round)
    ax.scatter([best_round], [best["val_accuracy"]], s=180, facecolors="none", edgecolors="black",
               label=f"kept (round {best_round})", zorder=3)
    ax.set_xticks(numbers)
    ax.set_xlabel("round (0 = teacher on labelled data only)")
    ax.set_ylabel(score)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
