"""Bad input: one line naming the file, field or value and the fix, exit code 2, no traceback, nothing lost."""

from __future__ import annotations

import io
import shutil
import struct
import sys
import warnings
import zlib
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from headstart import api, backbones, cli
from headstart.data import load_examples, zoo
from headstart.data.splits import stratified_subset, train_subset
from headstart.errors import HeadstartError
from headstart.tasks import classification


def run_cli(*args: str) -> tuple[int, str]:
    """`headstart ARGS` in this process: (exit code, stdout + stderr)."""
    output = io.StringIO()
    with mock.patch.object(sys, "argv", ["headstart", *map(str, args)]), warnings.catch_warnings(), \
            redirect_stdout(output), redirect_stderr(output):
        try:
            cli.main()
        except SystemExit as exit_:
            return exit_.code or 0, output.getvalue()
    return 0, output.getvalue()


def one_error(code: int, output: str) -> str:
    """The single 'error:' line of a failed command, after checking the contract around it."""
    assert code == 2, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    return errors[0]


def png(path, size=(12, 12), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)


def bomb_png(path):
    """A PNG whose header claims 40000 x 40000 pixels: Pillow refuses it as a decompression bomb."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


def image_folder(root, classes="ab", per_class=6, broken=True):
    for label in classes:
        for i in range(per_class):
            png(root / label / f"{i}.png", seed=hash((label, i)) % 1000)
    if broken:
        (root / classes[0] / "broken.png").write_bytes(b"not an image")
    return root


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nocols.csv").write_text("txt,lab\na,b\n")
    (tmp_path / "unclosed.csv").write_text('text,label\n"unclosed,a\nb,c\n')
    (tmp_path / "extra.csv").write_text("text,label\na,x,extra\nb,y\n")
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": "x"}\n{bad\n')
    (tmp_path / "oneclass.csv").write_text("text,label\na,x\nb,x\nc,x\n")
    (tmp_path / "small.csv").write_text("text,label\na,x\nb,x\nc,x\nd,y\n")
    (tmp_path / "rare.csv").write_text("text,label\n" + "".join(f"t{i},x\n" for i in range(9)) + "u,y\n")
    (tmp_path / "texts.csv").write_text("text,label\n" + "".join(f"t{i},{'xy'[i % 2]}\n" for i in range(20)))
    image_folder(tmp_path / "imgs", per_class=4)
    image_folder(tmp_path / "bombs", per_class=3, broken=False)
    bomb_png(tmp_path / "bombs" / "a" / "huge.png")
    (tmp_path / "junk.safetensors").write_bytes(b"junk junk junk junk")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    torch.save({"conv1.weight": [1, 2, 3]}, tmp_path / "listy.pt")
    save_file({"conv1.weight": torch.zeros(2)}, tmp_path / "tiny.safetensors")
    (tmp_path / "afile").write_text("I am a file")
    (tmp_path / "tags.jsonl").write_text("".join(
        f'{{"tokens": ["the", "{w}", "runs"], "tags": ["DET", "N", "V"]}}\n' for w in "abcdefghijklmnop"))
    return tmp_path


IMAGE = ["--backbone", "efficientnet-lite0"]
TEXT = ["--backbone", "minilm-l6"]
CASES = [
    # data that is missing or malformed
    (["fit", "missing.csv", *TEXT], ["data not found: missing.csv", "builtin:NAME"]),
    (["fit", "no_such_folder", *IMAGE], ["data not found: no_such_folder", "an image folder"]),
    (["fit", "small.csv", "--test", "gone.csv", *TEXT], ["data not found: gone.csv"]),
    (["fit", "missing.csv", *TEXT, "--dry-run"], ["data not found: missing.csv"]),
    (["fit", "nocols.csv", *TEXT], ["nocols.csv", "'text'", "rename", "--text-column and --label-column"]),
    (["fit", "texts.csv", *TEXT, "--task", "tokens"], ["rename yours to 'tokens' and 'tags', or give --label-column"]),
    (["fit", "unclosed.csv", *TEXT], ["unclosed.csv", "quoting"]),
    (["fit", "extra.csv", *TEXT], ["extra.csv, line 2", "expected 2 fields"]),
    (["fit", "bad.jsonl", *TEXT], ["bad.jsonl, line 2", "JSON"]),
    (["fit", "afile", *TEXT], ["afile: unsupported file type", ".csv, .jsonl, .parquet, .txt (unlabelled), a CoNLL file"]),
    # too few classes or examples
    (["fit", "oneclass.csv", *TEXT], ["oneclass.csv", "at least two"]),
    (["fit", "small.csv", *TEXT], ["class 'y' (1)", "at least 3 per class", "or pass --test"]),
    (["fit", "small.csv", "--test", "small.csv", *TEXT], ["class 'y' (1)", "at least 2"]),
    (["fit", "builtin:digits", "--train-size", "5", *TEXT], ["--train-size 5", "at least 20"]),
    (["fit", "rare.csv", "--train-size", "6", *TEXT], ["rare.csv: class 'y' (1)", "--train-size 6"]),
    # images that cannot be decoded, when told to stop
    (["fit", "imgs", *IMAGE, "--on-bad-image", "error"], ["broken.png", "--on-bad-image skip"]),
    (["fit", "bombs", *IMAGE, "--on-bad-image", "error"], ["huge.png", "--on-bad-image skip"]),
    # backbones and strategies
    (["fit", "imgs", "--backbone", "minilm"], ["unknown backbone 'minilm'", "did you mean 'minilm-l6'", "efficientnet-lite0"]),
    (["fit", "imgs", *IMAGE, "--strategy", "fulll"], ["unknown strategy 'fulll'", "freeze:K, full", "linear-probe"]),
    (["fit", "imgs", *IMAGE, "--strategy", "freeze"], ["freeze:K", "freeze:2"]),
    (["fit", "imgs", *IMAGE, "--strategy", "freeze:x"], ["freeze:x", "whole number"]),
    (["fit", "texts.csv", *TEXT, "--strategy", "full", "--budget", "10m"], ["for --strategy auto only", "drop --budget"]),
    (["fit", "imgs", *IMAGE, "--image-size", "32", "--strategy", "freeze:20"], ["9 layer groups", "at most 9"]),
    (["fit", "imgs", *IMAGE, "--strategy", "freeze:20", "--dry-run"], ["9 layer groups", "at most 9"]),
    (["fit", "imgs", *TEXT], ["reads texts", "imgs holds images", "an image backbone"]),
    (["fit", "texts.csv", *IMAGE], ["reads images", "texts.csv holds texts", "a text backbone"]),
    # timm architectures and weights files
    (["fit", "imgs", "--backbone", "timm:resnet18"], ["--weights FILE", "timm:resnet18:random"]),
    (["fit", "imgs", "--backbone", "timm:resnet18", "--weights", "nope.pt"], ["weights file not found: nope.pt"]),
    (["fit", "imgs", "--backbone", "timm:resnet18", "--weights", "imgs"], ["--weights imgs is a folder"]),
    (["fit", "texts.csv", *TEXT, "--strategy", "auto", "--budget", "5m30s"], ["'5m30s'", "in one unit", "10m"]),
    (["fit", "imgs", "--backbone", "timm:resnt18", "--weights", "nope.pt"], ["unknown timm architecture 'resnt18'"]),
    (["fit", "imgs", "--backbone", "timm:", "--weights", "tiny.safetensors"], ["after 'timm:'", "timm:resnet18"]),
    (["fit", "imgs", "--backbone", "timm:resnet18", "--weights", "tiny.safetensors"],
     ["tiny.safetensors does not fit timm:resnet18", "missing", "check the architecture name"]),
    (["fit", "imgs", "--backbone", "timm:resnet18", "--weights", "junk.safetensors"], ["junk.safetensors is not a"]),
    (["fit", "imgs", "--backbone", "timm:resnet18", "--weights", "junk.pt"], ["junk.pt is not a safetensors file"]),
    (["fit", "imgs", "--backbone", "timm:resnet18", "--weights", "listy.pt"], ["listy.pt: 'conv1.weight' holds"]),
    (["fit", "imgs", *IMAGE, "--weights", "tiny.safetensors"], ["--weights is for timm:ARCH only", "drop --weights"]),
    (["fit", "imgs", "--backbone", "timm:resnet18:random", "--weights", "tiny.safetensors"], ["has random weights"]),
    # the data zoo
    (["fit", "builtin:nope", *TEXT], ["unknown built-in data set 'nope'", "rotten-tomatoes"]),
    (["fit", "builtin:digits:test", *IMAGE], ["no separate test part"]),
    # option values
    (["fit", "imgs", *IMAGE, "--precision", "fp16"], ["train.precision", "'fp32' or 'bf16'", "'fp16'"]),
    (["fit", "imgs", *IMAGE, "--batch-size", "0"], ["train.batch_size", "greater than or equal to 1"]),
    (["fit", "imgs", *IMAGE, "--batch-size", "abc"], ["'--batch-size'", "valid integer", "headstart fit --help"]),
    (["fit", "imgs", *IMAGE, "--on-bad-image", "maybe"], ["data.on_bad_image", "'skip' or 'error'"]),
    (["fit", "imgs", *IMAGE, "--epochs", "0", "--lr", "-1"], ["strategy.epochs", "strategy.lr"]),
    (["fit", "imgs", *IMAGE, "--min-steps", "100000000000"], ["train.min_steps", "less than or equal to 1000000"]),
    (["fit", "imgs", *IMAGE, "--out", "afile"], ["--out afile is a file"]),
    (["fit", "texts.csv", *TEXT, "--max-length", "1000"], ["--max-length 1000 is more than", "(512 tokens)",
                                                          "--max-length 512 or less"]),
    (["fit", *IMAGE], ["TRAIN"]),
    (["fit", "--config", "missing.yaml"], ["config file not found: missing.yaml"]),
    (["evaluate"], ["Missing argument", "headstart evaluate --help"]),
    (["bogus"], ["No such command 'bogus'"]),
    # folders that are not runs
    (["predict", "imgs", "imgs"], ["imgs is not a headstart run directory", "--out folder of a 'headstart fit'"]),
    (["evaluate", ".", "imgs"], ["not a headstart run directory"]),
    (["predict", "no_such_run", "imgs"], ["no_such_run is not a headstart run directory"]),
    # a method or a --source that does not suit the data says to change the data
    (["pretrain", "imgs", "--method", "mlm", *TEXT, "--out", "p"], ["--method mlm reads texts", "imgs holds images",
                                                                   "give texts, or --method contrastive"]),
    (["advise", "texts.csv", *TEXT, "--source", "imgs"], ["--source imgs holds images", "give texts as --source"]),
    # compare shares the data layer
    (["compare", "imgs", *IMAGE, "--shots", "0"], ["--shots", "'0'"]),
    (["compare", "imgs", *IMAGE, "--folds", "9"], ["--folds 9", "smallest class"]),
]


@pytest.mark.parametrize("args, expected", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_gets_one_clear_line(args, expected, files):
    error = one_error(*run_cli(*args))
    for text in expected:
        assert text in error, error


@pytest.mark.parametrize("variable, value, expected", [
    ("HEADSTART_CACHE", "afile", "HEADSTART_CACHE='afile' is a file, not a folder"),
    ("HEADSTART_CACHE_MAX", "lots", "HEADSTART_CACHE_MAX='lots' is not a size"),
    ("HEADSTART_PREFIX_MAX", "-5GB", "0 (the frozen-prefix cache off)"),
    ("HEADSTART_CHECKPOINT_INTERVAL", "soon", "not a number of seconds"),
])
def test_a_bad_environment_variable_is_refused_before_any_work(variable, value, expected, files, monkeypatch):
    monkeypatch.setenv(variable, value)
    assert expected in one_error(*run_cli("fit", "texts.csv", *TEXT, "--out", "run"))
    assert not (files / "run").exists()


def test_predict_says_to_rename_a_column_it_reads_as_the_model_was_trained(files):
    with pytest.raises(HeadstartError) as error:
        load_examples("nocols.csv", labelled=False, columns={"text": None}, run_columns=True)
    assert "rename yours to 'text' (the column the model was trained from)" in str(error.value)
    assert "--text-column" not in str(error.value)


@pytest.mark.parametrize("dry_run", [["--dry-run"], []])
def test_a_plan_the_backbone_cannot_hold_is_refused_before_it_is_printed(files, dry_run):
    code, output = run_cli("fit", "imgs", *IMAGE, "--strategy", "freeze:20", *dry_run)
    assert "at most 9" in one_error(code, output) and "head only" not in output


def test_compare_refuses_a_plan_the_data_cannot_take_before_any_fold_trains(files):
    code, output = run_cli("compare", "tags.jsonl", *TEXT, "--strategies", "setfit", "--out", "cmp")
    assert "setfit pairs examples by their class" in one_error(code, output)
    assert "fold 1/" not in output and not (files / "cmp").exists()


def test_a_data_set_that_is_not_installed_says_how_to_install_it(files, monkeypatch):
    monkeypatch.setattr(zoo, "FASHION_MNIST_DIR", files / "absent")
    error = one_error(*run_cli("fit", "builtin:fashion-mnist", *IMAGE))
    assert "builtin:fashion-mnist is not installed" in error and "apt-get install dataset-fashion-mnist" in error


def test_hidden_files_and_folders_in_an_image_folder_are_not_data(tmp_path):
    root = image_folder(tmp_path / "imgs", per_class=2, broken=False)
    for hidden in ("a/.hidden.png", "a/.ipynb_checkpoints/0.png", "b/._1.png", ".cache/c/0.png"):
        png(root / hidden)
    assert sorted(load_examples(str(root)).ids) == ["a/0.png", "a/1.png", "b/0.png", "b/1.png"]
    assert sorted(load_examples(str(root), labelled=False).ids) == ["a/0.png", "a/1.png", "b/0.png", "b/1.png"]


def test_a_spreadsheet_csv_with_a_byte_order_mark_reads(files):
    (files / "bom.csv").write_text("\ufefftext,label\nhello,x\n", encoding="utf-8")
    assert load_examples("bom.csv").inputs == ["hello"]


def test_a_train_size_above_the_data_uses_all_of_it_and_says_so():
    examples = load_examples("builtin:digits")
    with pytest.warns(UserWarning, match=f"--train-size 5000: builtin:digits holds {len(examples)} examples; all"):
        assert len(train_subset(examples, 5000, seed=0)) == len(examples)


def test_shots_no_class_reaches_are_dropped_as_the_same_as_all(files):
    from headstart.compare import ALL, _distinct_shots

    examples = load_examples("texts.csv")  # 10 of each class
    with pytest.warns(UserWarning, match="--shots 10, 50: no class has more than 10 .* the same as 'all'; dropped"):
        assert _distinct_shots([4, 10, 50, ALL], [examples]) == [4, ALL]


def test_a_train_size_just_below_the_data_still_subsets():
    examples = load_examples("builtin:digits")
    assert len(stratified_subset(examples, len(examples) - 3, seed=0)) == len(examples) - 3


# -- --out: refused before any work, and never damaged ------------------------------------------

def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_non_empty_out_is_refused_before_any_work_and_left_untouched(files, monkeypatch):
    (files / "old" / "model").mkdir(parents=True)
    (files / "old" / "precious.txt").write_text("keep me")
    (files / "old" / "model" / "weights.bin").write_bytes(b"\x00\x01")
    before = _snapshot(files / "old")

    def no_work(*args, **kwargs):
        raise AssertionError("data or backbone loaded before --out was checked")

    with monkeypatch.context() as patch:
        patch.setattr(api, "load_task", no_work)
        patch.setattr(backbones, "load", no_work)
        error = one_error(*run_cli("fit", "imgs", *IMAGE, "--out", "old"))
    assert "--out old exists and is not empty" in error and "--overwrite" in error
    assert _snapshot(files / "old") == before

    # with --overwrite, a run that fails leaves the old folder as it was, and no staging folder behind
    error = one_error(*run_cli("fit", "imgs", "--test", "gone", *IMAGE, "--out", "old", "--overwrite"))
    assert "data not found: gone" in error
    assert _snapshot(files / "old") == before
    assert [p.name for p in files.iterdir() if p.name.startswith(".")] == []


def test_overwrite_never_replaces_the_data_or_the_current_folder(files):
    before = _snapshot(files / "imgs")
    error = one_error(*run_cli("fit", "imgs", *IMAGE, "--out", "imgs", "--overwrite"))
    assert "--out imgs is or holds the input imgs" in error and "choose a folder outside the inputs" in error
    error = one_error(*run_cli("fit", "texts.csv", *TEXT, "--out", ".", "--overwrite"))
    assert "--out . is or holds the current folder" in error
    assert _snapshot(files / "imgs") == before


def test_a_run_that_fails_while_saving_leaves_the_old_run_intact(files, monkeypatch):
    (files / "old").mkdir()
    (files / "old" / "precious.txt").write_text("keep me")

    def disk_full(*args, **kwargs):
        from headstart.errors import HeadstartError
        raise HeadstartError("disk full")

    monkeypatch.setattr(classification, "plot_confusion_matrix", disk_full)  # the last file the run writes
    error = one_error(*run_cli("fit", "imgs", *IMAGE, "--image-size", "16", "--epochs", "1", "--quiet",
                               "--out", "old", "--overwrite"))
    assert "disk full" in error
    assert _snapshot(files / "old") == {files.joinpath("old", "precious.txt").relative_to(files / "old"): b"keep me"}
    assert [p.name for p in files.iterdir() if p.name.startswith(".")] == []


# -- a real run, made once: skipped images, and predict / evaluate on data it cannot take --------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A linear probe on a tiny image folder (classes a, b) that holds one undecodable image."""
    root = tmp_path_factory.mktemp("run")
    images = image_folder(root / "imgs")
    code, output = run_cli("fit", images, *IMAGE, "--image-size", "32", "--epochs", "1", "--quiet",
                           "--out", root / "run")
    assert code == 0, output
    return root, output


