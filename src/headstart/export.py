"""Export a saved run (backbone + head + the Task's outputs) to ONNX, for serving without headstart or PyTorch.

    path = headstart.export("runs/digits")             # runs/digits/model.onnx and runs/digits/model.onnx.json
    headstart.export("runs/reviews", out="serve/reviews.onnx")

The ONNX graph takes the tensors the backbone's preprocess makes (images: normalised pixels; texts: the tokenizer's
input_ids, attention_mask and token_type_ids where it makes them), with a dynamic batch axis (and sequence axis for
texts), and returns what `predict_proba` returns: class probabilities (softmax), per-label probabilities (sigmoid)
or the de-standardised value of a regression. What a user must do to feed it is written beside it as JSON
(FILE.json): the image size, resize rule, channel order, mean and std, or the tokenizer folder and max_length.
The opset, headstart's version, the task and its classes are in the ONNX metadata too.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import __version__
from .backbones.classical import CLASSICAL_SOURCES
from .errors import HeadstartError
from .runs import MODEL_DIR, atomic_path, atomic_write_text, json_text, require_run

__all__ = ["export", "FORMATS", "OPSET", "DEFAULT_FILE", "preprocessing_file"]

FORMATS = ("onnx",)
OPSET = 17  # ONNX Runtime has run opset 17 since 1.14; the TorchScript exporter supports it fully
DEFAULT_FILE = "model.onnx"
TOLERANCE = 1e-4  # the largest difference from PyTorch an export may show on its check batch

# What each kind of task's ONNX output is: (output name, what its columns are called in the task, meaning).
_OUTPUTS = {
    "classification": ("probabilities", "classes", "softmax over the classes (each row sums to 1); the predicted "
                       "class is the argmax"),
    "multilabel": ("probabilities", "labels", "sigmoid per label; a label is predicted when its probability is at "
                   "least the task's threshold"),
    "regression": ("prediction", None, "the predicted value, on the targets' scale (the head's output times the "
                   "training targets' std plus their mean)"),
}


def preprocessing_file(out: Path) -> Path:
    """The JSON written beside an exported model: how to preprocess its inputs."""
    out = Path(out)
    return out.with_name(out.name + ".json")


def export(run_dir: str | Path, format: str = "onnx", out: str | Path | None = None) -> Path:
    """Export the run's model to `out` (default RUN_DIR/model.onnx) with its preprocessing in `out`.json; checked
    against PyTorch with ONNX Runtime before it replaces anything. Returns the model's path."""
    if format not in FORMATS:
        raise HeadstartError(f"unknown export format '{format}'; the formats are: {', '.join(FORMATS)}")
    run_dir = Path(run_dir)
    model_dir = require_run(run_dir)
    out = _check_out(run_dir, model_dir, out)
    from .api import _open_run, run_task  # api imports nearly everything: import here, when exporting

    task = run_task(run_dir)  # from the marker alone: a task that cannot be exported costs no model load
    _check_exportable(task)
    model, _ = _open_run(run_dir)
    model = model.float().eval()
    backbone = model.backbone
    if getattr(backbone, "long", "truncate") == "chunk":
        raise HeadstartError(f"{run_dir} reads long texts in windows (--long chunk), and cutting them and averaging "
                             "the windows happens outside the network; use 'headstart predict' for this run, or "
                             "fit it with --long truncate to export it")
    if backbone.describe()["source"] in CLASSICAL_SOURCES:
        raise HeadstartError(f"{run_dir} is a --strategy baseline run: its TF-IDF or pixel features are computed by "
                             "scikit-learn and numpy outside the network; use 'headstart predict' for this run")

    sample = _sample(backbone, 2)
    names = list(sample)
    output_name = _OUTPUTS[task.kind][0]
    axes = {0: "batch"} if backbone.modality == "image" else {0: "batch", 1: "sequence"}
    graph = _Exported(model, names).eval()
    try:
        with atomic_path(out) as tmp:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
                try:
                    torch.onnx.export(graph, tuple(sample[n] for n in names), str(tmp), dynamo=False,
                                      input_names=names, output_names=[output_name],
                                      dynamic_axes={**{n: axes for n in names}, output_name: {0: "batch"}},
                                      opset_version=OPSET, do_constant_folding=True)
                except (RuntimeError, TypeError, ValueError, NotImplementedError) as err:
                    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                    raise HeadstartError(f"cannot export this run's backbone ({_name(backbone)}) to ONNX opset "
                                         f"{OPSET}: {first}") from None
            opset = _stamp(tmp, task, backbone, preprocessing_file(out).name)
            difference = _check(tmp, model, _sample(backbone, 3, other=True))
            facts = _preprocessing(out, run_dir, model, names, output_name, opset, difference)
            atomic_write_text(preprocessing_file(out), json_text(facts, indent=2) + "\n")
    except OSError as err:
        raise HeadstartError(f"cannot write {out} ({err.strerror or err}); choose a folder you can write to") from None
    return out


