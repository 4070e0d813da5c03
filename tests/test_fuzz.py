"""Fuzzing the readers: whatever bytes a user's file holds, `load_examples` returns Examples or stops with one
HeadstartError line that names the file; no other exception, and the file is left as it was.

Each property runs a small, fixed set of examples (derandomized, no example database), so the file takes seconds.
HEADSTART_FUZZ=N runs N times as many, freshly random each time: `HEADSTART_FUZZ=50 pytest tests/test_fuzz.py`.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import struct
import tempfile
import warnings
import zlib
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from headstart.data import BUILTINS, load_examples
from headstart.data.readers import IMAGE_SUFFIXES, MAX_IMAGE_SIDE, MAX_TEXT_CHARS
from headstart.errors import HeadstartError

SCALE = max(1, int(os.environ.get("HEADSTART_FUZZ", "1")))


def fuzz(examples: int):
    return settings(max_examples=examples * SCALE, deadline=None, database=None, derandomize=SCALE == 1,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example, HealthCheck.filter_too_much])


KINDS = [None, "classification", "regression", "multilabel", "tokens"]


# -- the property ------------------------------------------------------------------------------------

def _snapshot(path: Path) -> dict:
    if path.is_dir():
        return {p: p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}
    return {path: path.read_bytes()}


def read(path: Path, **kwargs):
    """load_examples(path, **kwargs): the Examples, or the HeadstartError after checking that it is one line that
    names the file; anything else raised fails the test. The file (or folder) must be left as it was."""
    before = _snapshot(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            examples = load_examples(str(path), **kwargs)
        except HeadstartError as err:
            message = str(err)
            assert message and len(message.splitlines()) == 1 and "\r" not in message, repr(message)
            assert str(path) in message or path.name in message, repr(message)
            result = err
        else:
            well_formed(examples, kwargs.get("labelled", True))
            result = examples
    assert _snapshot(path) == before, "the reader changed its input"
    return result


def well_formed(examples, labelled: bool) -> None:
    assert len(examples) >= 1 and len(examples.ids) == len(examples.inputs)
    assert (examples.labels is not None) == labelled
    if labelled:
        assert len(examples.labels) == len(examples.inputs)
    for i, x in enumerate(examples.inputs):
        if examples.modality == "image":
            assert isinstance(x, np.ndarray) and x.dtype == np.uint8 and x.ndim == 3 and x.shape[2] == 3
            assert 1 <= min(x.shape[:2]) and max(x.shape[:2]) <= MAX_IMAGE_SIDE
        elif isinstance(x, list):  # a tokenised sentence
            assert x and all(isinstance(w, str) and w for w in x)
            if labelled:
                assert len(examples.labels[i]) == len(x)
        else:
            assert isinstance(x, str) and len(x) <= MAX_TEXT_CHARS


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    """A fresh empty folder per call (hypothesis runs many examples in one test function)."""
    base = tmp_path_factory.mktemp("fuzz")
    return lambda: Path(tempfile.mkdtemp(dir=base))


# -- the source string itself ----------------------------------------------------------------------

SOURCES = st.text(st.characters(exclude_characters="/", exclude_categories=("Cs",)), max_size=30).filter(
    lambda s: not s.startswith(("~", "builtin:")) and s not in (".", ".."))  # never a real folder: run in an empty one


@fuzz(60)
@given(source=st.one_of(SOURCES, SOURCES.map(lambda s: "builtin:" + s).filter(  # never a real set: they take long
    lambda s: s[8:].partition(":")[0] not in BUILTINS.names())),
       labelled=st.booleans(), kind=st.sampled_from(KINDS))
@example(source="~no-such-user-here/data.csv", labelled=True, kind=None)  # was: RuntimeError from expanduser
@example(source="x" * 5000 + ".csv", labelled=True, kind=None)  # was: OSError (file name too long)
@example(source="", labelled=True, kind=None)  # was: read the current folder as an image folder
@example(source="builtin:a\nb", labelled=True, kind=None)  # was: the registry's message broke the line
@example(source="data\n.csv", labelled=True, kind=None)
def test_any_source_string(scratch, source, labelled, kind):
    with contextlib.chdir(scratch()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(HeadstartError) as caught:
            load_examples(source, labelled=labelled, kind=kind)
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and "\r" not in message, repr(message)
    named = source.removeprefix("builtin:").partition(":")[0] if source.startswith("builtin:") else source.strip()
    assert named in message or repr(named)[1:-1] in message or len(source) > 1000, repr(message)


# -- text in odd encodings ---------------------------------------------------------------------------

ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1", "cp1252",
             "surrogateescape"]


def encode(text: str, encoding: str) -> bytes:
    if encoding == "surrogateescape":  # lone surrogates U+DC80..U+DCFF become the invalid UTF-8 bytes 0x80..0xFF
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass")
    return text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")


ODD_CHARS = st.sampled_from(["\x00", "\ufeff", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1e", "\r",
                             "\n", "\r\n", "\t", '"', ",", "\udc80", "\udcff", "\ud800", "\u00a0", "é", "😀"])
ODD_TEXT = st.lists(st.one_of(st.text(max_size=6), ODD_CHARS), max_size=6).map("".join)
COLUMNS = st.one_of(st.sampled_from(["text", "label", "labels", "target", "tokens", "tags", "image", "", "Text",
                                     " label", "te\nxt"]), st.text(max_size=5))
CELLS = st.one_of(ODD_TEXT, st.sampled_from(["", " ", "x", "y", "1.5", "-2", "nan", "inf", "-1e999", "1" * 400,
                                             '["a", "b"]', "[", "[[", "[" * 3000, "[" + "1" * 5000 + "]", "a|b",
                                             "|", '"', '""', "not an image.png", "../x.png", "/etc/hostname"]),
                  st.integers().map(str), st.floats().map(str))
LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r"])


# -- CSV ------------------------------------------------------------------------------------------

@st.composite
def csv_files(draw) -> bytes:
    header = draw(st.lists(COLUMNS, max_size=5))
    rows = draw(st.lists(st.lists(CELLS, max_size=6), max_size=5))  # ragged: any number of fields per row
    end = draw(LINE_ENDS)
    if draw(st.booleans()):  # quoted as a spreadsheet would
        out = io.StringIO()
        writer = csv.writer(out, lineterminator=end, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL,
                                                                                    csv.QUOTE_ALL])))
        for row in ([header] if draw(st.booleans()) or not header else []) + rows:
            writer.writerow(row)
        text = out.getvalue()
    else:  # joined by hand: broken quoting, stray quotes, unterminated fields
        text = end.join(",".join(row) for row in [header, *rows]) + draw(st.sampled_from(["", end]))
    return encode(text, draw(st.sampled_from(ENCODINGS)))


@fuzz(60)
@given(data=st.binary(max_size=400), labelled=st.booleans(), kind=st.sampled_from(KINDS))
@example(data=b"", labelled=True, kind=None)
@example(data=b"text,label\n", labelled=True, kind=None)
@example(data="text,label\na,b\n".encode("utf-16-le"), labelled=True, kind=None)
def test_any_bytes_as_a_csv_file(scratch, data, labelled, kind):
    path = scratch() / "data.csv"
    path.write_bytes(data)
    read(path, labelled=labelled, kind=kind)


@fuzz(100)
@given(data=csv_files(), labelled=st.booleans(), kind=st.sampled_from(KINDS))
@example(data=b'"te\nxt",label\na,b\n', labelled=True, kind=None)  # was: the column list broke the line
@example(data=b'text,labels\na,"[' + b"1" * 5000 + b']"\n', labelled=True, kind=None)  # was: ValueError
@example(data=b"text,labels\na," + b"[" * 5000 + b"\n", labelled=True, kind=None)  # was: RecursionError
@example(data=b"text,label\na,  \n", labelled=True, kind=None)  # was: read as the class ''
@example(data="text,label\na,b\n".encode("utf-16"), labelled=True, kind=None)  # was: refused as not UTF-8
def test_malformed_csv_tables(scratch, data, labelled, kind):
    path = scratch() / "data.csv"
    path.write_bytes(data)
    read(path, labelled=labelled, kind=kind)


LABELS = st.text(min_size=1, max_size=8).filter(lambda s: s.strip())


@fuzz(40)
@given(rows=st.lists(st.tuples(st.text(max_size=30), LABELS), min_size=1, max_size=6),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32"]), end=LINE_ENDS)
@example(rows=[("a\u2028b\x85c\x0cd", "x")], encoding="utf-8", end="\n")
@example(rows=[("héllo", "x"), ("", "y")], encoding="utf-16", end="\r\n")
def test_a_well_formed_csv_reads_back_exactly(scratch, rows, encoding, end):
    path = scratch() / "data.csv"
    out = io.StringIO()  # the csv module quotes a field holding \r or \n only if its line ending holds that character
    writer = csv.writer(out, lineterminator=end, quoting=csv.QUOTE_MINIMAL if end == "\r\n" else csv.QUOTE_ALL)
    writer.writerows([("text", "label"), *rows])
    path.write_bytes(out.getvalue().encode(encoding))
    examples = read(path)
    assert not isinstance(examples, HeadstartError), examples
    assert examples.inputs == [t for t, _ in rows] and examples.labels == [label.strip() for _, label in rows]


@pytest.mark.parametrize("where", ["text", "label", "header", "unterminated"])
def test_a_two_megabyte_csv_field(scratch, where):
    """Past the csv module's field size limit (128 KiB), which raises _csv.Error unless raised."""
    huge = "x" * 2_000_000
    content = {"text": f"text,label\n{huge},a\nshort,b\n", "label": f"text,label\na,{huge}\nb,c\n",
               "header": f"text,{huge}\na,b\n", "unterminated": f'text,label\n"{huge},a\n'}[where]
    path = scratch() / "huge.csv"
    path.write_text(content)
    result = read(path)
    if where == "text":
        assert [len(t) for t in result.inputs] == [MAX_TEXT_CHARS, 5]
    elif where == "label":
        assert result.labels == [huge, "c"]
    else:
        assert isinstance(result, HeadstartError) and len(str(result)) < 1000, str(result)[:1000]


