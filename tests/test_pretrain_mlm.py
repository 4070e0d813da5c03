"""pretrain --method mlm on tiny real text: the masked-token loss falls, the encoder changes, fit reuses it."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from transformers import AutoTokenizer

import headstart
from headstart import backbones
from headstart.backbones.hf_text import minilm_folder
from headstart.config import BackboneSpec
from headstart.data import load_examples
from headstart.errors import HeadstartError
from headstart.model import TransferModel
from headstart.pretrain.mlm import mask_collator, masked_lm
from test_bad_input import one_error, run_cli

TEXT = dict(backbone="minilm-l6", max_length=32, show_progress=False)


def _reviews(n: int, skip: int = 0) -> list[str]:
    """n real review snippets, each on one line (a few snippets hold line breaks)."""
    return [" ".join(text.split()) for text in load_examples("builtin:rotten-tomatoes").inputs[skip:skip + n]]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """120 real review snippets as a user's .txt corpus: one per line, with blank lines the reader skips."""
    path = tmp_path_factory.mktemp("corpus") / "reviews.txt"
    path.write_text("\n\n".join(_reviews(120, skip=1000)) + "\n\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def adapted(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("mlm") / "adapted"
    return headstart.pretrain(str(corpus), method="mlm", epochs=2, batch_size=8, out=out, **TEXT)


def test_mlm_lowers_masked_token_loss_and_raises_accuracy(adapted):
    history = adapted.history
    assert [row["epoch"] for row in history] == [0, 1, 2]
    val_loss = [row["val_loss"] for row in history]
    assert val_loss[2] < val_loss[1] < val_loss[0], val_loss
    assert history[2]["loss"] < history[1]["loss"], history
    assert history[2]["val_accuracy"] > history[0]["val_accuracy"], history
    assert history[2]["val_perplexity"] == pytest.approx(math.exp(val_loss[2]))
    summary = json.loads((adapted.out / "metrics.json").read_text())
    assert summary["train_texts"] + summary["val_texts"] == 120 and summary["val_texts"] == 8
    assert summary["val_perplexity"] < summary["val_perplexity_before"]
    config = yaml.safe_load((adapted.out / "config.yaml").read_text())["pretrain"]
    assert config["method"] == "mlm" and config["mask_prob"] == 0.15
    assert config["epochs"] == 2 and config["lr"] == 5e-5  # the method's default, recorded once resolved
    assert (adapted.out / "pretrain_curve.png").stat().st_size > 0


def test_mlm_changes_the_encoder_and_keeps_tokenizer_and_pooler(adapted):
    original = backbones.load(BackboneSpec(name="minilm-l6", max_length=32)).model.state_dict()
    reloaded = backbones.load(BackboneSpec(name=str(adapted.out)))
    weights = reloaded.model.state_dict()
    assert set(weights) == set(original)
    changed = [key for key in original if not torch.equal(original[key], weights[key])]
    assert any(key.startswith("encoder.layer.5.") for key in changed) and "embeddings.word_embeddings.weight" in changed
    assert not any(key.startswith("pooler.") for key in changed)  # masked-LM never reads the pooler
    assert reloaded.tokenizer.get_vocab() == AutoTokenizer.from_pretrained(minilm_folder()).get_vocab()
    assert reloaded.max_length == 32


def test_fit_reuses_the_adapted_backbone(adapted, review_csvs, tmp_path):
    train, test = review_csvs
    result = headstart.fit(str(train), str(test), strategy="linear-probe", epochs=20, out=tmp_path / "run",
                           **{**TEXT, "backbone": str(adapted.out)})
    assert result.metrics["n"] == 40
    assert result.metrics["accuracy"] >= 0.55, result.metrics["accuracy"]  # 120 training reviews; chance is 0.5
    # The probe froze the backbone: the run holds exactly the adapted encoder, not a fresh minilm-l6.
    run_encoder = TransferModel.load(tmp_path / "run" / "model").backbone.model.state_dict()
    adapted_encoder = backbones.load(BackboneSpec(name=str(adapted.out))).model.state_dict()
    assert all(torch.equal(run_encoder[key], adapted_encoder[key]) for key in adapted_encoder)


@pytest.mark.parametrize("mask_prob", [0.15, 0.3])
def test_masking_hits_mask_prob_with_80_10_10_replacement(mask_prob):
    tokenizer = AutoTokenizer.from_pretrained(minilm_folder())
    encoded = tokenizer(_reviews(300), truncation=True, max_length=64, return_special_tokens_mask=True)
    items = [{key: encoded[key][i] for key in encoded} for i in range(300)]
    originals = tokenizer.pad([{"input_ids": item["input_ids"]} for item in items], return_tensors="pt")["input_ids"]
    special = tokenizer.pad([{"input_ids": item["special_tokens_mask"]} for item in items],
                            return_tensors="pt")["input_ids"].bool()
    batch = mask_collator(tokenizer, mask_prob, seed=0)(items)
    real = batch["attention_mask"].bool() & ~special
    masked = batch["labels"] != -100
    assert not (masked & ~real).any()  # [CLS], [SEP] and padding are never masked
    assert masked.sum() / real.sum() == pytest.approx(mask_prob, abs=0.02)
    assert torch.equal(batch["labels"][masked], originals[masked])
    as_mask = (batch["input_ids"] == tokenizer.mask_token_id)[masked].float().mean()
    kept = (batch["input_ids"] == originals)[masked].float().mean()
    assert as_mask == pytest.approx(0.8, abs=0.05) and kept == pytest.approx(0.1, abs=0.04)


def test_mlm_refuses_a_backbone_without_a_tokenizer():
    image = backbones.load(BackboneSpec(name="efficientnet-lite0:random", image_size=32))
    with pytest.raises(HeadstartError, match="text backbone with a tokenizer"):
        masked_lm(image)


def _write(path, lines):
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("case", ["empty", "tiny", "image-backbone", "mask-0", "mask-1", "mask-negative"])
def test_bad_mlm_input_is_one_clear_line(case, tmp_path):
    corpus = _write(tmp_path / "corpus.txt", _reviews(20))
    args = {"empty": [_write(tmp_path / "empty.txt", ["", "   ", ""])],
            "tiny": [_write(tmp_path / "tiny.txt", _reviews(3))],
            "image-backbone": [corpus, "--backbone", "efficientnet-lite0"],
            "mask-0": [corpus, "--mask-prob", "0"],
            "mask-1": [corpus, "--mask-prob", "1"],
            "mask-negative": [corpus, "--mask-prob", "-0.2"]}[case]
    backbone = [] if "--backbone" in args else ["--backbone", "minilm-l6"]
    out = tmp_path / "out"
    code, output = run_cli("pretrain", *args, "--method", "mlm", *backbone, "--max-length", "32", "--quiet",
                           "--out", out)
    error = one_error(code, output)
    expected = {"empty": "empty.txt holds no text", "tiny": "at least 12", "image-backbone": "text backbone",
                "mask-0": "--mask-prob", "mask-1": "--mask-prob", "mask-negative": "--mask-prob"}[case]
    assert expected in error, error
    assert not out.exists()


def test_a_text_corpus_is_not_a_labelled_task(tmp_path):
    corpus = _write(tmp_path / "corpus.txt", _reviews(20))
    error = one_error(*run_cli("fit", corpus, "--backbone", "minilm-l6", "--out", tmp_path / "run"))
    assert "corpus.txt is unlabelled text" in error and "'label'" in error