class _Exported(nn.Module):
    """The model as the ONNX graph runs it: preprocessed tensors in, the Task's outputs out."""

    def __init__(self, model, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *tensors):
        return self.model.task.outputs(self.model(dict(zip(self.names, tensors))))


def _name(backbone) -> str:
    facts = backbone.describe()
    return facts.get("arch") or facts.get("model_type") or facts.get("source", "?")


def _check_out(run_dir: Path, model_dir: Path, out: str | Path | None) -> Path:
    """--out as a file path ending in .onnx, not a folder, not inside the run's model folder."""
    out = run_dir / DEFAULT_FILE if out is None else Path(out)
    if out.is_dir():
        raise HeadstartError(f"--out {out} is a folder; give a file name, e.g. {out / DEFAULT_FILE}")
    if out.suffix.lower() != ".onnx":
        raise HeadstartError(f"--out {out} does not end in .onnx; give a file name such as {out.with_suffix('.onnx')}")
    resolved = out.expanduser().resolve()
    if model_dir.resolve() in resolved.parents:
        raise HeadstartError(f"--out {out} lies inside {model_dir}, the run's model that headstart loads; write it "
                             f"elsewhere, e.g. {run_dir / DEFAULT_FILE}")
    return out


def _check_exportable(task) -> None:
    if task.reads_words:
        raise HeadstartError(f"a '{task.kind}' run cannot be exported to ONNX: it tags words, and picking each word's "
                             "first subword and regrouping the rows into sentences depends on the tokenizer's word "
                             "map, outside the network; use 'headstart predict' for this run")
    if task.kind not in _OUTPUTS:
        raise HeadstartError(f"a '{task.kind}' run cannot be exported to ONNX (this headstart exports "
                             f"{', '.join(_OUTPUTS)}); use 'headstart predict' for this run")


def _sample(backbone, n: int, other: bool = False) -> dict[str, torch.Tensor]:
    """A preprocessed batch of n inputs. Texts are of different lengths, so that the traced attention masks padding;
    `other` makes a batch of another size and length than the export's, to check the dynamic axes."""
    if backbone.modality == "image":
        rng = np.random.default_rng(1 if other else 0)
        return backbone.preprocess([rng.integers(0, 256, (backbone.image_size, backbone.image_size, 3), dtype=np.uint8)
                                    for _ in range(n)])
    texts = ["a short text", "a somewhat longer text, so that the shorter one in the batch is padded",
             "and a third text that is longer than both of the texts before it, to read a longer sequence"]
    batch = backbone.preprocess(texts[-n:] if other else texts[:n])
    if set(batch) - {"input_ids", "attention_mask", "token_type_ids"}:
        raise HeadstartError(f"this text backbone's tokenizer makes {sorted(batch)}; ONNX export reads input_ids, "
                             "attention_mask and token_type_ids only")
    return batch