def test_an_undecodable_image_is_skipped_with_a_count_by_default(run):
    root, output = run
    assert "warning: skipped 1 image(s) that cannot be decoded" in output and "broken.png" in output
    assert "Traceback" not in output and (root / "run" / "metrics.json").is_file()
    code, output = run_cli("predict", root / "run", root / "imgs")  # predict skips it too, and labels the rest
    assert code == 0 and "skipped 1 image(s)" in output and "a/0.png" in output and "broken.png," not in output


@pytest.fixture
def other(run, tmp_path, monkeypatch):
    """Data the run cannot take: images of unknown classes, texts, a damaged copy of the run."""
    monkeypatch.chdir(tmp_path)
    image_folder(tmp_path / "other", classes="cd", per_class=1, broken=False)
    (tmp_path / "texts.csv").write_text("text,label\nhello,x\nworld,y\n")  # texts first, then labels
    (tmp_path / "folder").mkdir()
    return run[0] / "run"


RUN_CASES = [
    (["evaluate", "{run}", "other"], ["other: labels ['c', 'd'] are not classes of this model (a, b)"]),
    (["evaluate", "{run}", "texts.csv"], ["texts.csv holds texts but the model reads images"]),
    (["predict", "{run}", "texts.csv"], ["texts.csv holds texts but the model reads images"]),
    (["predict", "{run}", "other", "--output", "folder"], ["--output folder is a folder", "predictions.csv"]),
    (["evaluate", "{run}", "other", "--output", "folder"], ["--output folder is a folder", "metrics.json"]),
    (["predict", "{run}", "missing"], ["data not found: missing"]),
    (["predict", "{run}", "other", "--output", "p.json"], ["--output p.json: this command writes .csv or .jsonl"]),
    (["evaluate", "{run}", "other", "--output", "m.csv"], ["--output m.csv: this command writes .json"]),
    (["fit", "--config", "{run}/config.yaml", "--epochs", "3", "--seed", "1", "--out", "again"],
     ["--config reruns the saved run as it was, so it would ignore --epochs, --seed", "edit a copy"]),
]


@pytest.mark.parametrize("args, expected", RUN_CASES, ids=[" ".join(a)[:60] for a, _ in RUN_CASES])
def test_a_run_refuses_data_it_cannot_take(args, expected, other):
    error = one_error(*run_cli(*[a.format(run=other) for a in args]))
    for text in expected:
        assert text in error, error


@pytest.mark.parametrize("damage, expected", [
    ("model/headstart-model.json", "headstart-model.json is damaged"),
    ("model/model.safetensors", "is damaged or was changed"),
    ("config.yaml", "config.yaml, line 1, column 12 is not valid YAML"),
])
def test_a_damaged_run_says_which_file(damage, expected, other, tmp_path):
    copy = shutil.copytree(other, tmp_path / "copy")
    (copy / damage).write_text("{ [ damaged")
    error = one_error(*run_cli("predict", copy, "other"))
    assert expected in error and damage.split("/")[-1] in error
