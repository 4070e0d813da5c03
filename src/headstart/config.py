"""RunSpec: every option of a run, typed and documented once; YAML in and out.

The field descriptions here are the help texts of the CLI and of the README's option table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import HeadstartError

__all__ = ["TableColumns", "DataSpec", "BackboneSpec", "StrategySpec", "TrainSpec", "LogSpec", "RunSpec", "help_for", "parse_budget",
           "read_config_section", "seed_field", "SEED_MAX"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def validated(cls, raw: dict, what: str):
        """Validate every option at once; one line naming each bad option as typed (--mask-prob), its value, the rule."""
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            problems = "; ".join(f"--{str(e['loc'][-1]).replace('_', '-')} {e.get('input')!r}: "
                                 f"{e['msg'][0].lower()}{e['msg'][1:]}" for e in err.errors())
            raise HeadstartError(f"invalid {what}: {problems}") from None


# Every seed passes through numpy, whose seeds stop at 2**32 - 1; offsets such as seed + 1 must stay below it.
SEED_MAX = 2**31 - 1


def seed_field(description: str):
    """The one declaration of a seed option: a whole number from 0 to SEED_MAX."""
    return Field(0, ge=0, le=SEED_MAX, description=f"{description} (0 to {SEED_MAX})")


def read_config_section(path: str | Path, section: str, command: str) -> dict:
    """The `section` of a saved config.yaml, or a clear error naming the file and the command that writes it."""
    path = Path(path)
    if not path.is_file():
        raise HeadstartError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)  # where the parser gave up (0-based)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise HeadstartError(f"{path}{where} is not valid YAML: {what}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get(section), dict):
        raise HeadstartError(f"{path} has no '{section}' section; is it the config.yaml of '{command}'?")
    return raw[section]


class TableColumns(_Spec):
    """The names of a table's text, image and label columns: declared once, for every command that reads a table."""

    text_column: Optional[str] = Field(None, description="The column of the texts in a table (CSV, JSONL, Parquet, "
                                                         "a datasets folder); default 'text'.")
    image_column: Optional[str] = Field(None, description="The column of the images in a table: paths, or a "
                                                          "datasets Image feature; default 'image'.")
    label_column: Optional[str] = Field(None, description="The column of the labels in a table (classification, or "
                                                          "the kind --task names); default: the kind's own, 'label', "
                                                          "'labels', 'target' or 'tags'.")

    def columns(self) -> dict[str, Optional[str]]:
        """The table's own names for the text, image and label columns (None: headstart's)."""
        return {"text": self.text_column, "image": self.image_column, "label": self.label_column}


class DataSpec(TableColumns):
    train: str = Field(description="Training data: an image folder (one subfolder per class), a .csv/.jsonl "
                                   "with 'text' and 'label' columns, or builtin:NAME.")
    test: Optional[str] = Field(None, description="Test data in the same forms; default: a stratified hold-out of TRAIN.")
    train_size: Optional[int] = Field(None, gt=1, description="Use a stratified random subset of this many TRAIN examples (all of them, with a warning, when TRAIN holds fewer).")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="Share of TRAIN held out as test when no --test is given.")
    val_fraction: float = Field(0.1, gt=0, lt=1, description="Share of the training part kept for validation (early stopping).")
    on_bad_image: Literal["skip", "error"] = Field("skip", description="An image that cannot be decoded: skip it "
                                                                       "with a warning and a count, or stop.")
    task: Optional[str] = Field(None, description="What the labels are: classification (a 'label' column or class "
                                                  "folders), multilabel (a 'labels' column of tags), regression "
                                                  "(a numeric 'target' column) or tokens (a tag per word: 'tokens' and "
                                                  "'tags' lists, or a CoNLL file); default: what TRAIN's columns say.")

    @field_validator("task")
    @classmethod
    def _known_task(cls, value: Optional[str]) -> Optional[str]:
        from .tasks import TASKS  # the tasks import the metrics; config stays light for everything else

        if value is not None and value not in TASKS:
            raise ValueError(TASKS.unknown_message(value))
        return value


class BackboneSpec(_Spec):
    name: str = Field(description="Pretrained model: minilm-l6, efficientnet-lite0/1/2, timm:ARCH, a local Hugging "
                                  "Face model folder, or a headstart run directory. Suffix ':random' for random weights.")
    weights: Optional[str] = Field(None, description="Weights for timm:ARCH: a .safetensors file or a PyTorch state dict.")
    image_size: Optional[int] = Field(None, ge=8, le=1024, description="Image side in pixels; default: the backbone's own.")
    max_length: int = Field(128, ge=8, le=4096, description="Longest text in tokens; longer texts are truncated "
                                                            "(or cut into windows: --long chunk).")
    long: Literal["truncate", "chunk"] = Field("truncate", description="A text longer than --max-length tokens: "
                                               "truncate it, or chunk it into overlapping windows of that length, "
                                               "embedded each and averaged over the text's tokens.")

    def inputs(self) -> list[str | None]:
        """What the backbone reads from disk (a folder by name, a weights file): never a place to write."""
        return [self.name, self.weights]


