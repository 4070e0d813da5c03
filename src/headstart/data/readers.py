"""Read user data from disk: image folders, CSV and JSONL text tables."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import HeadstartError
from ._types import Examples

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
TABLE_SUFFIXES = {".csv", ".jsonl"}
LINES_SUFFIXES = {".txt"}


def read_table(path: Path, labelled: bool) -> Examples:
    """A .csv or .jsonl file with a 'text' column and, when labelled, a 'label' column."""
    rows = _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)
    if not rows:
        raise HeadstartError(f"{path} has no rows")
    needed = ["text", "label"] if labelled else ["text"]
    missing = [c for c in needed if c not in rows[0]]
    if missing:
        raise HeadstartError(f"{path} has no {' or '.join(repr(c) for c in missing)} column (columns: "
                             f"{', '.join(map(str, rows[0]))}); rename the columns to 'text' and 'label'")
    texts, labels = [], []
    for line, row in enumerate(rows, start=2 if path.suffix.lower() == ".csv" else 1):
        text = row.get("text")
        if text is None or (labelled and row.get("label") in (None, "")):
            raise HeadstartError(f"{path}, row {line}: empty 'text' or 'label'; fill it in or remove the row")
        texts.append(str(text))
        if labelled:
            labels.append(str(row["label"]))
    ids = [str(i) for i in range(len(texts))]
    return Examples(texts, ids, "text", labels if labelled else None, source=str(path))


def read_lines(path: Path) -> Examples:
    """A .txt file: one unlabelled text per non-empty line (a corpus for masked-LM pretraining)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise HeadstartError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        raise HeadstartError(f"{path} holds no text; put one text per line")
    return Examples(texts, [str(i) for i in range(len(texts))], "text", None, source=str(path))


def _read_csv(path: Path) -> list[dict]:
    try:  # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, strict=True)
            rows = []
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    raise HeadstartError(f"{path}, line {reader.line_num}: expected {len(reader.fieldnames)} "
                                         f"fields, got a different number; check the quoting of that line")
                rows.append(row)
            return rows
    except csv.Error as err:
        raise HeadstartError(f"{path} is not a valid CSV file ({err}); check its quoting") from None
    except UnicodeDecodeError:
        raise HeadstartError(f"{path} is not UTF-8 text; save it as UTF-8") from None


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise HeadstartError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise HeadstartError(f"{path}, line {number}: not valid JSON ({err.msg}); one JSON object per line") from None
        if not isinstance(row, dict):
            raise HeadstartError(f"{path}, line {number}: expected a JSON object like {{\"text\": ..., \"label\": ...}}")
        rows.append(row)
    return rows


def decode_image(path: Path) -> np.ndarray:
    """An image file as an HxWx3 uint8 RGB array."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_image_folder(root: Path, labelled: bool, on_bad_image: str = "skip") -> Examples:
    """Images under root: one subfolder per class when labelled; any layout otherwise."""
    if labelled:
        class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not class_dirs:
            raise HeadstartError(f"{root} has no class subfolders; put each class's images in a folder named after it")
        files = [(f, d.name) for d in class_dirs for f in sorted(d.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
    else:
        files = [(f, None) for f in sorted(root.rglob("*")) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise HeadstartError(f"{root} holds no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    images, ids, labels, bad = [], [], [], []
    for path, label in files:
        try:
            images.append(decode_image(path))
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError):
            if on_bad_image == "error":
                raise HeadstartError(f"cannot decode image {path}; remove it or pass --on-bad-image skip") from None
            bad.append(path)
            continue
        ids.append(str(path.relative_to(root)))
        labels.append(label)
    if bad:
        warnings.warn(f"skipped {len(bad)} image(s) that cannot be decoded in {root}, e.g. {bad[0].name}", stacklevel=2)
    if not images:
        raise HeadstartError(f"no image in {root} could be decoded")
    return Examples(images, ids, "image", labels if labelled else None, source=str(root))
