"""Parquet files and folders written by Hugging Face `datasets` are read like CSV tables: columns named with
--text-column / --image-column / --label-column, ClassLabel ids as their names, Image features decoded, a
DatasetDict's test split as the test set; bad names and damaged files are one line."""

from __future__ import annotations

import csv
import io
import shutil

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

import headstart
from headstart.data import load_examples
from test_bad_input import one_error, run_cli

FAST = {"backbone": "minilm-l6", "strategy": "linear-probe", "epochs": 1, "max_length": 32, "show_progress": False}


@pytest.fixture(scope="module")
def reviews():
    examples = load_examples("builtin:rotten-tomatoes")
    names = sorted(set(examples.labels))
    index = [i for name in names for i in [j for j, label in enumerate(examples.labels) if label == name][:40]]
    return [examples.inputs[i] for i in index], [examples.labels[i] for i in index], names


@pytest.fixture(scope="module")
def saved(tmp_path_factory, reviews):
    """A Dataset folder and a DatasetDict folder of the same reviews, labels as a ClassLabel, own column names."""
    folder = tmp_path_factory.mktemp("hf")
    texts, labels, names = reviews
    features = datasets.Features({"review": datasets.Value("string"), "sentiment": datasets.ClassLabel(names=names)})
    dataset = datasets.Dataset.from_dict({"review": texts, "sentiment": [names.index(x) for x in labels]},
                                         features=features).shuffle(seed=0)
    dataset.save_to_disk(str(folder / "single"))
    datasets.DatasetDict({"train": dataset.select(range(60)),
                          "test": dataset.select(range(60, 80))}).save_to_disk(str(folder / "dict"))
    return folder


COLUMNS = {"text_column": "review", "label_column": "sentiment"}


def test_a_datasets_folder_reads_with_its_own_column_names_and_class_names(saved, reviews, tmp_path):
    examples = load_examples(str(saved / "single"), columns={"text": "review", "label": "sentiment"})
    texts, labels, names = reviews
    assert sorted(examples.inputs) == sorted(texts) and sorted(examples.labels) == sorted(labels)  # names, not ids
    run = headstart.fit(str(saved / "single"), out=tmp_path / "run", **FAST, **COLUMNS)
    assert run.model.task.classes == names
    # evaluate and predict read the run's own column names
    assert headstart.evaluate(tmp_path / "run", str(saved / "single"), show_progress=False)["accuracy"] > 0.5
    assert {p.label for p in headstart.predict(tmp_path / "run", str(saved / "single"), show_progress=False)} <= \
        set(names)
    pq.write_table(pa.table({"review": texts[:3]}), tmp_path / "new.parquet")  # no label column to predict from
    assert len(headstart.predict(tmp_path / "run", str(tmp_path / "new.parquet"), show_progress=False)) == 3