def _stamp(path: Path, task, backbone, preprocessing: str) -> int:
    """Write headstart's facts into the model's metadata; return its opset."""
    import onnx

    proto = onnx.load(str(path))
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    classes = getattr(task, "classes", None) or getattr(task, "labels", None) or []
    facts = {"headstart_version": __version__, "opset": str(opset), "task": task.kind,
             "task_json": json.dumps(task.to_dict()), "classes": json.dumps(list(classes)),
             "modality": backbone.modality, "backbone": json.dumps(backbone.describe()),
             "preprocessing": preprocessing}
    del proto.metadata_props[:]
    for key, value in facts.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = f"headstart {__version__}: a {task.kind} model; preprocessing in {preprocessing}"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return opset


def _check(path: Path, model, batch: dict[str, torch.Tensor]) -> float:
    """The largest difference between ONNX Runtime and PyTorch on a batch the export did not see; refused past
    TOLERANCE."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {name: tensor.numpy() for name, tensor in batch.items()})[0]
    with torch.no_grad():
        want = model.task.outputs(model(batch)).numpy()
    difference = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
    if not difference <= TOLERANCE:
        raise HeadstartError(f"the ONNX export differs from the PyTorch model by {difference:.3g} (more than "
                             f"{TOLERANCE:g}) on a check batch; nothing was written. Please report this run's backbone")
    return difference


def _preprocessing(out: Path, run_dir: Path, model, names: list[str], output_name: str, opset: int,
                   difference: float) -> dict:
    """What a user needs to feed the ONNX model and read its output, as the backbone's preprocess does it."""
    task, backbone = model.task, model.backbone
    _, columns_of, meaning = _OUTPUTS[task.kind]
    columns = getattr(task, columns_of) if columns_of else [output_name]
    facts = {
        "format": "onnx", "model": out.name, "opset": opset, "headstart_version": __version__,
        "run": str(run_dir), "modality": backbone.modality, "task": task.to_dict(), "precision": "fp32",
        "checked_max_difference": difference,
        "outputs": [{"name": output_name, "dtype": "float32", "shape": ["batch", len(columns)], "columns": columns,
                     "meaning": meaning}],
    }
    if backbone.modality == "image":
        size = backbone.image_size
        facts["inputs"] = [{"name": names[0], "dtype": "float32", "shape": ["batch", 3, size, size], "layout": "NCHW"}]
        facts["preprocessing"] = {
            "image": "decoded to RGB, uint8, height x width x 3 (a grayscale image: its one channel repeated 3 times)",
            "channel_order": "RGB", "layout": "NCHW",
            "scale": 1 / 255,
            "resize": {"size": [size, size], "keep_aspect_ratio": False, "crop": None, "mode": "bilinear",
                       "align_corners": False, "antialias": "when the image is wider than the size",
                       "skipped": "when the image is already size x size",
                       "as": "torch.nn.functional.interpolate(x, size=(S, S), mode='bilinear', align_corners=False, "
                             "antialias=width > S)"},
            "mean": backbone.mean.flatten().tolist(), "std": backbone.std.flatten().tolist(),
            "order": "pixels = (resize(image / 255) - mean) / std, per channel",
        }
    else:
        folder = run_dir / MODEL_DIR / backbone.describe()["folder"]
        facts["inputs"] = [{"name": name, "dtype": "int64", "shape": ["batch", "sequence"]} for name in names]
        facts["preprocessing"] = {
            "tokenizer": os.path.relpath(folder.resolve(), out.resolve().parent),
            "tokenizer_relative_to": "this file's folder",
            "max_length": backbone.max_length, "padding": "to the longest text in the batch", "truncation": True,
            "add_special_tokens": True, "inputs": names,
            "as": f"transformers.AutoTokenizer.from_pretrained(tokenizer)(texts, padding=True, truncation=True, "
                  f"max_length={backbone.max_length}, return_tensors='np')",
        }
    return facts
