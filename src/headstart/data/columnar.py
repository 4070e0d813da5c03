"""Columnar data: Parquet files and folders written by Hugging Face `datasets` (`save_to_disk`), read as the
rows the table reader takes (readers.read_table), labels of `ClassLabel` columns as their names, images of
`Image` columns as {"bytes", "path"}."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import HeadstartError

PARQUET_SUFFIXES = {".parquet"}
DATASET_FILE, DATASET_DICT_FILE = "dataset_info.json", "dataset_dict.json"  # what save_to_disk writes


def is_dataset_folder(path: Path) -> bool:
    """A folder `datasets` wrote: one Dataset (its info beside its arrow files) or a DatasetDict of splits."""
    return (path / DATASET_DICT_FILE).is_file() or ((path / DATASET_FILE).is_file() and (path / "state.json").is_file())


def dataset_splits(path: Path) -> list[str] | None:
    """The splits of a DatasetDict folder, None for a single Dataset's folder."""
    if not (path / DATASET_DICT_FILE).is_file():
        return None
    try:
        splits = json.loads((path / DATASET_DICT_FILE).read_text(encoding="utf-8"))["splits"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise HeadstartError(f"{path / DATASET_DICT_FILE} cannot be read ({err}); save the data set again") from None
    lost = next((str(s) for s in splits if not (path / str(s)).is_dir()), None)
    if lost is not None:
        raise HeadstartError(f"{path / DATASET_DICT_FILE} lists split '{lost}' but {path / lost} is missing; save the "
                             "data set again")
    return [str(s) for s in splits]


def read_columnar(path: Path) -> list[tuple[int, dict]]:
    """(row number from 1, row) pairs of a Parquet file or a Dataset folder."""
    import pyarrow as pa

    try:
        if path.is_dir():
            table, features = _dataset(path)
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            features = _parquet_features(table.schema.metadata or {})
    except HeadstartError:
        raise
    except (OSError, pa.ArrowException, ValueError) as err:
        what = "a data set folder written by datasets' save_to_disk" if path.is_dir() else "a Parquet file"
        raise HeadstartError(f"{path} cannot be read as {what} ({_first_line(err)})") from None
    columns = set(table.column_names)
    rows = table.to_pylist()
    for name, feature in features.items():
        names = _class_names(feature)
        if names is not None and name in columns:
            for number, row in enumerate(rows, start=1):
                row[name] = _named(row[name], names, path, number, name)
    return list(enumerate(rows, start=1))


def _dataset(path: Path):
    splits = dataset_splits(path)
    if splits is not None:
        raise HeadstartError(f"{path} holds the splits {', '.join(splits)} of a DatasetDict; name one, e.g. "
                             f"{path / splits[0]}")
    try:
        import datasets
    except ImportError:  # a declared dependency; only a broken install lacks it
        raise HeadstartError(f"{path} is a Hugging Face data set folder; reading it needs the 'datasets' "
                             "package (pip install datasets)") from None
    dataset = datasets.load_from_disk(str(path))
    return dataset.data.table, dataset.features.to_dict()


def _parquet_features(metadata: dict) -> dict:
    """The `datasets` features a Parquet file written by it carries in its schema metadata ({} for others)."""
    try:
        return json.loads(metadata[b"huggingface"])["info"]["features"]
    except (KeyError, ValueError, TypeError):
        return {}


def _class_names(feature) -> list[str] | None:
    """The names of a ClassLabel feature, or of a list of them (tags, several labels); None for other features."""
    if not isinstance(feature, dict):
        return None
    if feature.get("_type") == "ClassLabel":
        return [str(n) for n in feature.get("names") or []] or None
    if feature.get("_type") in ("Sequence", "List", "LargeList"):
        return _class_names(feature.get("feature"))
    return None


def _named(value, names: list[str], path: Path, number: int, column: str):
    if isinstance(value, list):
        return [_named(v, names, path, number, column) for v in value]
    if value is None or value == -1:  # datasets' "no label"
        return None
    if not isinstance(value, int) or not 0 <= value < len(names):
        raise HeadstartError(f"{path}, row {number}: '{column}' is {value!r}, not one of its {len(names)} classes")
    return names[value]


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]