# -- JSONL ----------------------------------------------------------------------------------------

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**300, max_value=10**400),
                         st.floats(), ODD_TEXT, st.sampled_from(["O", "B-PER", "I-PER", "x", ""]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(COLUMNS, inner, max_size=4), max_leaves=12)
JSON_OBJECTS = st.dictionaries(COLUMNS, JSON_VALUES, max_size=5)


@st.composite
def jsonl_lines(draw) -> str:
    kind = draw(st.sampled_from(["object", "value", "truncated", "big number", "deep", "text", "blank"]))
    if kind in ("object", "value", "truncated"):
        line = json.dumps(draw(JSON_OBJECTS if kind != "value" else JSON_VALUES),
                          ensure_ascii=draw(st.booleans()))
        return line[:draw(st.integers(0, max(0, len(line) - 1)))] if kind == "truncated" else line
    if kind == "big number":  # past Python's 4,300-digit limit for int(str)
        return '{"text": "a", "label": ' + "9" * draw(st.integers(4301, 6000)) + "}"
    if kind == "deep":
        depth = draw(st.integers(500, 5000))
        return '{"text": "a", "labels": ' + "[" * depth + "]" * depth + "}"
    if kind == "text":
        return draw(ODD_TEXT)
    return draw(st.sampled_from(["", " ", "\t"]))


