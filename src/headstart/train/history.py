"""What training leaves behind: one record per epoch and which one was best."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class EpochRecord:
    phase: str
    epoch: int              # counted across phases; 0 is before any training
    val_accuracy: float
    val_loss: float
    train_loss: float | None = None
    seconds: float = 0.0
    lr: float | None = None           # the head's learning rate at the epoch's end (after warm-up and decay)
    backbone_lr: float | None = None  # the backbone's, when any of it trains


    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class History:
    records: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_val_accuracy: float = 0.0
    seconds: float = 0.0
    cached_phases: list[str] = field(default_factory=list)
    best_val_correct: np.ndarray | None = field(default=None, repr=False)  # per validation example, at best_epoch

    def learning_curve(self) -> list[float]:
        return [r.val_accuracy for r in self.records]

    def state_dict(self) -> dict:
        """Everything, for a checkpoint (see checkpoints.py)."""
        return {"records": [r.to_dict() for r in self.records], "best_epoch": self.best_epoch,
                "best_val_accuracy": self.best_val_accuracy, "seconds": self.seconds,
                "cached_phases": list(self.cached_phases), "best_val_correct": self.best_val_correct}

    @classmethod
    def from_state(cls, state: dict) -> "History":
        return cls([EpochRecord(**r) for r in state["records"]], state["best_epoch"], state["best_val_accuracy"],
                   state["seconds"], list(state["cached_phases"]),
                   None if state["best_val_correct"] is None else np.asarray(state["best_val_correct"]))
