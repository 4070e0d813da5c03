"""Tasks: one file per kind of target, found by name.

    task = TASKS.get("classification").from_labels(["cat", "dog", "cat"])
    task.out_dim(), task.encode(["dog"]), task.decode(probabilities, inputs)
"""

from __future__ import annotations

from .._registry import Registry
from ..errors import HeadstartError
from ._base import Decoded, Score, Task, as_text, is_words, rows_of
from .classification import ClassificationTask, clean_labels
from .multilabel import MultilabelTask, multilabel_metrics
from .regression import RegressionTask, regression_metrics
from .tokens import TokensTask, token_metrics

__all__ = ["Task", "Score", "Decoded", "TASKS", "ClassificationTask", "RegressionTask", "MultilabelTask", "task_from_dict", "task_of_marker",
           "kind_of_columns", "clean_labels", "KINDS", "regression_metrics", "multilabel_metrics",
           "TokensTask", "token_metrics", "rows_of", "is_words", "as_text"]

# In this order, a table's columns say its kind when --task does not (a 'label' column: classification).
KINDS: tuple[type[Task], ...] = (ClassificationTask, MultilabelTask, RegressionTask, TokensTask)
TASKS: Registry[type[Task]] = Registry("task")
for _kind in KINDS:
    TASKS.register(_kind.kind)(_kind)


def kind_of_columns(columns) -> str | None:
    """The first kind whose label column is among `columns`; None if there is none."""
    return next((kind.kind for kind in KINDS if kind.column in columns), None)


def task_of_marker(marker: dict, where: str) -> Task:
    """The Task a run's model marker describes; a run saved before tasks existed holds only its classes."""
    return task_from_dict(marker.get("task") or {"classes": marker["classes"]}, where)


def task_from_dict(facts: dict, where: str) -> Task:
    """The Task a saved task dict describes (older dicts without 'kind' are classification)."""
    if "kind" not in facts:
        facts = {"kind": ClassificationTask.kind, **facts}
    if facts["kind"] not in TASKS:
        raise HeadstartError(f"{where}: unknown task '{facts['kind']}'; was it saved by a newer headstart?")
    return TASKS.get(facts["kind"]).from_dict(facts)