@st.composite
def jsonl_files(draw) -> bytes:
    end = draw(LINE_ENDS)
    text = end.join(draw(st.lists(jsonl_lines(), max_size=5))) + draw(st.sampled_from(["", end]))
    return encode(text, draw(st.sampled_from(ENCODINGS + ["utf-8"] * 6)))


@fuzz(60)
@given(data=st.binary(max_size=400), labelled=st.booleans(), kind=st.sampled_from(KINDS))
@example(data=b"", labelled=True, kind=None)
@example(data=b"\xff\xfe", labelled=True, kind=None)
def test_any_bytes_as_a_jsonl_file(scratch, data, labelled, kind):
    path = scratch() / "data.jsonl"
    path.write_bytes(data)
    read(path, labelled=labelled, kind=kind)


@fuzz(120)
@given(data=jsonl_files(), labelled=st.booleans(), kind=st.sampled_from(KINDS))
@example(data=b'{"text": "a", "label": ' + b"1" * 5000 + b"}\n", labelled=True, kind=None)  # was: ValueError
@example(data=b'{"text": "a", "label": ' + b"[" * 5000 + b"]" * 5000 + b"}", labelled=True, kind=None)  # Recursion
@example(data=b'{"text": "a", "target": ' + b"1" * 400 + b"}", labelled=True, kind=None)  # was: OverflowError
@example(data=b'{"te\\nxt": "a", "label": "b"}', labelled=True, kind=None)  # was: the column list broke the line
@example(data=b'{"tokens": ["a"], "tags": {"x": "y"}}', labelled=True, kind=None)  # was: read as the tag "('x', 'y')"
@example(data=b'{"text": NaN, "label": Infinity}\n{"text": "b", "target": -Infinity}', labelled=True, kind=None)
def test_malformed_jsonl_tables(scratch, data, labelled, kind):
    path = scratch() / "data.jsonl"
    path.write_bytes(data)
    read(path, labelled=labelled, kind=kind)


