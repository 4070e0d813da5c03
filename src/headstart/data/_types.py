"""What the data layer hands to the rest: examples with labels, and a task split three ways."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from ..tasks import Task

Modality = Literal["image", "text"]


@dataclass
class Examples:
    """Raw inputs (texts, or HxWx3 uint8 arrays), their names, and their labels (None if unlabelled) of a kind."""

    inputs: list
    ids: list[str]
    modality: Modality
    labels: list | None = None
    source: str = ""
    kind: str = "classification"  # what the labels are: the name of a Task kind (see tasks/)

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
            kind=self.kind,
        )

    def joined(self, other: "Examples") -> "Examples":
        """These examples, then other's (of the same source and kind): a validation split folded back."""
        return Examples(inputs=self.inputs + other.inputs, ids=self.ids + other.ids, modality=self.modality,
                        labels=None if self.labels is None or other.labels is None else self.labels + other.labels,
                        source=self.source, kind=self.kind)


@dataclass
class TaskData:
    """Train / validation / test examples of one task, and the Task that says what their labels mean."""

    train: Examples
    val: Examples
    test: Examples
    task: "Task"
    modality: Modality
    notes: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        """The class names in index order (classification-like tasks only)."""
        return self.task.classes

    def targets(self, examples: Examples) -> np.ndarray:
        return self.task.encode(examples.labels)
