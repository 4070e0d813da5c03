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


# Longer texts are cut to this many characters when read, in every format. A token covers at least one
# character, so the model's input (at most --max-length <= 4,096 tokens) is the same; memory is not.
MAX_TEXT_CHARS = 100_000
# A table's columns headstart reads: each may appear once.
COLUMNS = ("text", "label")


def read_table(path: Path, labelled: bool) -> Examples:
    """A .csv or .jsonl file with a 'text' column and, when labelled, a 'label' column."""
    csv_file = path.suffix.lower() == ".csv"
    rows = _read_csv(path) if csv_file else _read_jsonl(path)
    if not rows:
        raise HeadstartError(f"{path} has no rows")
    needed = ["text", "label"] if labelled else ["text"]
    missing = [c for c in needed if c not in rows[0][1]]
    if missing:
        raise HeadstartError(f"{path} has no {' or '.join(repr(c) for c in missing)} column (columns: "
                             f"{', '.join(map(str, rows[0][1]))}); rename the columns to 'text' and 'label'")
    texts, labels = [], []
    for line, row in rows:
        text, label = row.get("text"), row.get("label")
        if text is None or (labelled and label in (None, "")):
            raise HeadstartError(f"{path}, {'row' if csv_file else 'line'} {line}: empty 'text' or 'label'; "
                                 "fill it in or remove the row")
        for column, value in (("text", text), ("label", label if labelled else "")):
            if isinstance(value, (list, dict)):
                raise HeadstartError(f"{path}, line {line}: '{column}' is a JSON {type(value).__name__}, not one "
                                     f"value; give a single string (several labels per text are not supported)")
        texts.append(str(text))
        if labelled:
            labels.append(str(label))
    ids = [str(i) for i in range(len(texts))]
    texts = cut_long_texts(texts, path, [line for line, _ in rows])
    return Examples(texts, ids, "text", clean_labels(labels, path) if labelled else None, source=str(path))


def cut_long_texts(texts: list[str], source: Path, lines: list[int]) -> list[str]:
    """Texts cut to MAX_TEXT_CHARS, with one warning naming how many and the first one's line."""
    long = [i for i, t in enumerate(texts) if len(t) > MAX_TEXT_CHARS]
    if not long:
        return texts
    warnings.warn(f"{source}: cut {len(long)} text(s) longer than {MAX_TEXT_CHARS:,} characters to that length "
                  f"(first at line {lines[long[0]]}); the model reads at most --max-length tokens of each", stacklevel=3)
    return [t[:MAX_TEXT_CHARS] for t in texts]


def clean_labels(labels: list[str], source: Path | str) -> list[str]:
    """Labels without surrounding spaces (a warning says how many had them); labels that differ only by case are
    kept apart, with a warning naming them, since they are more often a typo than two classes."""
    stripped = [label.strip() for label in labels]
    changed = [a for a, b in zip(labels, stripped) if a != b]
    if changed:
        warnings.warn(f"{source}: removed the spaces around {len(changed)} label(s), e.g. {changed[0]!r}", stacklevel=3)
    by_case: dict[str, set[str]] = {}
    for label in stripped:
        by_case.setdefault(label.casefold(), set()).add(label)
    clashes = [sorted(names) for names in by_case.values() if len(names) > 1]
    if clashes:
        warnings.warn(f"{source}: labels {', '.join(' / '.join(map(repr, c)) for c in clashes[:3])} differ only by "
                      "case and stay separate classes; make them one label if they are one class", stacklevel=3)
    return stripped


def read_lines(path: Path) -> Examples:
    """A .txt file: one unlabelled text per non-empty line (a corpus for masked-LM pretraining)."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise HeadstartError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    kept = [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]
    if not kept:
        raise HeadstartError(f"{path} holds no text; put one text per line")
    texts = cut_long_texts([t for _, t in kept], path, [n for n, _ in kept])
    return Examples(texts, [str(i) for i in range(len(texts))], "text", None, source=str(path))


def _read_csv(path: Path) -> list[tuple[int, dict]]:
    """(line number, row) pairs; a field may be as long as a JSONL line may (long texts are cut afterwards)."""
    limit = csv.field_size_limit(2**31 - 1)
    try:  # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, strict=True)
            _check_unique(reader.fieldnames or [], path, "header")
            rows = []
            for row in reader:
                if None in row or any(v is None for v in row.values()):
                    raise HeadstartError(f"{path}, line {reader.line_num}: expected {len(reader.fieldnames)} "
                                         f"fields, got a different number; check the quoting of that line")
                rows.append((reader.line_num, row))
            return rows
    except csv.Error as err:
        raise HeadstartError(f"{path} is not a valid CSV file ({err}); check its quoting") from None
    except UnicodeDecodeError:
        raise HeadstartError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    finally:
        csv.field_size_limit(limit)


def _check_unique(names: list, path: Path, where: str) -> None:
    twice = [c for c in COLUMNS if list(names).count(c) > 1]
    if twice:
        raise HeadstartError(f"{path}: the {where} names the column '{twice[0]}' more than once, and only one can be "
                             "read; rename or remove the other")


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise HeadstartError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            pairs = json.loads(line, object_pairs_hook=list)
        except json.JSONDecodeError as err:
            raise HeadstartError(f"{path}, line {number}: not valid JSON ({err.msg}); one JSON object per line") from None
        if not isinstance(pairs, list) or line.lstrip()[:1] != "{":
            raise HeadstartError(f"{path}, line {number}: expected a JSON object like {{\"text\": ..., \"label\": ...}}")
        _check_unique([key for key, _ in pairs], path, f"object on line {number}")
        rows.append((number, dict(pairs)))
    return rows


# Larger images are reduced to this side when decoded (the largest --image-size), so that one huge photo
# costs megabytes, not gigabytes, in every command that holds the data in memory.
MAX_IMAGE_SIDE = 1024
_SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N", "I"}


def decode_image(path: Path) -> np.ndarray:
    """An image file as an HxWx3 uint8 RGB array, at most MAX_IMAGE_SIDE on its longer side. 16-bit images are
    scaled to 8 bits (not clipped); JPEGs are decoded at reduced scale directly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # reduced below; past 2x Pillow refuses
        with Image.open(path) as image:
            image.draft("RGB", (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
            if image.mode in _SIXTEEN_BIT:
                values = np.asarray(image).astype(np.float32)
                scale = 257.0 if image.mode != "I" or values.max(initial=0) > 255 else 1.0
                image = Image.fromarray(np.clip(np.rint(values / scale), 0, 255).astype(np.uint8), "L")
            image = image.convert("RGB")
            if max(image.size) > MAX_IMAGE_SIDE:
                image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.BILINEAR, reducing_gap=3.0)
            return np.asarray(image, dtype=np.uint8)


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
    if labelled:
        empty = [d.name for d in class_dirs if d.name not in set(labels)]
        if empty:
            warnings.warn(f"{root}: class folder(s) {', '.join(map(repr, empty[:5]))} hold no image that can be "
                          "decoded and are left out; add images or remove the folder", stacklevel=2)
        labels = clean_labels(labels, root)
    return Examples(images, ids, "image", labels if labelled else None, source=str(root))
