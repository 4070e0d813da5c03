"""Read user data from disk: image folders, CSV and JSONL text tables."""

from __future__ import annotations

import csv
import json
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import HeadstartError
from ..tasks import KINDS, TASKS, ClassificationTask, TokensTask, clean_labels, kind_of_columns
from ._types import Examples

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
TABLE_SUFFIXES = {".csv", ".jsonl"}
CONLL_SUFFIXES = {".conll", ".iob", ".bio"}  # not CoNLL-U (.conllu): ten columns and comment lines
LINES_SUFFIXES = {".txt"}


# Longer texts are cut to this many characters when read, in every format. A token covers at least one
# character, so the model's input (at most --max-length <= 4,096 tokens) is the same; memory is not.
MAX_TEXT_CHARS = 100_000
# What Pillow raises for a file that is not an image it can decode (or a decompression bomb).
UNDECODABLE = (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError)


def read_table(path: Path, labelled: bool, kind: str | None = None, on_bad_image: str = "skip") -> Examples:
    """A .csv or .jsonl file with a 'text' column (or an 'image' column of image paths, relative to the file)
    and, when labelled, the column of the task's kind: 'label' (classification) or 'target' (regression);
    without `kind` the columns say which."""
    csv_file = path.suffix.lower() == ".csv"
    rows = _read_csv(path) if csv_file else _read_jsonl(path)
    if not rows:
        raise HeadstartError(f"{path} has no rows")
    columns = rows[0][1]
    asked = kind  # a kind asked for (--task, or the model that predicts) says the input column too
    kind = kind or kind_of_columns(columns) or ClassificationTask.kind
    task, column = TASKS.get(kind), TASKS.get(kind).column
    source = (task.input_column if labelled or asked else None) or next(
        (c for c in ("image", "tokens") if c in columns and "text" not in columns), "text")
    if labelled and source == "tokens" and not task.reads_words:
        raise HeadstartError(f"{path}: a 'tokens' column (a list of words) goes with a 'tags' column, one tag per word "
                             f"(--task tokens); for one {column!r} per row give a 'text' column")
    needed = [source, column] if labelled else [source]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise HeadstartError(f"{path} has no {' or '.join(repr(c) for c in missing)} column (columns: "
                             f"{', '.join(map(str, columns))}); rename the columns to '{source}' and '{column}'")
    inputs, values = [], []
    for line, row in rows:
        given, value = row.get(source), row.get(column)
        no_input = given in (None, "") if source == "image" else given is None  # an empty text is a text
        if no_input or (labelled and value in (None, "")):
            raise HeadstartError(f"{path}, {'row' if csv_file else 'line'} {line}: empty '{source}' or "
                                 f"'{column}'; fill it in or remove the row")
        if source == "tokens":
            given = _words(given, path, line)
        elif isinstance(given, (list, dict)):
            raise HeadstartError(f"{path}, line {line}: '{source}' is a JSON {type(given).__name__}, not one value")
        inputs.append(given if source == "tokens" else str(given))
        values.append(value)
    lines = [line for line, _ in rows]
    labels = task.read_labels(values, lines, str(path)) if labelled else None
    if labelled:
        task.check_rows(inputs, labels, lines, str(path))
    if source == "image":
        return _image_rows(path, inputs, labels, lines, kind, on_bad_image)
    texts = inputs if source == "tokens" else cut_long_texts(inputs, path, lines)
    return Examples(texts, [str(i) for i in range(len(inputs))], "text", labels, source=str(path), kind=kind)


def _words(given, path: Path, line: int) -> list[str]:
    if not isinstance(given, list) or not given or any(not isinstance(w, str) or not w.strip() for w in given):
        raise HeadstartError(f"{path}, line {line}: 'tokens' must be a non-empty JSON list of words (strings, none "
                             "empty)")
    return [w.strip() for w in given]


def read_conll(path: Path, labelled: bool, kind: str | None = None) -> Examples:
    """A CoNLL-style file: one token per line with its tag in the last column (whitespace-separated; a lone
    token when unlabelled), a blank line between sentences; -DOCSTART- lines are skipped."""
    if labelled and kind not in (None, TokensTask.kind):
        raise HeadstartError(f"{path} is a CoNLL file (a tag per word), which is --task tokens, not {kind}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise HeadstartError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    sentences, tags, starts = [], [], []
    words, row_tags = [], []
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        fields = [f for f in re.split(r"[ \t]+", line.strip(" \t\r\n")) if f]  # not str.split: a word may hold U+00A0
        if fields and fields[0] == "-DOCSTART-":
            continue
        if not fields:
            if words:
                sentences.append(words)
                tags.append(row_tags)
                words, row_tags = [], []
            continue
        if labelled and len(fields) < 2:
            raise HeadstartError(f"{path}, line {number}: {line.strip()!r} has a token but no tag; write the token, "
                                 "a space and its tag")
        if not words:
            starts.append(number)
        words.append(fields[0])
        row_tags.append(fields[-1])
    if not sentences:
        raise HeadstartError(f"{path} holds no sentence; one token (and its tag) per line, a blank line between "
                             "sentences")
    labels = TokensTask.read_labels(tags, starts, str(path)) if labelled else None
    return Examples(sentences, [str(i) for i in range(len(sentences))], "text", labels, source=str(path),
                    kind=TokensTask.kind)


def _image_rows(path: Path, names: list[str], labels: list | None, lines: list[int], kind: str,
                on_bad_image: str) -> Examples:
    """The images a table names (paths relative to the table), decoded; an undecodable one as in image folders."""
    images, ids, kept, bad = [], [], [], []
    for i, (name, line) in enumerate(zip(names, lines)):
        try:
            images.append(decode_image(path.parent / name))
        except UNDECODABLE:
            if on_bad_image == "error":
                raise HeadstartError(f"{path}, line {line}: cannot decode image {name}; fix the path or pass "
                                     "--on-bad-image skip") from None
            bad.append(name)
            continue
        ids.append(name)
        kept.append(i)
    if bad:
        warnings.warn(f"{path}: skipped {len(bad)} image(s) that cannot be decoded or found, e.g. {bad[0]}",
                      stacklevel=3)
    if not images:
        raise HeadstartError(f"no image that {path} names could be decoded")
    return Examples(images, ids, "image", None if labels is None else [labels[i] for i in kept], source=str(path),
                    kind=kind)


def cut_long_texts(texts: list[str], source: Path, lines: list[int]) -> list[str]:
    """Texts cut to MAX_TEXT_CHARS, with one warning naming how many and the first one's line."""
    long = [i for i, t in enumerate(texts) if len(t) > MAX_TEXT_CHARS]
    if not long:
        return texts
    warnings.warn(f"{source}: cut {len(long)} text(s) longer than {MAX_TEXT_CHARS:,} characters to that length "
                  f"(first at line {lines[long[0]]}); the model reads at most --max-length tokens of each", stacklevel=3)
    return [t[:MAX_TEXT_CHARS] for t in texts]


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
    """Each column headstart reads ('text' and every kind's label column) may appear once."""
    twice = [c for c in ("text", "tokens", *(kind.column for kind in KINDS)) if list(names).count(c) > 1]
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
        except UNDECODABLE:
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
