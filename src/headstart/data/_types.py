"""What the data layer hands to the rest: examples with labels, and a task split three ways."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Modality = Literal["image", "text"]


@dataclass
class Examples:
    """Raw inputs (texts, or HxWx3 uint8 arrays), their names, and class names as labels (None if unlabelled)."""

    inputs: list
    ids: list[str]
    modality: Modality
    labels: list[str] | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.inputs)

    def subset(self, index) -> "Examples":
        index = [int(i) for i in index]
        return Examples(
            inputs=[self.inputs[i] for i in index],
            ids=[self.ids[i] for i in index],
            modality=self.modality,
            labels=None if self.labels is None else [self.labels[i] for i in index],
            source=self.source,
        )


@dataclass
class TaskData:
    """Train / validation / test examples of one classification task, and its class names in index order."""

    train: Examples
    val: Examples
    test: Examples
    classes: list[str]
    modality: Modality
    notes: list[str] = field(default_factory=list)

    def targets(self, examples: Examples) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[label] for label in examples.labels], dtype=np.int64)