@fuzz(40)
@given(rows=st.lists(st.tuples(st.text(max_size=30), LABELS), min_size=1, max_size=6), ascii_only=st.booleans(),
       end=st.sampled_from(["\n", "\r\n"]))
@example(rows=[("a\u2028b", "x"), ("c\u2029d\x85e", "y")], ascii_only=False, end="\n")  # was: not valid JSON
def test_a_well_formed_jsonl_reads_back_exactly(scratch, rows, ascii_only, end):
    path = scratch() / "data.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": label}, ensure_ascii=ascii_only) + end
                            for t, label in rows), encoding="utf-8", newline="")
    examples = read(path)
    assert not isinstance(examples, HeadstartError), examples
    assert examples.inputs == [t for t, _ in rows] and examples.labels == [label.strip() for _, label in rows]


WORDS = st.text(min_size=1, max_size=6).filter(lambda w: w.strip())
TAG_SETS = st.sampled_from([["O", "B-PER", "I-PER", "B-LOC"], ["NN", "VB", "DT", "nn"]])


@fuzz(30)
@given(data=st.data(), tags=TAG_SETS, ascii_only=st.booleans())
def test_well_formed_token_rows_read_back_exactly(scratch, data, tags, ascii_only):
    rows = data.draw(st.lists(st.lists(st.tuples(WORDS, st.sampled_from(tags)), min_size=1, max_size=5),
                              min_size=1, max_size=4))
    path = scratch() / "words.jsonl"
    path.write_text("".join(json.dumps({"tokens": [w for w, _ in r], "tags": [t for _, t in r]},
                                       ensure_ascii=ascii_only) + "\n" for r in rows), encoding="utf-8")
    examples = read(path)
    assert not isinstance(examples, HeadstartError), examples
    assert examples.inputs == [[w.strip() for w, _ in r] for r in rows]
    assert examples.labels == [[t for _, t in r] for r in rows] and examples.kind == "tokens"


# -- plain text (.txt, unlabelled only) ---------------------------------------------------------

@fuzz(40)
@given(data=st.one_of(st.binary(max_size=300), st.builds(encode, ODD_TEXT, st.sampled_from(ENCODINGS))),
       labelled=st.booleans())
def test_any_bytes_as_a_text_file(scratch, data, labelled):
    path = scratch() / "corpus.txt"
    path.write_bytes(data)
    result = read(path, labelled=labelled)
    assert isinstance(result, HeadstartError) or not labelled


@fuzz(30)
@given(lines=st.lists(st.text(st.characters(exclude_characters="\r\n\ufeff", exclude_categories=("Cs",)),
                              max_size=20), min_size=1, max_size=6), end=LINE_ENDS)
@example(lines=["one\x0ctext", "two\u2028texts\x85"], end="\n")  # was: split into five texts
def test_a_text_file_reads_back_one_text_per_line(scratch, lines, end):
    path = scratch() / "corpus.txt"
    path.write_bytes(end.join(lines).encode("utf-8"))
    expected = [line.strip() for line in lines if line.strip()]
    result = read(path, labelled=False)
    assert result.inputs == expected if expected else isinstance(result, HeadstartError)


# -- CoNLL ----------------------------------------------------------------------------------------

TOKENS = st.text(st.characters(exclude_characters=" \t\r\n\ufeff", exclude_categories=("Cs",)), min_size=1,
                 max_size=6).filter(lambda w: w != "-DOCSTART-")
GAPS = st.sampled_from([" ", "\t", "  ", " \t "])


