"""headstart export: a saved run (packaged backbone + head) to ONNX; ONNX Runtime on inputs preprocessed as the JSON
beside it says gives PyTorch's probabilities, at any batch size (and text length); refused kinds and bad input get
one line."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer

import headstart
from headstart import HeadstartError
from headstart.data import load_examples
from headstart.export import OPSET, preprocessing_file
from headstart.model import TransferModel
from headstart.tasks import MultilabelTask, RegressionTask, TokensTask

from test_bad_input import one_error, run_cli

TOLERANCE = 1e-4


def _session(path):
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _metadata(path) -> dict:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def _compare(session, model, inputs, arrays) -> float:
    """ONNX Runtime on arrays against PyTorch's predict_proba on inputs: within TOLERANCE, the same argmax; the
    largest difference."""
    got = session.run(None, arrays)[0]
    want = model.predict_proba(inputs, 64, "fp32")
    assert got.shape == want.shape == (len(inputs), want.shape[1])
    difference = float(np.abs(got - want).max())
    assert difference < TOLERANCE, difference
    assert (got.argmax(1) == want.argmax(1)).all()
    return difference


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "digits"
    headstart.fit("builtin:digits", backbone="efficientnet-lite0", image_size=32, train_size=150,
                  strategy="linear-probe", epochs=2, precision="fp32", out=out, show_progress=False)
    return out


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, review_csvs):
    out = tmp_path_factory.mktemp("export") / "reviews"
    train, test = review_csvs
    headstart.fit(str(train), str(test), backbone="minilm-l6", max_length=32, strategy="linear-probe", epochs=2,
                  precision="fp32", out=out, show_progress=False)
    return out


def _resize_as_the_json_says(image: np.ndarray, rule: dict) -> torch.Tensor:
    """One image preprocessed from the JSON's fields alone."""
    pixels = torch.from_numpy(image).float()
    if pixels.ndim == 2:
        pixels = pixels[..., None].expand(*pixels.shape, 3)
    pixels = pixels.permute(2, 0, 1)[None] * rule["scale"]
    size = rule["resize"]["size"]
    assert rule["resize"]["antialias"] == "when the image is wider than the size"
    if list(pixels.shape[-2:]) != size:
        pixels = F.interpolate(pixels, size=tuple(size), mode=rule["resize"]["mode"],
                               align_corners=rule["resize"]["align_corners"], antialias=pixels.shape[-1] > size[1])
    mean, std = (torch.tensor(rule[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    return (pixels - mean) / std


def test_an_image_run_exports_to_onnx_with_its_preprocessing(image_run):
    path = headstart.export(image_run)
    assert path == image_run / "model.onnx" and path.is_file()
    facts = json.loads(preprocessing_file(path).read_text())
    model = TransferModel.load(image_run / "model")
    backbone = model.backbone
    rule = facts["preprocessing"]
    assert facts["opset"] == OPSET and facts["task"] == model.task.to_dict() and facts["modality"] == "image"
    assert facts["inputs"] == [{"name": "pixels", "dtype": "float32", "shape": ["batch", 3, 32, 32], "layout": "NCHW"}]
    assert facts["outputs"][0]["name"] == "probabilities" and facts["outputs"][0]["columns"] == model.classes
    assert rule["resize"]["size"] == [backbone.image_size] * 2 and rule["channel_order"] == "RGB"
    assert rule["mean"] == backbone.mean.flatten().tolist() == [0.5] * 3
    assert rule["std"] == backbone.std.flatten().tolist() == [0.5] * 3
    meta = _metadata(path)
    assert meta["opset"] == str(OPSET) and meta["headstart_version"] == headstart.__version__
    assert meta["task"] == "classification" and json.loads(meta["classes"]) == model.classes
    assert meta["preprocessing"] == preprocessing_file(path).name

    digits = load_examples("builtin:digits")
    rng = np.random.default_rng(0)
    others = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((48, 40, 3), (20, 50, 3), (32, 32, 3))]
    session = _session(path)
    differences = []
    # Batches of sizes the export never saw (it traced 2): 37 digits, one digit, and larger colour images.
    for inputs in (digits.inputs[:37], digits.inputs[37:38], others):
        arrays = backbone.preprocess(inputs)["pixels"]
        by_json = torch.cat([_resize_as_the_json_says(x, rule) for x in inputs])
        assert torch.allclose(arrays, by_json, atol=1e-5)
        differences.append(_compare(session, model, inputs, {"pixels": arrays.numpy()}))
    print(f"image: max probability difference {max(differences):.3g}")


def test_a_text_run_exports_via_the_cli_and_reads_texts_of_any_length(text_run, review_csvs, tmp_path):
    out = tmp_path / "serve" / "reviews.onnx"
    code, output = run_cli("export", text_run, "--format", "onnx", "--out", out)
    assert code == 0, output
    assert f"exported to {out}" in output and out.is_file() and not (text_run / "model.onnx").exists()
    facts = json.loads(preprocessing_file(out).read_text())
    model = TransferModel.load(text_run / "model")
    backbone = model.backbone
    rule = facts["preprocessing"]
    folder = (out.parent / rule["tokenizer"]).resolve()
    assert folder == (text_run / "model" / "hf").resolve() and rule["max_length"] == backbone.max_length == 32
    names = rule["inputs"]
    assert names == ["input_ids", "token_type_ids", "attention_mask"]
    assert [i["name"] for i in facts["inputs"]] == names and facts["outputs"][0]["columns"] == ["fresh", "rotten"]
    assert [i.name for i in _session(out).get_inputs()] == names
    assert _metadata(out)["task"] == "classification"

    tokenizer = AutoTokenizer.from_pretrained(folder)
    with open(review_csvs[1], newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    session = _session(out)
    differences, lengths = [], set()
    for batch in (texts, texts[:1], ["bad.", texts[3], "a fine, funny and moving film " * 12]):
        arrays = tokenizer(batch, padding=True, truncation=True, max_length=rule["max_length"], return_tensors="np")
        ours = backbone.preprocess(batch)
        assert list(arrays) == list(ours) == names
        assert all((arrays[n] == ours[n].numpy()).all() for n in names)
        lengths.add(arrays["input_ids"].shape[1])
        differences.append(_compare(session, model, batch, {n: arrays[n].astype(np.int64) for n in names}))
    assert len(lengths) > 1  # the sequence axis is dynamic too
    print(f"text: max probability difference {max(differences):.3g}")


@pytest.mark.parametrize("task", [MultilabelTask(["even", "small"], 0.4), RegressionTask(4.5, 2.9)],
                         ids=["multilabel", "regression"])
def test_sigmoid_and_regression_heads_export_their_outputs(image_run, tmp_path, task):
    """A run whose head is a multilabel's (sigmoids) or a regression's (scaled back to the targets)."""
    run = tmp_path / "run"
    shutil.copytree(image_run, run, ignore=shutil.ignore_patterns("model.onnx*"))
    torch.manual_seed(0)
    model = TransferModel(TransferModel.load(image_run / "model").backbone, task)
    model.save(run / "model")
    path = headstart.export(run, out=tmp_path / "model.onnx")
    facts = json.loads(preprocessing_file(path).read_text())
    output = facts["outputs"][0]
    assert facts["task"] == task.to_dict() and _metadata(path)["task"] == task.kind
    assert (output["name"], output["columns"]) == (("probabilities", ["even", "small"]) if task.kind == "multilabel"
                                                   else ("prediction", ["prediction"]))
    inputs = load_examples("builtin:digits").inputs[:5]
    model = TransferModel.load(run / "model")
    got = _session(path).run(None, {"pixels": model.backbone.preprocess(inputs)["pixels"].numpy()})[0]
    assert np.abs(got - model.predict_proba(inputs, 64, "fp32")).max() < TOLERANCE


def test_a_tagger_is_refused_in_one_line(text_run, tmp_path):
    """A run of the text backbone with a tagger's head (one tag per word), saved as fit saves it."""
    run = tmp_path / "tagger"
    run.mkdir()
    shutil.copy(text_run / "config.yaml", run / "config.yaml")
    backbone = TransferModel.load(text_run / "model").backbone
    TransferModel(backbone, TokensTask(["DET", "NOUN", "VERB"])).save(run / "model")
    error = one_error(*run_cli("export", run))
    assert "'tokens' run cannot be exported to ONNX" in error and "headstart predict" in error
    assert not (run / "model.onnx").exists()


def test_bad_input_gets_one_line_and_writes_nothing(image_run, tmp_path):
    (tmp_path / "folder").mkdir()
    cases = [
        (["export", tmp_path], "is not a headstart run directory"),
        (["export", image_run, "--format", "tflite"], "unknown export format 'tflite'; the formats are: onnx"),
        (["export", image_run, "--out", tmp_path / "folder"], "is a folder; give a file name"),
        (["export", image_run, "--out", image_run / "config.yaml"], "does not end in .onnx"),
        (["export", image_run, "--out", image_run / "model" / "x.onnx"], "the run's model that headstart loads"),
    ]
    before = sorted(p.name for p in image_run.iterdir())
    for args, expected in cases:
        assert expected in one_error(*run_cli(*args)), args
    assert sorted(p.name for p in image_run.iterdir()) == before
    assert not list((tmp_path / "folder").iterdir()) and not list((image_run / "model").glob("*.onnx"))
    with pytest.raises(HeadstartError, match="unknown export format"):
        headstart.export(image_run, format="tflite")
