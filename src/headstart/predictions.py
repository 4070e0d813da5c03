"""Predictions: a model's label (and how sure it is) for each input, and predictions.csv, whose columns the Task
says. fit, evaluate, predict and self-training all predict through here.

    predictions = predict_examples(model, examples, "fp32", show_progress=False)
    write_predictions(Path("predictions.csv"), predictions, model.task, csv_safe=True)
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import Examples
from .errors import HeadstartError
from .model import TransferModel
from .runs import atomic_write_text, write_jsonl
from .tasks import Task, as_text, is_words
from .train import progress
from .train.engine import EVAL_BATCH

__all__ = ["Prediction", "predict_examples", "check_inputs", "check_words", "csv_cell", "prediction_rows", "write_predictions",
           "PREDICTIONS_FILE", "FORMULA_START"]

PREDICTIONS_FILE = Task.predictions_file  # a run's predictions.csv (.jsonl where its Task says)
# What makes Excel, LibreOffice and Google Sheets read a cell as a formula (OWASP's list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Prediction:
    input: Any   # the text, the image's name, or the list of words (tokens)
    label: Any   # a class name; the predicted number (regression); the list of tags (multilabel)
    score: Any   # the label's probability; None for regression; every tag's probability (multilabel); each word's
    #              tag's probability (tokens)


def check_inputs(model: TransferModel, examples: Examples) -> None:
    """Refuse inputs of the other modality (texts for an image model), or texts for a tagger of words (and the other
    way round), in one line."""
    if examples.modality != model.backbone.modality:
        raise HeadstartError(f"{examples.source} holds {examples.modality}s but the model reads {model.backbone.modality}s")
    check_words(examples, model.task, "the model")


def check_words(examples: Examples, task: Task, reader: str) -> None:
    """Refuse lists of words for a task that reads whole texts, and texts for a tagger of words, in one line."""
    words = any(is_words(x) for x in examples.inputs)
    if words != task.reads_words:
        raise HeadstartError(f"{examples.source} holds {'lists of words' if words else 'whole texts'} but {reader} "
                             + ("tags words: give a .jsonl with a 'tokens' column (a list of words) or a CoNLL file"
                                if task.reads_words else "reads whole texts: give a 'text' column"))


def predict_examples(model: TransferModel, examples: Examples, precision: str, show_progress: bool) -> list[Prediction]:
    """The model's label and probability for each of examples, in order (fit, predict and self-train share it)."""
    check_inputs(model, examples)
    with progress.progress_bar("predicting", len(examples), show_progress) as advance:
        proba = model.predict_proba(examples.inputs, EVAL_BATCH, precision, advance)
    names = examples.inputs if examples.modality == "text" else examples.ids
    return [Prediction(name if is_words(name) else str(name), d.label, d.score)
            for name, d in zip(names, model.task.decode(proba, examples.inputs))]


def csv_cell(text: str, csv_safe: bool) -> str:
    """A cell as written; with csv_safe, one that a spreadsheet would run as a formula gets a leading quote."""
    return "'" + text if csv_safe and text.startswith(FORMULA_START) else text


def prediction_rows(predictions: list[Prediction], task: Task, csv_safe: bool = False) -> list[list[str]]:
    """The header and rows of predictions.csv: input, then the Task's columns (label,score for classification)."""
    return [["input", *task.prediction_columns()]] + [
        [csv_cell(cell, csv_safe) for cell in (as_text(p.input), *task.prediction_cells(p))] for p in predictions]


def write_predictions(path: Path, predictions: list[Prediction], task: Task, csv_safe: bool = False) -> None:
    """predictions.csv (or a .jsonl file, one JSON object per input), written atomically; scores keep every bit."""
    if path.suffix.lower() == ".jsonl":
        write_jsonl(path, [task.prediction_record(p) for p in predictions])
        return
    buffer = io.StringIO()
    csv.writer(buffer).writerows(prediction_rows(predictions, task, csv_safe))
    atomic_write_text(path, buffer.getvalue())