@st.composite
def conll_files(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        shape = draw(st.sampled_from(["row", "row", "row", "lone token", "columns", "blank", "spaces", "docstart",
                                      "odd"]))
        if shape in ("row", "columns", "lone token"):
            fields = [draw(TOKENS)] + ([draw(TOKENS)] if shape == "columns" else []) + (
                [draw(st.sampled_from(["O", "B-PER", "I-PER", "NN", "B-", "I", "x"]))] if shape != "lone token" else [])
            lines.append(draw(GAPS).join(fields) + draw(st.sampled_from(["", " ", "\t"])))
        elif shape == "docstart":
            lines.append("-DOCSTART- -X- O O")
        else:
            lines.append({"blank": "", "spaces": draw(st.sampled_from([" ", "\t", " \t"])), "odd": draw(ODD_TEXT)}[shape])
    return encode(draw(LINE_ENDS).join(lines), draw(st.sampled_from(ENCODINGS + ["utf-8"] * 6)))


@fuzz(60)
@given(data=st.one_of(st.binary(max_size=300), conll_files()), labelled=st.booleans(),
       suffix=st.sampled_from([".conll", ".iob", ".bio"]), kind=st.sampled_from(KINDS))
@example(data=b"", labelled=True, suffix=".conll", kind=None)
@example(data=b"-DOCSTART- -X- O O\n\n", labelled=True, suffix=".conll", kind=None)
def test_malformed_conll_files(scratch, data, labelled, suffix, kind):
    path = scratch() / f"words{suffix}"
    path.write_bytes(data)
    read(path, labelled=labelled, kind=kind)


@fuzz(40)
@given(sentences=st.data(), tags=TAG_SETS, gap=GAPS, end=LINE_ENDS, blank=st.sampled_from(["", " ", "\t"]))
def test_a_well_formed_conll_file_reads_back_exactly(scratch, sentences, tags, gap, end, blank):
    rows = sentences.draw(st.lists(st.lists(st.tuples(TOKENS, st.sampled_from(tags)), min_size=1, max_size=5),
                                   min_size=1, max_size=4))
    text = (end + blank + end).join(end.join(f"{w}{gap}{t}" for w, t in sentence) for sentence in rows) + end
    path = scratch() / "words.conll"
    path.write_bytes(text.encode("utf-8"))
    examples = read(path)
    assert examples.inputs == [[w for w, _ in s] for s in rows], examples
    assert examples.labels == [[t for _, t in s] for s in rows]


def test_a_word_that_holds_a_form_feed_or_a_line_separator_stays_one_word(scratch):
    path = scratch() / "odd.conll"
    path.write_text("a\x0cb NN\nc\u2028d\x85 VB\n\ne NN\n", encoding="utf-8")  # was: 'a' has a token but no tag
    assert load_examples(str(path)).inputs == [["a\x0cb", "c\u2028d\x85"], ["e"]]


# -- images ------------------------------------------------------------------------------------------

# (suffix, Pillow format, mode) that Pillow writes; each is read back as RGB.
IMAGE_KINDS = [(".png", "PNG", m) for m in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16")] + [
    (".jpg", "JPEG", m) for m in ("RGB", "L", "CMYK")] + [
    (".gif", "GIF", "P"), (".bmp", "BMP", "RGB"), (".bmp", "BMP", "1"), (".webp", "WEBP", "RGBA"),
    (".ppm", "PPM", "RGB"), (".pgm", "PPM", "L")] + [
    (".tif", "TIFF", m) for m in ("RGB", "CMYK", "I;16", "I", "F", "YCbCr", "LAB")]
SIZES = [(1, 1), (5, 7), (16, 3), (2, 40)]


@functools.cache
def encoded(fmt: str, mode: str, size: tuple[int, int]) -> bytes:
    pixels = np.random.default_rng(sum(size)).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    if mode in ("I;16", "I", "F"):
        image = Image.fromarray((pixels[..., 0].astype(np.uint16) * 257).astype(
            {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]))
    else:
        image = Image.fromarray(pixels).convert(mode)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def tiff_with_text_offsets() -> bytes:
    """A TIFF whose StripOffsets tag says ASCII, not LONG: Pillow's loader then fails with a TypeError."""
    data = encoded("TIFF", "RGB", (1, 1))
    tag = data.index(b"\x11\x01\x04\x00")  # tag 273 (StripOffsets), type 4 (LONG)
    return data[:tag + 2] + b"\x02" + data[tag + 3:]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int, depth: int = 8, colour: int = 2, data: bytes = b"") -> bytes:
    """A PNG that claims width x height pixels and holds `data` (zlib-compressed) as its only image chunk."""
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
            + (_chunk(b"IDAT", zlib.compress(data)) if data else b"") + _chunk(b"IEND", b""))


