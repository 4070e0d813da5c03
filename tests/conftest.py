"""Shared fixtures: a private feature cache, and tiny real data sets written as a user would have them."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    os.environ["HEADSTART_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def digit_folders(tmp_path_factory):
    """builtin:digits written as train/ and test/ image folders (one subfolder per class), 4 classes."""
    from headstart.data import load_examples

    digits = load_examples("builtin:digits")
    root = tmp_path_factory.mktemp("digits")
    counts: dict[str, int] = {}
    for image, label in zip(digits.inputs, digits.labels):
        if label not in ("0", "1", "2", "3"):
            continue
        n = counts[label] = counts.get(label, 0) + 1
        if n > 40:
            continue
        part = "test" if n > 30 else "train"
        folder = root / part / label
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{n}.png")
    return root / "train", root / "test"


@pytest.fixture(scope="session")
def review_csvs(tmp_path_factory):
    """Real Rotten Tomatoes snippets as train.csv (120) and test.csv (40) with text,label columns."""
    from headstart.data import load_examples
    from headstart.data.splits import stratified_subset

    reviews = stratified_subset(load_examples("builtin:rotten-tomatoes"), 160, seed=0)
    root = tmp_path_factory.mktemp("reviews")
    order = np.random.default_rng(0).permutation(len(reviews))
    for name, index in (("train.csv", order[:120]), ("test.csv", order[120:])):
        with open(root / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows([reviews.inputs[i], reviews.labels[i]] for i in index)
    return root / "train.csv", root / "test.csv"
