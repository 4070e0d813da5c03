"""The command line: one thin command per API function. Help texts come from config.py."""

from __future__ import annotations

import csv
import sys
import time
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import api, distributed
from .checkpoints import Interrupted
from .compare import MIN_STEPS as COMPARE_MIN_STEPS, compare as compare_strategies
from .config import BackboneSpec, DataSpec, LogSpec, RunSpec, StrategySpec, TrainSpec, help_for
from .errors import HeadstartError
from .environment import check_environment
from .export import export as export_api, preprocessing_file
from .pretrain import PretrainSpec, pretrain_from_spec, pretrain_spec
from .semi import SelfTrainSpec, self_train_from_config
from .semi import self_train as self_train_api
from .select.rank import NOTE as RANK_NOTE, RANK_FILE, RankSpec
from .select.rank import rank as rank_api
from .select.advise import ADVICE_FILE
from .select.advise import advise as advise_api
from .select.auto import AUTO_FILE
from .tasks import TASKS
from .train import cache_store
from .train.progress import console

try:  # typer >= 0.26 vendors click; its usage errors derive from TyperException
    from typer import TyperException as _UsageError
except ImportError:  # older typer runs on click itself
    from click import ClickException as _UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="headstart: reuse a pretrained model on your small data set, and prove it helped.")

def spec_option(section, field: str, flag: str, **override):
    """A CLI option declared by its spec field: the field's default (unless `default=` says how the command spells
    'not given') and its one help text."""
    info = section.model_fields[field]
    return typer.Option(override.get("default", info.default), flag, help=help_for(section, field))


# Options that mean the same in every command that has them: declared once, shared by the commands.
QUIET = typer.Option(False, "--quiet", help="No progress bars.")
TEST = spec_option(DataSpec, "test", "--test")
EPOCHS = spec_option(StrategySpec, "epochs", "--epochs")
LR = spec_option(StrategySpec, "lr", "--lr")
BATCH_SIZE = spec_option(TrainSpec, "batch_size", "--batch-size")
IMAGE_SIZE = spec_option(BackboneSpec, "image_size", "--image-size")
MAX_LENGTH = spec_option(BackboneSpec, "max_length", "--max-length")
LONG = spec_option(BackboneSpec, "long", "--long")
AUGMENT = spec_option(TrainSpec, "augment", "--augment")
WEIGHTS = spec_option(BackboneSpec, "weights", "--weights")
PRECISION = spec_option(TrainSpec, "precision", "--precision")
SEED = spec_option(TrainSpec, "seed", "--seed")
MIN_STEPS = spec_option(TrainSpec, "min_steps", "--min-steps")
TRAIN_SIZE = spec_option(DataSpec, "train_size", "--train-size")
ON_BAD_IMAGE = spec_option(DataSpec, "on_bad_image", "--on-bad-image")
TASK = spec_option(DataSpec, "task", "--task")
TEXT_COLUMN = spec_option(DataSpec, "text_column", "--text-column")
IMAGE_COLUMN = spec_option(DataSpec, "image_column", "--image-column")
LABEL_COLUMN = spec_option(DataSpec, "label_column", "--label-column")
RESUME = typer.Option(None, "--resume", help="Continue the interrupted run into this --out from its last checkpoint "
                      "(give the same options); every epoch, fold or round is checkpointed beside --out.")


def _resume(out: Optional[Path], resume: Optional[Path]) -> tuple[Optional[Path], bool]:
    """(--out, whether to resume): --resume OUT names the run's --out itself."""
    if resume is None:
        return out, False
    if out is not None and Path(out) != Path(resume):
        raise HeadstartError(f"--out {out} and --resume {resume} name different runs; give --resume alone")
    return Path(resume), True


CONFIG_HELP = "Rerun from {run} config.yaml, as it was: no option but --out, --overwrite, --resume, --quiet{more}."

# What may go with --config: where the rerun is written and how it reports; everything else is the config's.
WITH_CONFIG = {"config", "out", "overwrite", "resume", "dry_run", "quiet"}