def huge(suffix: str, width: int, height: int) -> tuple[bytes, int]:
    """A small file whose header claims width x height pixels (at most 65535 a side in GIF and JPEG), and the
    number of pixels it claims."""
    if suffix in (".gif", ".jpg"):
        width, height = min(width, 65535), min(height, 65535)
    if suffix == ".gif":
        return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;", width * height
    if suffix == ".bmp":
        info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
        return b"BM" + struct.pack("<IHHI", 54 + 12, 0, 0, 54) + info + b"\x00" * 12, width * height
    if suffix == ".jpg":  # a real JPEG with its frame header's size patched
        data = bytearray(encoded("JPEG", "RGB", (5, 7)))
        sof = data.index(b"\xff\xc0")
        data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
        return bytes(data), width * height
    return png_header(width, height, data=b"\x00" * 64), width * height


# The sizes a huge header claims: past twice Pillow's bomb limit (refused when opened), or below it and small
# enough to cost little memory while Pillow allocates before finding the data missing.
HUGE_SIZES = st.one_of(st.sampled_from([(40000, 40000), (65535, 65535), (1, 2**31 - 1), (2**31 - 1, 1)]),
                       st.tuples(st.integers(1, 2000), st.integers(1, 2000)))


@st.composite
def image_files(draw) -> tuple[str, bytes, bool | None]:
    """(file suffix, bytes, whether it must decode: True / False / None for 'may or may not')."""
    how = draw(st.sampled_from(["valid", "valid", "truncated", "mutated", "empty", "random", "huge", "not image"]))
    suffix, fmt, mode = draw(st.sampled_from(IMAGE_KINDS))
    data = encoded(fmt, mode, draw(st.sampled_from(SIZES)))
    if how == "valid":
        return suffix, data, True
    if how == "truncated":
        return suffix, data[:draw(st.integers(0, len(data) - 1))], None
    if how == "mutated":
        data = bytearray(data)
        for position, value in draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)),
                                             min_size=1, max_size=8)):
            data[position] = value
        return suffix, bytes(data), None
    if how == "empty":
        return draw(st.sampled_from(sorted(IMAGE_SUFFIXES))), b"", False
    if how == "random":
        return draw(st.sampled_from(sorted(IMAGE_SUFFIXES))), draw(st.binary(max_size=200)), None
    if how == "huge":
        suffix = draw(st.sampled_from([".png", ".gif", ".bmp", ".jpg"]))
        data, pixels = huge(suffix, *draw(HUGE_SIZES))
        return suffix, data, False if pixels > 2 * Image.MAX_IMAGE_PIXELS else None
    return ".txt", draw(st.binary(max_size=20)), None  # not an image file: not read


FOLDER_NAMES = st.one_of(st.sampled_from(["a", "b", "cat", " dog ", ".hidden", "a b", "x.png"]),
                         st.text(st.characters(exclude_characters="/\x00", exclude_categories=("Cs",)),
                                 min_size=1, max_size=6)).filter(lambda n: n not in (".", ".."))


@st.composite
def image_folders(draw):
    """{relative path: (bytes, must decode)} under class folders, and maybe loose files and folders named like
    images at the top."""
    files = {}
    for folder in draw(st.lists(FOLDER_NAMES, min_size=0, max_size=3, unique=True)):
        for i, (suffix, data, decodes) in enumerate(draw(st.lists(image_files(), max_size=3))):
            files[f"{folder}/{i}{suffix}"] = (data, decodes)
        if draw(st.integers(0, 5)) == 0:
            files[f"{folder}/sub/deep.png"] = (encoded("PNG", "RGB", (5, 7)), True)
        if draw(st.integers(0, 5)) == 0:
            files[f"{folder}/folder.png/"] = (None, False)  # a directory whose name ends in .png
    if draw(st.integers(0, 3)) == 0:
        suffix, data, decodes = draw(image_files())
        files[f"loose{suffix}"] = (data, decodes)
    return files


def opened(root: Path, files: dict, labelled: bool) -> dict:
    """{relative path: must decode (True, False, None: may or may not)} of what the reader opens under root."""
    tops = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if labelled else [root]
    return {p.relative_to(root).as_posix(): files.get(p.relative_to(root).as_posix(), (None, None))[1]
            if p.is_file() else False for top in tops for p in top.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES}


def write_tree(root: Path, files: dict) -> None:
    for name, (data, _) in files.items():
        path = root / name
        if data is None:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


