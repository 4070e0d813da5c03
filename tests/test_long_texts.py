"""--long chunk: a text longer than --max-length is read whole, in overlapping windows; a text that fits reads as
truncation reads it."""

from __future__ import annotations

import csv

import pytest
import torch
import yaml

from headstart import backbones
from headstart.config import BackboneSpec
from test_bad_input import one_error, run_cli

SHORT = ["a gripping, funny film", "dull and far too long", "the cast is wonderful"]
LONG = "the plot wanders " * 40 + "but the ending is a triumph"  # ~130 tokens: past a 32-token window


@pytest.fixture(scope="module")
def readers():
    truncate = backbones.load(BackboneSpec(name="minilm-l6", max_length=32)).eval()
    chunk = backbones.load(BackboneSpec(name="minilm-l6", max_length=32, long="chunk")).eval()
    return truncate, chunk


def _features(backbone, texts):
    with torch.no_grad():
        return backbone(backbone.preprocess(texts))


def test_a_text_that_fits_reads_the_same_chunked_or_truncated(readers):
    truncate, chunk = readers
    alone = _features(chunk, SHORT)
    assert torch.equal(alone, _features(truncate, SHORT))  # the same tokens, the same rows: bit for bit
    # Beside a long text, whose windows share the batch, the short ones still read the same (up to rounding).
    mixed = _features(chunk, [SHORT[0], LONG, *SHORT[1:]])
    assert mixed.shape == (4, truncate.dim)
    torch.testing.assert_close(mixed[[0, 2, 3]], alone, atol=1e-5, rtol=1e-5)


def test_a_long_text_is_read_to_its_end_in_overlapping_windows(readers):
    truncate, chunk = readers
    batch = chunk.preprocess([LONG])
    windows = len(batch["input_ids"])
    assert windows >= 5 and batch["text_index"].tolist() == [0] * windows
    # Truncation never sees the ending; chunking does, so the ending changes its features.
    head = LONG.replace("but the ending is a triumph", "")
    assert torch.allclose(_features(truncate, [LONG]), _features(truncate, [head]), atol=1e-6)
    assert not torch.allclose(_features(chunk, [LONG]), _features(chunk, [head]), atol=1e-3)
    # The text's features are its windows' tokens averaged together: the windows' means weighted by their lengths.
    plain = dict(batch)
    plain.pop("text_index")
    with torch.no_grad():
        hidden = chunk.model(**plain).last_hidden_state
    mask = plain["attention_mask"].unsqueeze(-1).float()
    expected = (hidden * mask).sum((0, 1)) / mask.sum()
    torch.testing.assert_close(_features(chunk, [LONG])[0], expected, atol=1e-5, rtol=1e-5)


def test_fit_with_long_chunk_saves_predicts_and_refuses_onnx_in_one_line(tmp_path):
    run = tmp_path / "run"
    code, output = run_cli("fit", "builtin:spam", "--train-size", "40", "--backbone", "minilm-l6", "--max-length", "64",
                           "--long", "chunk", "--strategy", "linear-probe-cv", "--out", run, "--quiet")
    assert code == 0, output
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["run"]["backbone"]["long"] == "chunk"
    saved = list(csv.DictReader(open(run / "predictions.csv", encoding="utf-8")))
    texts = tmp_path / "texts.csv"
    with open(texts, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["text"], *([LONG], [SHORT[0]])])
    assert run_cli("predict", run, str(texts), "--output", tmp_path / "p.csv", "--quiet")[0] == 0
    assert len(list(csv.DictReader(open(tmp_path / "p.csv", encoding="utf-8")))) == 2 and saved
    error = one_error(*run_cli("export", run))
    assert "--long chunk" in error and "predict" in error
    assert not (run / "model.onnx").exists()


def test_a_bad_long_value_is_one_line():
    error = one_error(*run_cli("fit", "builtin:spam", "--backbone", "minilm-l6", "--long", "window", "--dry-run"))
    assert "long" in error and "truncate" in error
