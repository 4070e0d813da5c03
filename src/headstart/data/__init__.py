"""Data: read a source (image folder, CSV/JSONL, built-in set) and split it into a TaskData."""

from __future__ import annotations

from pathlib import Path

from ..config import DataSpec
from ..errors import HeadstartError
from ..tasks import TASKS, ClassificationTask
from ._types import Examples, Modality, TaskData
from .readers import (CONLL_SUFFIXES, LINES_SUFFIXES, TABLE_SUFFIXES, _shown, read_conll, read_image_folder, read_lines,
                      read_table)
from .columnar import PARQUET_SUFFIXES, dataset_splits, is_dataset_folder
from .splits import check_classes, has_classes, stratified_split, train_subset
from .zoo import BUILTINS, load_builtin

__all__ = ["Examples", "TaskData", "Modality", "data_path", "load_examples", "load_task", "task_data", "BUILTINS"]


def data_path(source: str) -> Path:
    """The path a (non-builtin) data source names, or one line saying why it cannot be read: empty, missing or
    unreachable. load_examples asks first; `fit --dry-run` asks it alone, without reading the data."""
    if not source.strip():  # Path("") is the current folder
        raise HeadstartError(f"the data path is empty ({source!r}); give an image folder, a .csv/.jsonl file or "
                             "builtin:NAME")
    try:
        path = Path(source).expanduser()
    except RuntimeError:  # ~name of no such user: a path that does not exist, as written
        path = Path(source)
    try:
        exists = path.exists()
    except OSError as err:  # a name too long for the file system, a folder it may not look into, ...
        raise HeadstartError(f"cannot open {_shown(source)} ({err.strerror or err}); check the path") from None
    if not exists:
        raise HeadstartError(f"data not found: {_shown(source)}; give an image folder, a .csv/.jsonl file or "
                             f"builtin:NAME (built-in: {', '.join(BUILTINS.names())})")
    return path


def load_examples(source: str, labelled: bool = True, on_bad_image: str = "skip", kind: str | None = None,
                  columns: dict[str, str | None] | None = None, run_columns: bool = False) -> Examples:
    """Open one data source; `labelled=False` reads inputs only (for predict). `kind` names the task whose labels
    to read (a table's column); without it the data says (a 'label' column, class folders: classification).
    `columns` names a table's text, image and label columns when they are not called so (DataSpec.columns);
    `run_columns`: they are a saved run's (predict, evaluate), which no option of the command renames."""
    if source.startswith("builtin:"):
        if not source.isprintable():  # the registry's message would show it as it is, a newline and all
            raise HeadstartError(f"{source!r} is not a built-in data set (built-in: {', '.join(BUILTINS.names())})")
        examples = load_builtin(source)
        if labelled and kind is not None and examples.kind != kind:
            raise HeadstartError(f"{source} is a {examples.kind} data set, not {kind}; drop --task or pick "
                                 "another data set")
        return examples
    path = data_path(source)
    folder = path.is_dir()
    if folder and is_dataset_folder(path) or path.suffix.lower() in PARQUET_SUFFIXES:
        return read_table(path, labelled, kind, on_bad_image, columns, run_columns)
    if folder:
        if labelled and kind not in (None, ClassificationTask.kind):
            raise HeadstartError(f"{_shown(source)} is an image folder, whose labels are its class subfolders; "
                                 f"--task {kind} needs a .csv or .jsonl with its own column")
        return read_image_folder(path, labelled, on_bad_image)
    if path.suffix.lower() in TABLE_SUFFIXES:
        return read_table(path, labelled, kind, on_bad_image, columns, run_columns)
    if path.suffix.lower() in CONLL_SUFFIXES:
        return read_conll(path, labelled, kind)
    if path.suffix.lower() in LINES_SUFFIXES:
        if labelled:
            raise HeadstartError(f"{_shown(source)} is unlabelled text (one text per line); for a labelled task give "
                                 "a .csv or .jsonl file with 'text' and 'label' columns")
        return read_lines(path)
    raise HeadstartError(f"{_shown(source)}: unsupported file type {path.suffix!r}; use .csv, .jsonl, .parquet, "
                         f".txt (unlabelled), a CoNLL file ({', '.join(sorted(CONLL_SUFFIXES))}), an image folder or "
                         "a folder written by datasets' save_to_disk")


def load_task(spec: DataSpec, seed: int = 0) -> TaskData:
    """Train / validation / test for one run: test from --test or a (stratified) hold-out of TRAIN."""
    train_source, test_source = spec.train, spec.test
    splits = dataset_splits(Path(spec.train)) if not spec.train.startswith("builtin:") else None
    if splits is not None and "train" in splits:  # a DatasetDict: its train split, and its test split unless --test
        train_source = str(Path(spec.train) / "train")
        if test_source is None and "test" in splits:
            test_source = str(Path(spec.train) / "test")
    train = load_examples(train_source, on_bad_image=spec.on_bad_image, kind=spec.task, columns=spec.columns())
    if spec.train_size is not None:
        train = train_subset(train, spec.train_size, seed)
    if test_source is None:
        check_classes(train, 3, "to hold out a test and a validation example (or pass --test)")
    notes = []
    if test_source is None:
        train, test = stratified_split(train, spec.test_fraction, seed)
        notes.append(f"test: a {'stratified ' if has_classes(train) else ''}{spec.test_fraction:.0%} hold-out of "
                     f"{spec.train}")
    else:
        test = load_examples(test_source, on_bad_image=spec.on_bad_image, kind=train.kind, columns=spec.columns())
        if test.modality != train.modality:
            raise HeadstartError(f"--test {test_source} holds {test.modality}s but {train_source} holds "
                                 f"{train.modality}s")
        if test_source != spec.test:
            notes.append(f"test: the test split of {spec.train}")
    data = task_data(train, test, seed, spec.val_fraction, notes)
    data.task.check_known(test.labels, test_source or train_source, "the training data")
    return data


def task_data(train: Examples, test: Examples, seed: int = 0, val_fraction: float = 0.1,
              notes: list[str] | None = None) -> TaskData:
    """The Task TRAIN's labels make, and TRAIN split into training and validation (load_task and the
    scikit-learn estimators, whose data arrive in memory)."""
    check_classes(train, 2, "to keep one for validation")
    task = TASKS.get(train.kind).from_labels(train.labels)
    train, val = stratified_split(train, val_fraction, seed + 1)
    return TaskData(train, val, test, task, train.modality, notes or [])