@fuzz(60)
@given(files=image_folders(), labelled=st.booleans(), on_bad_image=st.sampled_from(["skip", "error"]))
@example(files={"a/0.png": (png_header(40000, 40000), False), "a/1.png": (encoded("PNG", "RGB", (5, 7)), True)},
         labelled=True, on_bad_image="error")
@example(files={"a\nb/0.png": (b"", False), "c/0.png": (encoded("PNG", "RGB", (5, 7)), True)},
         labelled=True, on_bad_image="error")  # was: the file's name broke the line
@example(files={"a/0.tif": (tiff_with_text_offsets(), False), "a/1.png": (encoded("PNG", "RGB", (5, 7)), True)},
         labelled=False, on_bad_image="skip")  # was: TypeError from Pillow
def test_image_folders_with_any_files(scratch, files, labelled, on_bad_image):
    root = scratch() / "images"
    root.mkdir()
    write_tree(root, files)
    result = read(root, labelled=labelled, on_bad_image=on_bad_image)
    found = opened(root, files, labelled)
    if isinstance(result, HeadstartError):  # only no good image, or a bad one under --on-bad-image error, may stop
        assert not any(d is True for d in found.values()) or (
            on_bad_image == "error" and any(d is not True for d in found.values())), (str(result), found)
        return
    assert {name for name, d in found.items() if d is True} <= set(result.ids) <= set(found), (found, result.ids)
    assert not {name for name, d in found.items() if d is False} & set(result.ids)
    if on_bad_image == "error":
        assert set(result.ids) == set(found)
    if labelled:
        assert result.labels == [i.split("/")[0].strip() for i in result.ids]


@fuzz(25)
@given(files=st.lists(image_files(), min_size=1, max_size=4), data=st.data(),
       on_bad_image=st.sampled_from(["skip", "error"]), labelled=st.booleans())
def test_a_table_of_image_paths(scratch, files, data, on_bad_image, labelled):
    root = scratch()
    names = []
    for i, (suffix, content, _) in enumerate(files):
        (root / f"{i}{suffix}").write_bytes(content)
        names.append(f"{i}{suffix}")
    cells = data.draw(st.lists(st.one_of(st.sampled_from(names), st.sampled_from(
        [str(root / names[0]), "../outside.png", "missing.png", "sub/", ".", "a\nb.png", "x" * 300 + ".png",
         "nul\x00.png"]), ODD_TEXT), min_size=1, max_size=6))
    table = root / "images.csv"
    with open(table, "w", newline="", encoding="utf-8", errors="surrogatepass") as f:
        csv.writer(f).writerows([("image", "label"), *((c, "xy"[i % 2]) for i, c in enumerate(cells))])
    read(table, labelled=labelled, on_bad_image=on_bad_image)


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "P", "RGBA", "LA", "1", "F", "LAB", "YCbCr"])
def test_every_mode_reads_as_rgb(scratch, mode):
    root = scratch()
    suffix, fmt = (".jpg", "JPEG") if mode == "CMYK" else (".tif", "TIFF") if mode in ("F", "LAB", "YCbCr") \
        else (".png", "PNG")
    (root / "a").mkdir()
    (root / "a" / f"0{suffix}").write_bytes(encoded(fmt, mode, (16, 3)))
    examples = read(root)
    assert examples.inputs[0].shape == (3, 16, 3)


# -- the bugs the properties found, one by one -----------------------------------------------------

def one_line(source, **kwargs) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(HeadstartError) as caught:
            load_examples(str(source), **kwargs)
    message = str(caught.value)
    assert len(message.splitlines()) == 1, message
    return message


@pytest.mark.parametrize("content, expected", [
    ('{"text": "a", "label": ' + "1" * 5000 + "}\n", "line 1: JSON that Python cannot read (a number longer than "
                                                    "4,300 digits)"),
    ('\n{"text": "a", "label": ' + "[" * 50000 + "]" * 50000 + "}\n", "line 2: JSON that Python cannot read (lists "
                                                                      "or objects nested too deeply)"),
    ('{"text": "a", "target": ' + "1" * 400 + "}\n", "line 1: 'target' is '1111"),
    ('{"text": "a", "labels": {"x": "y"}}\n', "line 1: 'labels' is a JSON object"),
    ('{"tokens": ["a"], "tags": {"x": "y"}}\n', "line 1: 'tags' is a JSON object"),
    ('{"text": {"x": 1}, "label": "a"}\n', "line 1: 'text' is a JSON object, not one value"),
    ('{"te\\nxt": "a", "label": "b"}\n', "has no 'text' column (columns: 'te\\nxt', label)"),
    ('{"text": "a", "label": " \\t"}\n', "line 1: empty 'text' or 'label'"),
    ('[{"text": "a", "label": "b"}]\n', "line 1: expected a JSON object"),
])
def test_jsonl_that_stopped_with_a_traceback_or_was_misread(scratch, content, expected):
    path = scratch() / "bad.jsonl"
    path.write_text(content)
    assert expected in one_line(path)