def _config_alone(ctx: typer.Context) -> None:
    """--config reruns a saved run as it was: an option that would change it is refused, not silently ignored."""
    # (compared by name: typer carries its own copy of click, whose ParameterSource is not click's)
    given = [p.opts[0] if p.param_type_name == "option" else p.name.upper() for p in ctx.command.params
             if p.name not in WITH_CONFIG and ctx.get_parameter_source(p.name).name == "COMMANDLINE"]
    if given:
        raise HeadstartError(f"--config reruns the saved run as it was, so it would ignore {', '.join(given)}: drop "
                             f"{'them' if len(given) > 1 else 'it'}, or edit a copy of the config.yaml")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    console.print(Text.assemble(("warning:", "yellow"), " ", str(message)), highlight=False, soft_wrap=True)


@app.command()
def fit(
    train: Optional[str] = typer.Argument(None, help=help_for(DataSpec, "train")),
    test: Optional[str] = TEST,
    backbone: Optional[str] = spec_option(BackboneSpec, "name", "--backbone", default=None),
    strategy: str = spec_option(StrategySpec, "name", "--strategy"),
    epochs: Optional[int] = EPOCHS,
    lr: Optional[float] = LR,
    budget: Optional[str] = spec_option(StrategySpec, "budget", "--budget"),
    batch_size: int = BATCH_SIZE,
    image_size: Optional[int] = IMAGE_SIZE,
    max_length: int = MAX_LENGTH,
    long: str = LONG,
    weights: Optional[str] = WEIGHTS,
    precision: Optional[str] = PRECISION,
    seed: int = SEED,
    min_steps: int = MIN_STEPS,
    augment: str = AUGMENT,
    train_size: Optional[int] = TRAIN_SIZE,
    on_bad_image: str = ON_BAD_IMAGE,
    task: Optional[str] = TASK,
    text_column: Optional[str] = TEXT_COLUMN,
    image_column: Optional[str] = IMAGE_COLUMN,
    label_column: Optional[str] = LABEL_COLUMN,
    log_with: Optional[str] = spec_option(LogSpec, "log_with", "--log-with"),
    log_dir: str = spec_option(LogSpec, "log_dir", "--log-dir"),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory to write; default runs/DATE-BACKBONE-STRATEGY."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out (only once the new run succeeded)."),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP.format(run="a run's", more=", --dry-run")),
    resume: Optional[Path] = RESUME,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (phases, groups, learning rates) and stop."),
    quiet: bool = QUIET,
    ctx: typer.Context = None,
):
    """Train a pretrained backbone with a new head on TRAIN, test it, and save a run directory."""
    if config is not None:
        _config_alone(ctx)
        spec = RunSpec.from_yaml(config)
    else:
        if train is None:
            raise HeadstartError("fit needs TRAIN and --backbone NAME (or --config config.yaml)")
        spec = api.run_spec(train, test, backbone=backbone, strategy=strategy, epochs=epochs, lr=lr,
                            batch_size=batch_size, image_size=image_size, max_length=max_length, long=long,
                            weights=weights,
                            precision=precision, seed=seed, min_steps=min_steps, augment=augment,
                            train_size=train_size,
                            on_bad_image=on_bad_image, budget=budget, task=task, text_column=text_column,
                            image_column=image_column, label_column=label_column, log_with=log_with,
                            log_dir=log_dir)
    if dry_run:
        typer.echo(api.describe_plan(spec))
        return
    out, resuming = _resume(out, resume)
    result = api.fit_spec(spec, out, overwrite, show_progress=not quiet, resume=resuming)
    if not distributed.is_main():
        return  # the main process of a data-parallel run reports it
    _print_metrics(result.metrics, f"{spec.backbone.name} / {result.plan.strategy}", {
        "best epoch": str(result.history.best_epoch),
        "train time": f"{result.history.seconds:.1f} s",
        "cached features": ", ".join(result.history.cached_phases) or "no",
    })
    if (result.run_dir / AUTO_FILE).is_file():
        typer.echo(f"strategy {result.plan.strategy} chosen by auto; the race is in {result.run_dir / AUTO_FILE}")
    typer.echo(f"run saved to {result.run_dir}")


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run directory written by 'headstart fit'."),
    test: str = typer.Argument(..., help="Labelled test data: image folder, .csv/.jsonl, or builtin:NAME."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the metrics as JSON here."),
    quiet: bool = QUIET,
):
    """Test a saved run on labelled data: accuracy, macro-F1, per-class P/R/F1, confusion matrix."""
    metrics = api.evaluate(run_dir, test, output, show_progress=not quiet)
    _print_metrics(metrics, f"{run_dir} on {test}", {})
    if output is not None:
        typer.echo(f"metrics written to {output}")


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="A run directory written by 'headstart fit'."),
    inputs: str = typer.Argument(..., metavar="INPUT", help="Images (a folder) or texts (.csv/.jsonl with a 'text' column)."),
    output: Optional[Path] = typer.Option(None, "--output", help="CSV to write (input,label,score); default: print it."),
    csv_safe: bool = typer.Option(False, "--csv-safe", help="Prefix a quote (') to every cell that starts with =, +, "
                                  "-, @, a tab or a carriage return, so that a spreadsheet shows it as text and never "
                                  "runs it as a formula."),
    quiet: bool = QUIET,
):
    """Label new inputs with a saved run: one row per input with the label and its probability."""
    predictions = api.predict(run_dir, inputs, output, show_progress=not quiet, csv_safe=csv_safe)
    if output is None:
        csv.writer(sys.stdout).writerows(api.prediction_rows(predictions, api.run_task(run_dir), csv_safe))
    else:
        typer.echo(f"{len(predictions)} predictions written to {output}")