def test_a_dataset_dict_trains_on_its_train_split_and_tests_on_its_test_split(saved, tmp_path):
    run = headstart.fit(str(saved / "dict"), out=tmp_path / "run", **FAST, **COLUMNS)
    with open(tmp_path / "run" / "predictions.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 20  # the test split, not a hold-out of the train split
    assert run.metrics["n_train"] + run.metrics["n_val"] == 60
    # a split named by its folder is a data set of its own
    assert len(load_examples(str(saved / "dict" / "test"), columns={"text": "review", "label": "sentiment"})) == 20


def test_parquet_with_an_image_feature_and_plain_parquet(tmp_path, reviews):
    digits = load_examples("builtin:digits")
    encoded = []
    for image in digits.inputs[:50]:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        encoded.append({"bytes": buffer.getvalue(), "path": None})
    features = datasets.Features({"picture": datasets.Image(),
                                  "digit": datasets.ClassLabel(names=[str(i) for i in range(10)])})
    datasets.Dataset.from_dict({"picture": encoded, "digit": [int(x) for x in digits.labels[:50]]},
                               features=features).to_parquet(str(tmp_path / "digits.parquet"))
    examples = load_examples(str(tmp_path / "digits.parquet"), columns={"image": "picture", "label": "digit"})
    assert examples.modality == "image" and examples.labels == digits.labels[:50]
    assert np.array_equal(examples.inputs[0][:, :, 0], digits.inputs[0])  # decoded as it was encoded (gray -> RGB)
    texts, labels, _ = reviews
    pq.write_table(pa.table({"body": texts, "y": labels}), tmp_path / "plain.parquet")
    code, output = run_cli("fit", tmp_path / "plain.parquet", "--backbone", "minilm-l6", "--epochs", "1",
                           "--text-column", "body", "--label-column", "y", "--out", tmp_path / "run", "--quiet")
    assert code == 0, output
    assert "text_column: body" in (tmp_path / "run" / "config.yaml").read_text()  # a rerun reads the same columns


def test_bad_columns_splits_and_files_are_one_line(saved, tmp_path, reviews):
    texts, labels, _ = reviews
    pq.write_table(pa.table({"text": [t.encode() for t in texts], "label": labels}), tmp_path / "bytes.parquet")
    line = one_error(*run_cli("fit", tmp_path / "bytes.parquet", "--backbone", "minilm-l6"))
    assert "bytes.parquet, row 1: 'text' holds bytes, not a string" in line
    pq.write_table(pa.table({"body": texts, "y": labels}), tmp_path / "plain.parquet")
    line = one_error(*run_cli("fit", tmp_path / "plain.parquet", "--backbone", "minilm-l6", "--text-column", "bdy"))
    assert "has no column 'bdy' (columns: body, y)" in line and "--text-column" in line
    line = one_error(*run_cli("fit", tmp_path / "plain.parquet", "--backbone", "minilm-l6"))
    assert "has no 'text' or 'label' column (columns: body, y); rename yours to 'text' and 'label', or give --text-column" in line
    line = one_error(*run_cli("fit", saved / "dict", "--backbone", "minilm-l6", "--test", saved / "dict",
                              "--text-column", "review", "--label-column", "sentiment"))
    assert "holds the splits train, test of a DatasetDict; name one" in line
    shutil.copytree(saved / "dict", tmp_path / "dict")
    shutil.rmtree(tmp_path / "dict" / "test")
    line = one_error(*run_cli("fit", tmp_path / "dict", "--backbone", "minilm-l6"))
    assert "dataset_dict.json lists split 'test' but" in line and "is missing" in line
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    line = one_error(*run_cli("fit", tmp_path / "bad.parquet", "--backbone", "minilm-l6"))
    assert "bad.parquet cannot be read as a Parquet file" in line


# Every command that reads a table takes the same column options, on the CLI and in the API.
OWN_NAMES = ("--text-column", "body", "--label-column", "y")
COMMANDS = {  # command -> its arguments besides the table
    "compare": ("--backbone", "minilm-l6", "--strategies", "linear-probe", "--seeds", "1", "--epochs", "1",
                "--shot-steps", "0", "--max-length", "32"),
    "rank": ("--backbones", "minilm-l6", "--metrics", "logme", "--max-length", "32"),
    "advise": ("--backbone", "minilm-l6", "--max-length", "32"),
    "self-train": ("--unlabeled", "POOL", "--backbone", "minilm-l6", "--strategy", "linear-probe", "--rounds", "1",
                   "--epochs", "1", "--max-length", "32"),
    "pretrain": ("--method", "mlm", "--backbone", "minilm-l6", "--epochs", "1", "--max-length", "32",
                 "--train-size", "16", "--batch-size", "8"),
}


@pytest.fixture
def own_tables(tmp_path, reviews):
    """Reviews under the columns body and y, and an unlabelled pool of other reviews under body alone."""
    texts, labels, _ = reviews
    pool = load_examples("builtin:rotten-tomatoes").inputs[-30:]
    pq.write_table(pa.table({"body": texts, "y": labels}), tmp_path / "own.parquet")
    pq.write_table(pa.table({"body": pool}), tmp_path / "pool.parquet")
    return tmp_path


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_reads_a_table_by_its_own_column_names(command, own_tables):
    args = [str(own_tables / "pool.parquet") if a == "POOL" else a for a in COMMANDS[command]]
    out = ("--out", own_tables / "out", "--quiet")
    code, output = run_cli(command, own_tables / "own.parquet", *args, *OWN_NAMES, *out)
    assert code == 0, output
    if command != "advise":  # the others save their options; advise's advice.json holds what it measured
        assert "text_column: body" in (own_tables / "out" / "config.yaml").read_text()
    line = one_error(*run_cli(command, own_tables / "own.parquet", *args, "--text-column", "bdy", "--label-column",
                              "y", "--out", own_tables / "refused"))
    assert "has no column 'bdy' (columns: body, y)" in line and not (own_tables / "refused").exists()
