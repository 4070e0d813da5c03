"""Bad input: one line naming the file, field or value and the fix, exit code 2, no traceback, nothing lost."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from headstart import cli
from headstart.data import zoo


def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["headstart", *args])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    captured = capsys.readouterr()
    return exit_.value.code, captured.out + captured.err


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nocols.csv").write_text("txt,lab\na,b\n")
    (tmp_path / "unclosed.csv").write_text('text,label\n"unclosed,a\nb,c\n')
    (tmp_path / "extra.csv").write_text("text,label\na,x,extra\nb,y\n")
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": "x"}\n{bad\n')
    (tmp_path / "oneclass.csv").write_text("text,label\na,x\nb,x\nc,x\n")
    (tmp_path / "small.csv").write_text("text,label\na,x\nb,x\nc,x\nd,y\n")
    rng = np.random.default_rng(0)
    for label in "ab":
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)).save(tmp_path / "imgs" / label / f"{i}.png")
    (tmp_path / "imgs" / "a" / "broken.png").write_bytes(b"not an image")
    return tmp_path


CASES = [
    (["fit", "missing.csv", "--backbone", "minilm-l6"], ["missing.csv", "builtin:NAME"]),
    (["fit", "small.csv", "--test", "gone.csv", "--backbone", "minilm-l6"], ["gone.csv"]),
    (["fit", "nocols.csv", "--backbone", "minilm-l6"], ["nocols.csv", "'text'", "rename"]),
    (["fit", "unclosed.csv", "--backbone", "minilm-l6"], ["unclosed.csv", "quoting"]),
    (["fit", "extra.csv", "--backbone", "minilm-l6"], ["extra.csv, line 2"]),
    (["fit", "bad.jsonl", "--backbone", "minilm-l6"], ["bad.jsonl, line 2", "JSON"]),
    (["fit", "oneclass.csv", "--backbone", "minilm-l6"], ["oneclass.csv", "at least two"]),
    (["fit", "small.csv", "--backbone", "minilm-l6"], ["class 'y' (1)", "at least 3 per class"]),
    (["fit", "small.csv", "--test", "small.csv", "--backbone", "minilm-l6"], ["class 'y' (1)", "at least 2"]),
    (["fit", "builtin:digits", "--train-size", "5", "--backbone", "minilm-l6"], ["--train-size 5", "at least 20"]),
    (["fit", "imgs", "--backbone", "efficientnet-lite0", "--on-bad-image", "error"], ["broken.png", "--on-bad-image skip"]),
    (["fit", "imgs", "--backbone", "minilm"], ["unknown backbone 'minilm'", "did you mean 'minilm-l6'", "efficientnet-lite0"]),
    (["fit", "imgs", "--backbone", "efficientnet-lite0", "--strategy", "fulll"], ["unknown strategy 'fulll'", "freeze:K, full"]),
    (["fit", "imgs", "--backbone", "efficientnet-lite0", "--strategy", "freeze"], ["freeze:K"]),
    (["fit", "imgs", "--backbone", "efficientnet-lite0", "--strategy", "freeze:x"], ["whole number"]),
    (["fit", "imgs", "--backbone", "efficientnet-lite0", "--image-size", "32", "--strategy", "freeze:20"],
     ["9 layer groups", "at most 9"]),
    (["fit", "imgs", "--backbone", "minilm-l6"], ["reads texts", "holds images", "an image backbone"]),
    (["fit", "imgs", "--backbone", "timm:resnet18"], ["--weights FILE", "timm:resnet18:random"]),
    (["fit", "imgs", "--backbone", "timm:resnet18", "--weights", "nope.pt"], ["weights file not found: nope.pt"]),
    (["fit", "imgs", "--backbone", "timm:resnt18", "--weights", "nope.pt"], ["unknown timm architecture 'resnt18'"]),
    (["fit", "builtin:nope", "--backbone", "minilm-l6"], ["unknown built-in data set 'nope'", "rotten-tomatoes"]),
    (["fit", "builtin:digits:test", "--backbone", "efficientnet-lite0"], ["no separate test part"]),
    (["fit", "imgs", "--backbone", "efficientnet-lite0", "--precision", "fp16"], ["train.precision", "'fp32' or 'bf16'"]),
    (["fit", "imgs", "--backbone", "efficientnet-lite0", "--batch-size", "0"], ["train.batch_size", "greater than or equal to 1"]),
    (["fit", "--backbone", "efficientnet-lite0"], ["TRAIN"]),
    (["predict", "imgs", "imgs"], ["imgs is not a headstart run directory"]),
    (["evaluate", ".", "imgs"], ["not a headstart run directory"]),
    (["compare", "imgs", "--backbone", "efficientnet-lite0", "--shots", "0"], ["--shots", "'0'"]),
    (["compare", "imgs", "--backbone", "efficientnet-lite0", "--folds", "9"], ["--folds 9", "smallest class"]),
]


@pytest.mark.parametrize("args, expected", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_gets_one_clear_line(args, expected, files, monkeypatch, capsys):
    code, output = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    for text in expected:
        assert text in errors[0], errors[0]


def test_an_undecodable_image_is_skipped_with_a_count_by_default(files):
    from headstart.data import load_examples

    with pytest.warns(UserWarning, match=r"skipped 1 image\(s\).*broken.png"):
        examples = load_examples("imgs")
    assert len(examples) == 8


def test_a_data_set_that_is_not_installed_says_how_to_install_it(files, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "FASHION_MNIST_DIR", files / "absent")
    code, output = run_cli(monkeypatch, capsys, "fit", "builtin:fashion-mnist", "--backbone", "efficientnet-lite0")
    assert code == 2 and "apt-get install dataset-fashion-mnist" in output


def test_a_non_empty_out_is_refused_before_any_work_and_left_untouched(files, monkeypatch, capsys):
    (files / "old").mkdir()
    (files / "old" / "precious.txt").write_text("keep me")
    code, output = run_cli(monkeypatch, capsys, "fit", "imgs", "--backbone", "efficientnet-lite0", "--out", "old")
    assert code == 2 and "--overwrite" in output and "strategy" not in output  # refused before the plan ran
    # with --overwrite, a run that fails leaves the old folder as it was
    code, output = run_cli(monkeypatch, capsys, "fit", "imgs", "--test", "gone", "--backbone", "efficientnet-lite0",
                           "--out", "old", "--overwrite")
    assert code == 2 and (files / "old" / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in files.iterdir() if p.name.startswith(".old")) == []  # no staging left behind


def test_evaluate_with_labels_the_model_does_not_know(files, monkeypatch, capsys, tmp_path):
    code, _ = run_cli(monkeypatch, capsys, "fit", "imgs", "--backbone", "efficientnet-lite0", "--image-size", "16",
                      "--strategy", "linear-probe", "--epochs", "1", "--quiet", "--out", "run")
    assert code == 0
    for label in "cd":
        (files / "other" / label).mkdir(parents=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(files / "other" / label / "0.png")
    code, output = run_cli(monkeypatch, capsys, "evaluate", "run", "other")
    assert code == 2 and "['c', 'd'] are not classes of this model (a, b)" in output