@app.command("export")
def export_run(
    run_dir: Path = typer.Argument(..., help="A run directory written by 'headstart fit'."),
    format: str = typer.Option("onnx", "--format", help="The format to export to: onnx."),
    out: Optional[Path] = typer.Option(None, "--out", help="The file to write (.onnx); default RUN_DIR/model.onnx. "
                                       "Its preprocessing is written beside it as FILE.json."),
):
    """Export a saved run (backbone + head) to ONNX, with a JSON file saying how to preprocess its inputs."""
    path = export_api(run_dir, format, out)
    typer.echo(f"exported to {path}; preprocessing in {preprocessing_file(path)}")


@app.command()
def compare(
    train: str = typer.Argument(..., help=help_for(DataSpec, "train")),
    test: Optional[str] = typer.Option(None, "--test", help="Also test every strategy on this data (mean over splits)."),
    backbone: str = typer.Option(..., "--backbone", help=help_for(BackboneSpec, "name")),
    strategies: Optional[str] = typer.Option(None, "--strategies", help="Comma-separated; default: scratch, "
                                             "linear-probe, freeze:K (half the groups), full, lp-ft."),
    folds: Optional[int] = typer.Option(None, "--folds", help="Stratified K-fold cross-validation on TRAIN."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Repeat a stratified 80/20 hold-out with N seeds "
                                        "(default 3 when --folds is not given)."),
    shots: str = typer.Option("all", "--shots", help="Labelled examples per class to train with, e.g. 8,32,128,all."),
    epochs: Optional[int] = EPOCHS,
    train_size: Optional[int] = TRAIN_SIZE,
    image_size: Optional[int] = IMAGE_SIZE,
    max_length: int = MAX_LENGTH,
    long: str = LONG,
    weights: Optional[str] = WEIGHTS,
    batch_size: int = BATCH_SIZE,
    precision: Optional[str] = PRECISION,
    task: Optional[str] = TASK,
    shot_steps: int = typer.Option(COMPARE_MIN_STEPS, "--shot-steps", help="Give every phase at least this many "
                                    "optimiser steps (passes over a few-shot subset), so that shots compare learning."),
    text_column: Optional[str] = TEXT_COLUMN,
    image_column: Optional[str] = IMAGE_COLUMN,
    label_column: Optional[str] = LABEL_COLUMN,
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for report.html, summary.json and plots; "
                                       "default runs/compare."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out once the comparison succeeded."),
    resume: Optional[Path] = RESUME,
    quiet: bool = QUIET,
):
    """Prove the transfer: every strategy against scratch and a classical baseline, on the same splits."""
    out, resuming = _resume(out, resume)
    out = out or Path("runs/compare")
    summary = compare_strategies(
        train, test, backbone=backbone, strategies=strategies.split(",") if strategies else None, folds=folds,
        seeds=seeds, shots=shots, epochs=epochs, train_size=train_size, image_size=image_size,
        max_length=max_length, long=long,
        weights=weights, batch_size=batch_size, precision=precision, task=task, out=out,
        overwrite=overwrite, show_progress=not quiet, command="headstart " + " ".join(sys.argv[1:]), resume=resuming,
        shot_steps=shot_steps, text_column=text_column, image_column=image_column, label_column=label_column)
    score = summary["score"]
    key, second = score["key"], score["second"]
    table = Table(title=f"{backbone} on {train}")
    for column in ("strategy", score["name"], score["second_name"], "s/fold"):
        table.add_column(column)
    for name, e in sorted(summary["strategies"].items(), key=lambda kv: -kv[1][f"{key}_mean"]):
        table.add_row(name, f"{e[f'{key}_mean']:.3f} ± {e[f'{key}_std']:.3f}", f"{e[f'{second}_mean']:.3f}",
                      f"{e['seconds']:.1f}")
    Console().print(table)
    typer.echo(summary["recommendation"])
    typer.echo(f"report: {out / 'report.html'}")