@pytest.mark.parametrize("content, expected", [
    ('text,labels\na,"[' + "1" * 5000 + ']"\n', "line 2: 'labels' is a JSON list Python cannot read (a number"),
    ("text,labels\na," + "[" * 5000 + "\n", "line 2: 'labels' is a JSON list Python cannot read (lists or objects"),
    ('"te\nxt",label\na,b\n', "has no 'text' column (columns: 'te\\nxt', label)"),
    ("text,label\na,  \n", "row 2: empty 'text' or 'label'"),
    ("text,image\na,b\n", "has no 'label' column (columns: text, image)"),
])
def test_csv_that_stopped_with_a_traceback_or_was_misread(scratch, content, expected):
    path = scratch() / "bad.csv"
    path.write_text(content)
    assert expected in one_line(path)


def test_a_multilabel_json_list_cell_still_reads(scratch):
    path = scratch() / "tags.csv"
    path.write_text('text,labels\na,"[""x"", ""y""]"\nb," [""y""]"\nc,[x\n')
    assert "line 4: 'labels' starts like a JSON list but is not one" in one_line(path)
    path.write_text('text,labels\na,"[""x"", ""y""]"\nb," [""y""]"\n')
    assert load_examples(str(path)).labels == [["x", "y"], ["y"]]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".txt", ".conll"])
def test_text_with_a_byte_order_mark_reads_in_its_encoding(scratch, encoding, suffix):
    content = {".csv": "text,label\nhéllo,x\n", ".jsonl": '{"text": "héllo", "label": "x"}\n', ".txt": "héllo\n",
               ".conll": "héllo x\n"}[suffix]
    path = scratch() / f"data{suffix}"
    bom = "\ufeff" if encoding == "utf-16-be" else ""  # the plain utf-16 and utf-32 codecs write their own mark
    path.write_bytes((bom + content).encode(encoding))
    examples = load_examples(str(path), labelled=suffix != ".txt")
    assert examples.inputs in (["héllo"], [["héllo"]])


@pytest.mark.parametrize("encoding, expected", [
    ("utf-16-le", "is not UTF-8 text: it holds NUL bytes, as UTF-16 text without a byte-order mark"),
    ("utf-32-be", "is not UTF-8 text: it holds NUL bytes"),
    ("latin-1", "is not UTF-8 text: line 2 holds bytes that are not UTF-8; save it as UTF-8"),
])
def test_text_in_another_encoding_is_named(scratch, encoding, expected):
    path = scratch() / "data.csv"
    path.write_bytes("text,label\nhéllo,x\n".encode(encoding))
    assert expected in one_line(path)


def test_an_unreadable_file_gets_one_line(scratch):
    path = scratch() / "data.csv"
    path.write_text("text,label\na,b\n")
    with mock.patch.object(Path, "read_bytes", side_effect=PermissionError(13, "Permission denied")):
        assert one_line(path) == f"cannot read {path} (Permission denied); check that it is a readable file"


@pytest.mark.parametrize("on_bad_image", ["skip", "error"])
def test_a_tiff_pillow_fails_on_with_a_type_error_is_undecodable(scratch, on_bad_image):
    root = scratch()
    (root / "a").mkdir()
    (root / "a" / "bad.tif").write_bytes(tiff_with_text_offsets())
    (root / "a" / "good.png").write_bytes(encoded("PNG", "RGB", (5, 7)))
    if on_bad_image == "error":
        assert "cannot decode image" in one_line(root, on_bad_image="error")
    else:
        with pytest.warns(UserWarning, match="skipped 1 image"):
            assert load_examples(str(root)).ids == ["a/good.png"]


def test_an_image_table_names_an_odd_path_on_one_line(scratch):
    root = scratch()
    (root / "images.csv").write_text('image,label\n"a\nb.png",x\n')
    assert "line 3: cannot decode image 'a\\nb.png'" in one_line(root / "images.csv", on_bad_image="error")