class StrategySpec(_Spec):
    name: str = Field("linear-probe", description="How to reuse the backbone: linear-probe, linear-probe-cv, freeze:K, full, lp-ft, l2sp, llrd, "
                                                       "gradual, bitfit, lora, wise-ft, setfit, scratch, baseline (TF-IDF or "
                                                       "pixels + logistic regression: no backbone), or auto "
                                                       "(advise, then race the likely ones and keep the best).")
    epochs: Optional[int] = Field(None, ge=1, description="Epochs per phase; default: the strategy's own.")
    lr: Optional[float] = Field(None, gt=0, allow_inf_nan=False, description="Learning rate of the new head; default: the strategy's own.")
    budget: Optional[str] = Field(None, description="Time budget of --strategy auto's race, e.g. 90s, 10m, 1h "
                                                    "(default 10m); the winner's full fit comes after it.")

    @field_validator("budget")
    @classmethod
    def _budget_parses(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            parse_budget(value)
        return value

    @model_validator(mode="after")
    def _budget_only_for_auto(self) -> "StrategySpec":
        if self.budget is not None and self.name != "auto":
            raise ValueError(f"a time budget is for --strategy auto only, not '{self.name}'; drop --budget")
        return self


def parse_budget(text: str) -> float:
    """'90s' / '10m' / '1.5h' / '600' (seconds) -> seconds; anything else is refused with the accepted forms."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    seconds = float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)] if match else 0.0
    if seconds <= 0:
        raise ValueError(f"budget '{text}' is not a positive duration in one unit; write e.g. 90s, 10m, 1.5h or "
                         "600 (seconds)")
    return seconds


class TrainSpec(_Spec):
    batch_size: int = Field(32, ge=1, description="Examples per training step.")
    precision: Optional[Literal["fp32", "bf16"]] = Field(None, description="Arithmetic: bf16 (default where the CPU "
                                                                           "has native bf16) or fp32.")
    seed: int = seed_field("Seed for splits, initialisation and shuffling: the same seed gives the same run")
    patience: int = Field(5, ge=1, description="Stop a phase after this many epochs without a better validation accuracy.")
    weight_decay: float = Field(0.01, ge=0, allow_inf_nan=False, description="AdamW weight decay.")
    min_steps: int = Field(0, ge=0, le=1_000_000, description="Give a phase with few examples at least this many optimiser "
                                                "steps by passing over the data several times an epoch.")
    augment: Literal["none", "light", "strong"] = Field(
        "none", description="Augment training images anew every epoch: light (small shifts, rotations, rescales) "
                            "or strong (contrastive pretraining's crops, colour jitter, blur). Images only; the "
                            "feature cache is then off for head-only epochs.")


class LogSpec(_Spec):
    log_with: Optional[Literal["tensorboard", "mlflow"]] = Field(
        None, description="Also log the run to an experiment tracker (through Accelerate): tensorboard or mlflow. "
                          "Per epoch: losses, validation score, learning rates; then the test metrics; the config "
                          "as parameters.")
    log_dir: str = Field("runs/logs", description="Where --log-with writes, on this disk: TensorBoard event files "
                                                  "in DIR/RUN_NAME, or the MLflow store DIR/mlflow.db.")


class RunSpec(_Spec):
    data: DataSpec
    backbone: BackboneSpec
    strategy: StrategySpec = StrategySpec()
    train: TrainSpec = TrainSpec()
    log: LogSpec = LogSpec()
    headstart_version: Optional[str] = None

    @classmethod
    def build(cls, raw: dict, source: str = "options") -> "RunSpec":
        """Validate all fields at once; report every problem in one message."""
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            problems = "; ".join(  # the value given, unless the rule is about a whole section (its dict)
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                + ("" if isinstance(e.get("input"), dict) else f" (got {e.get('input')!r})") for e in err.errors())
            raise HeadstartError(f"invalid {source}: {problems}") from None

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RunSpec":
        return cls.build(read_config_section(path, "run", "headstart fit"), source=str(path))

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def inputs(self) -> list[str | None]:
        """Every path the run reads: its data and its backbone's (--out may be none of them, nor inside one)."""
        return [self.data.train, self.data.test, *self.backbone.inputs()]


def help_for(section: type[_Spec], field: str) -> str:
    """The one help text of a field, for the CLI."""
    return section.model_fields[field].description or ""