@app.command()
def pretrain(
    data: Optional[str] = typer.Argument(None, help=help_for(PretrainSpec, "data")),
    method: Optional[str] = spec_option(PretrainSpec, "method", "--method", default=None),
    backbone: Optional[str] = spec_option(BackboneSpec, "name", "--backbone", default=None),
    epochs: Optional[int] = spec_option(PretrainSpec, "epochs", "--epochs"),
    lr: Optional[float] = spec_option(PretrainSpec, "lr", "--lr"),
    batch_size: int = spec_option(PretrainSpec, "batch_size", "--batch-size"),
    mask_prob: float = spec_option(PretrainSpec, "mask_prob", "--mask-prob"),
    temperature: float = spec_option(PretrainSpec, "temperature", "--temperature"),
    strategy: Optional[str] = spec_option(PretrainSpec, "strategy", "--strategy"),
    image_size: Optional[int] = IMAGE_SIZE,
    max_length: int = MAX_LENGTH,
    long: str = LONG,
    weights: Optional[str] = WEIGHTS,
    train_size: Optional[int] = spec_option(PretrainSpec, "train_size", "--train-size"),
    precision: Optional[str] = spec_option(PretrainSpec, "precision", "--precision"),
    seed: int = spec_option(PretrainSpec, "seed", "--seed"),
    text_column: Optional[str] = TEXT_COLUMN,
    image_column: Optional[str] = IMAGE_COLUMN,
    label_column: Optional[str] = LABEL_COLUMN,
    out: Optional[Path] = typer.Option(None, "--out", help="Backbone folder to write; default runs/DATE-BACKBONE-METHOD."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out (only once pretraining succeeded)."),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP.format(run="a backbone folder's", more="")),
    resume: Optional[Path] = RESUME,
    quiet: bool = QUIET,
    ctx: typer.Context = None,
):
    """Pretrain a backbone on your own data (supervised, mlm or contrastive); reuse it as fit --backbone OUT."""
    if config is not None:
        _config_alone(ctx)
        spec = PretrainSpec.from_yaml(config)
    elif data is None or method is None or backbone is None:
        raise HeadstartError("pretrain needs DATA, --method and --backbone NAME (or --config config.yaml)")
    else:
        spec = pretrain_spec(data, method=method, backbone=backbone, epochs=epochs, lr=lr, batch_size=batch_size,
                             image_size=image_size, max_length=max_length, long=long,
                             weights=weights, mask_prob=mask_prob,
                             temperature=temperature, strategy=strategy, train_size=train_size, precision=precision,
                             seed=seed, text_column=text_column, image_column=image_column, label_column=label_column)
    out, resuming = _resume(out, resume)
    result = pretrain_from_spec(spec, out, overwrite, show_progress=not quiet, resume=resuming)
    table = Table(title=f"{spec.backbone.name} / {spec.method} on {spec.data}", show_header=False)
    for key, value in result.summary.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            table.add_row(key.replace("_", " "), f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)
    typer.echo(f"backbone saved to {result.out}; reuse it with: headstart fit TRAIN --backbone {result.out}")



@app.command("self-train")
def self_train(
    train: Optional[str] = typer.Argument(None, help=help_for(DataSpec, "train")),
    unlabeled: Optional[str] = spec_option(SelfTrainSpec, "unlabeled", "--unlabeled", default=None),
    test: Optional[str] = TEST,
    backbone: Optional[str] = spec_option(BackboneSpec, "name", "--backbone", default=None),
    strategy: Optional[str] = spec_option(StrategySpec, "name", "--strategy", default=None),
    rounds: int = spec_option(SelfTrainSpec, "rounds", "--rounds"),
    selection: str = spec_option(SelfTrainSpec, "selection", "--selection"),
    class_shares: str = spec_option(SelfTrainSpec, "class_shares", "--class-shares"),
    curriculum_step: float = spec_option(SelfTrainSpec, "curriculum_step", "--curriculum-step"),
    threshold: Optional[float] = spec_option(SelfTrainSpec, "threshold", "--threshold"),
    per_class_cap: Optional[int] = spec_option(SelfTrainSpec, "per_class_cap", "--per-class-cap"),
    noise: bool = spec_option(SelfTrainSpec, "noise", "--noise"),
    epochs: Optional[int] = EPOCHS,
    lr: Optional[float] = LR,
    batch_size: int = BATCH_SIZE,
    image_size: Optional[int] = IMAGE_SIZE,
    max_length: int = MAX_LENGTH,
    long: str = LONG,
    weights: Optional[str] = WEIGHTS,
    precision: Optional[str] = PRECISION,
    seed: int = SEED,
    min_steps: int = MIN_STEPS,
    train_size: Optional[int] = TRAIN_SIZE,
    on_bad_image: str = ON_BAD_IMAGE,
    text_column: Optional[str] = TEXT_COLUMN,
    image_column: Optional[str] = IMAGE_COLUMN,
    label_column: Optional[str] = LABEL_COLUMN,
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory to write; default runs/DATE-BACKBONE-self-train-STRATEGY."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out (only once the new run succeeded)."),
    config: Optional[Path] = typer.Option(None, "--config", help=CONFIG_HELP.format(run="a self-train run's", more="")),
    resume: Optional[Path] = RESUME,
    quiet: bool = QUIET,
    ctx: typer.Context = None,
):
    """Self-training: a teacher pseudo-labels UNLABELED, students learn from both; the best round is saved as a run."""
    out, resuming = _resume(out, resume)
    if config is not None:
        _config_alone(ctx)
        result = self_train_from_config(config, out, overwrite, show_progress=not quiet, resume=resuming)
    elif train is None or unlabeled is None or backbone is None or strategy is None:
        raise HeadstartError("self-train needs TRAIN, --unlabeled, --backbone NAME and --strategy NAME "
                             "(or --config config.yaml)")
    else:
        result = self_train_api(train, unlabeled, test, backbone=backbone, strategy=strategy, rounds=rounds,
                                selection=selection, class_shares=class_shares, curriculum_step=curriculum_step,
                                threshold=threshold, per_class_cap=per_class_cap, noise=noise, epochs=epochs, lr=lr,
                                batch_size=batch_size, image_size=image_size, max_length=max_length, long=long,
                                weights=weights,
                                precision=precision, seed=seed, min_steps=min_steps, train_size=train_size,
                                on_bad_image=on_bad_image, out=out, overwrite=overwrite, show_progress=not quiet,
                                resume=resuming, text_column=text_column, image_column=image_column,
                                label_column=label_column)
    spec = result.spec
    table = Table(title=f"{spec.backbone.name} / {spec.strategy.name}, self-training on {spec.data.train}")
    for column in ("round", "pseudo-labels", "their accuracy", "val accuracy", "test accuracy"):
        table.add_column(column)
    for r in result.rounds:
        known = "" if r["pseudo_label_accuracy"] is None else f"{r['pseudo_label_accuracy']:.3f}"
        table.add_row(str(r["round"]) + (" (kept)" if r["round"] == result.best_round else ""), str(r["n_pseudo"]),
                      known, f"{r['val_accuracy']:.3f}", f"{r['test_accuracy']:.3f}")
    Console().print(table)
    typer.echo(f"run saved to {result.run_dir} (the model of round {result.best_round})")

@app.command("rank")
def rank_backbones(
    train: str = typer.Argument(..., help=help_for(RankSpec, "train")),
    backbones: str = typer.Option(..., "--backbones", help=help_for(RankSpec, "backbones")),
    metrics: Optional[str] = spec_option(RankSpec, "metrics", "--metrics", default=None),
    train_size: Optional[int] = spec_option(RankSpec, "train_size", "--train-size"),
    image_size: Optional[int] = spec_option(RankSpec, "image_size", "--image-size"),
    max_length: int = spec_option(RankSpec, "max_length", "--max-length"),
    long: str = spec_option(RankSpec, "long", "--long"),
    precision: Optional[str] = spec_option(RankSpec, "precision", "--precision"),
    seed: int = spec_option(RankSpec, "seed", "--seed"),
    text_column: Optional[str] = TEXT_COLUMN,
    image_column: Optional[str] = IMAGE_COLUMN,
    label_column: Optional[str] = LABEL_COLUMN,
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for rank.json, rank.png and config.yaml; "
                                       "default: print the table only."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out once the ranking succeeded."),
    quiet: bool = QUIET,
):
    """Rank candidate backbones for TRAIN before training: LogME, H-score, LEEP, NCE from frozen features."""
    started = time.perf_counter()
    results = rank_api(train, backbones, metrics, train_size=train_size, image_size=image_size, max_length=max_length,
                       long=long,
                       precision=precision, seed=seed, out=out, overwrite=overwrite, show_progress=not quiet,
                       text_column=text_column, image_column=image_column, label_column=label_column)
    names = [k for k in results[0] if k not in ("backbone", "seconds")]
    table = Table(title=f"backbones on {train}, best first by {names[0]}")
    table.add_column("#")
    table.add_column("backbone", overflow="fold")
    for column in (*names, "seconds"):
        table.add_column(column, no_wrap=True, min_width=7, justify="right")
    for place, row in enumerate(results, 1):
        cells = ["n/a" if row[m] is None else f"{row[m]:.4f}" for m in names]
        table.add_row(str(place), row["backbone"], *cells, f"{row['seconds']:.1f}")
    Console().print(table)
    if any(row[m] is None for row in results for m in names):
        typer.echo("n/a: LEEP and NCE need the backbone's source-task head (random weights, and some sources, have "
                   "none); H-score, LEEP and NCE need labels that are classes")
    typer.echo(f"ranked {len(results)} backbones in {time.perf_counter() - started:.1f} s; {RANK_NOTE}")
    if out is not None:
        typer.echo(f"written to {out / RANK_FILE}")


@app.command()
def advise(
    train: str = typer.Argument(..., help=help_for(DataSpec, "train")),
    backbone: str = typer.Option(..., "--backbone", help=help_for(BackboneSpec, "name")),
    source: Optional[str] = typer.Option(None, "--source", help="A sample of what the backbone was trained on "
                                         "(same forms as TRAIN, labels not needed): similarity becomes the domain "
                                         "distance to it. Default: pretrained against random features."),
    train_size: Optional[int] = TRAIN_SIZE,
    image_size: Optional[int] = IMAGE_SIZE,
    max_length: int = MAX_LENGTH,
    long: str = LONG,
    weights: Optional[str] = WEIGHTS,
    precision: Optional[str] = PRECISION,
    seed: int = SEED,
    text_column: Optional[str] = TEXT_COLUMN,
    image_column: Optional[str] = IMAGE_COLUMN,
    label_column: Optional[str] = LABEL_COLUMN,
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for advice.json and advice.png; default: print only."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out once the advice succeeded."),
    quiet: bool = QUIET,
):
    """Which strategy suits TRAIN: labels per class x similarity to the pretraining -> a quadrant -> a strategy."""
    advice = advise_api(train, backbone=backbone, source=source, train_size=train_size, image_size=image_size,
                        max_length=max_length, long=long, weights=weights, precision=precision, seed=seed, out=out,
                        overwrite=overwrite, show_progress=not quiet, text_column=text_column,
                        image_column=image_column, label_column=label_column)
    m, t, per_class = advice.measurements, advice.thresholds, advice.labels_per_class
    table = Table(title=f"{backbone} on {train}", show_header=False)
    table.add_row("labels per class", f"min {per_class['min']} ('{per_class['smallest_class']}'), median "
                  f"{per_class['median']:g} -> {advice.size} (small below {t['small_below_labels_per_class']})")
    classical = f"classical features {m['probe_classical']:.3f}, " if "probe_classical" in m else ""
    table.add_row(f"linear probe ({m['probe_score']})", f"pretrained {m['probe_pretrained']:.3f}, random weights "
                  f"{m['probe_random']:.3f}, {classical}a constant guess {m['chance']:.3f} ({m['probe_folds']}-fold, "
                  f"{m['probe_examples']} examples)")
    if "proxy_a_distance" in m:
        table.add_row("domain distance", f"proxy A-distance {m['proxy_a_distance']:.3f} (domain classifier error "
                      f"{m['domain_error']:.3f}, {m['domain_examples']} examples a side)")
    table.add_row("similarity", f"{advice.similarity:.3f} ({advice.similarity_method}) -> "
                  f"{'similar' if advice.similar else 'different'} (similar from {t['similar_at']})")
    table.add_row("quadrant", advice.quadrant)
    table.add_row("strategy", f"[bold]{advice.strategy}[/] (next: {', '.join(advice.alternatives)})")
    Console().print(table)
    typer.echo(advice.reason)
    if out is not None:
        typer.echo(f"written to {out / ADVICE_FILE}")


cache_app = typer.Typer(no_args_is_help=True, help="The feature cache on disk: what it holds, and emptying it.")
app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def cache_info():
    """Where the feature cache is, its entries and size against HEADSTART_CACHE_MAX, its oldest and newest use."""
    info = cache_store.cache_info()
    table = Table(title="feature cache", show_header=False)
    table.add_row("folder", info["folder"])
    table.add_row("entries", str(info["entries"]))
    table.add_row("size", f"{_size(info['bytes'])} of at most {_size(info['limit_bytes'])} (HEADSTART_CACHE_MAX)")
    table.add_row("used", f"{info['oldest_use'] or '-'} .. {info['newest_use'] or '-'}")
    Console().print(table)


@cache_app.command("clear")
def cache_clear():
    """Remove every cached feature file (they are computed again when needed)."""
    done = cache_store.clear_cache()
    typer.echo(f"removed {done['removed']} cached feature file(s), {_size(done['bytes_freed'])}, from {done['folder']}")


def _size(n: float) -> str:
    """Bytes in decimal units, as HEADSTART_CACHE_MAX is written (4GB = 4 x 10^9 bytes)."""
    if n < 1000:
        return f"{n:.0f} B"
    for unit in ("KB", "MB", "GB"):
        n /= 1000
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}"


def _print_metrics(metrics: dict, title: str, extra: dict[str, str]) -> None:
    table = Table(title=title, show_header=False)
    for name, value in TASKS.get(metrics.get("task", "classification")).headline(metrics).items():
        table.add_row(name, value)
    table.add_row("test examples", str(metrics["n"]))
    for key, value in extra.items():
        table.add_row(key, value)
    Console().print(table)


def main() -> None:
    warnings.showwarning = _show_warning
    console.quiet = console.quiet or not distributed.is_main()  # one process of a data-parallel run speaks
    try:
        command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
        if command != "fit":  # fit alone knows how to share a run between processes
            distributed.single_process_only(f"'headstart {command}'", "launch 'headstart fit' on several")
        if command is not None and "--help" not in sys.argv:  # (help is shown whatever the environment holds)
            check_environment()  # a bad HEADSTART_* value is refused before any work, whether or not the run reads it
        code = app(standalone_mode=False)  # click's usage errors come back here, to be printed on one line
    except HeadstartError as err:
        _print_error(str(err))
        sys.exit(2)
    except _UsageError as err:  # a bad option value, a missing argument, an unknown command
        if type(err).__name__ == "NoArgsIsHelpError":
            sys.exit(2)  # the help is already printed
        ctx = getattr(err, "ctx", None)
        hint = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
        _print_error(err.format_message().rstrip(".") + hint)
        sys.exit(err.exit_code)
    except Interrupted as stop:  # Ctrl-C in a command that checkpoints: it says what is kept
        console.print(Text.assemble(("interrupted:", "red"), " ", str(stop) or "stopped"),
                      highlight=False, soft_wrap=True)
        sys.exit(130)
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    if code == 130:  # typer turns a Ctrl-C outside the commands that checkpoint into this exit code
        console.print("[red]interrupted[/]; nothing was written")
    sys.exit(code if isinstance(code, int) else 0)


def _print_error(message: str) -> None:
    """One line, printed as plain text (a file named 'x[red].png' keeps its brackets)."""
    console.print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
