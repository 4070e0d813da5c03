"""The command line: one thin command per API function. Help texts come from config.py."""

from __future__ import annotations

import csv
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import api
from .compare import compare as compare_strategies
from .config import BackboneSpec, DataSpec, RunSpec, StrategySpec, TrainSpec, help_for
from .errors import HeadstartError
from .train.progress import console

try:  # typer >= 0.26 vendors click; its usage errors derive from TyperException
    from typer import TyperException as _UsageError
except ImportError:  # older typer runs on click itself
    from click import ClickException as _UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="headstart: reuse a pretrained model on your small data set, and prove it helped.")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    console.print(Text.assemble(("warning:", "yellow"), " ", str(message)), highlight=False, soft_wrap=True)


@app.command()
def fit(
    train: Optional[str] = typer.Argument(None, help=help_for(DataSpec, "train")),
    test: Optional[str] = typer.Option(None, "--test", help=help_for(DataSpec, "test")),
    backbone: Optional[str] = typer.Option(None, "--backbone", help=help_for(BackboneSpec, "name")),
    strategy: str = typer.Option("linear-probe", "--strategy", help=help_for(StrategySpec, "name")),
    epochs: Optional[int] = typer.Option(None, "--epochs", help=help_for(StrategySpec, "epochs")),
    lr: Optional[float] = typer.Option(None, "--lr", help=help_for(StrategySpec, "lr")),
    batch_size: int = typer.Option(32, "--batch-size", help=help_for(TrainSpec, "batch_size")),
    image_size: Optional[int] = typer.Option(None, "--image-size", help=help_for(BackboneSpec, "image_size")),
    max_length: int = typer.Option(128, "--max-length", help=help_for(BackboneSpec, "max_length")),
    weights: Optional[str] = typer.Option(None, "--weights", help=help_for(BackboneSpec, "weights")),
    precision: Optional[str] = typer.Option(None, "--precision", help=help_for(TrainSpec, "precision")),
    seed: int = typer.Option(0, "--seed", help=help_for(TrainSpec, "seed")),
    min_steps: int = typer.Option(0, "--min-steps", help=help_for(TrainSpec, "min_steps")),
    train_size: Optional[int] = typer.Option(None, "--train-size", help=help_for(DataSpec, "train_size")),
    on_bad_image: str = typer.Option("skip", "--on-bad-image", help=help_for(DataSpec, "on_bad_image")),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory to write; default runs/DATE-BACKBONE-STRATEGY."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out (only once the new run succeeded)."),
    config: Optional[Path] = typer.Option(None, "--config", help="Rerun from a run's config.yaml; other options are ignored."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (phases, groups, learning rates) and stop."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
):
    """Train a pretrained backbone with a new head on TRAIN, test it, and save a run directory."""
    if config is not None:
        spec = RunSpec.from_yaml(config)
    else:
        if train is None or backbone is None:
            raise HeadstartError("fit needs TRAIN and --backbone NAME (or --config config.yaml)")
        spec = api.run_spec(train, test, backbone=backbone, strategy=strategy, epochs=epochs, lr=lr,
                            batch_size=batch_size, image_size=image_size, max_length=max_length, weights=weights,
                            precision=precision, seed=seed, min_steps=min_steps, train_size=train_size,
                            on_bad_image=on_bad_image)
    if dry_run:
        typer.echo(api.describe_plan(spec))
        return
    result = api.fit_spec(spec, out, overwrite, show_progress=not quiet)
    _print_metrics(result.metrics, f"{spec.backbone.name} / {result.plan.strategy}", {
        "best epoch": str(result.history.best_epoch),
        "train time": f"{result.history.seconds:.1f} s",
        "cached features": ", ".join(result.history.cached_phases) or "no",
    })
    typer.echo(f"run saved to {result.run_dir}")


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="A run directory written by 'headstart fit'."),
    test: str = typer.Argument(..., help="Labelled test data: image folder, .csv/.jsonl, or builtin:NAME."),
    output: Optional[Path] = typer.Option(None, "--output", help="Write the metrics as JSON here."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
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
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
):
    """Label new inputs with a saved run: one row per input with the label and its probability."""
    predictions = api.predict(run_dir, inputs, output, show_progress=not quiet)
    if output is None:
        writer = csv.writer(sys.stdout)
        writer.writerow(["input", "label", "score"])
        writer.writerows([p.input, p.label, f"{p.score:.4f}"] for p in predictions)
    else:
        typer.echo(f"{len(predictions)} predictions written to {output}")


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
    epochs: Optional[int] = typer.Option(None, "--epochs", help=help_for(StrategySpec, "epochs")),
    train_size: Optional[int] = typer.Option(None, "--train-size", help=help_for(DataSpec, "train_size")),
    image_size: Optional[int] = typer.Option(None, "--image-size", help=help_for(BackboneSpec, "image_size")),
    max_length: int = typer.Option(128, "--max-length", help=help_for(BackboneSpec, "max_length")),
    weights: Optional[str] = typer.Option(None, "--weights", help=help_for(BackboneSpec, "weights")),
    batch_size: int = typer.Option(32, "--batch-size", help=help_for(TrainSpec, "batch_size")),
    precision: Optional[str] = typer.Option(None, "--precision", help=help_for(TrainSpec, "precision")),
    out: Path = typer.Option(Path("runs/compare"), "--out", help="Folder for report.html, summary.json and plots."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out once the comparison succeeded."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
):
    """Prove the transfer: every strategy against scratch and a classical baseline, on the same splits."""
    if precision not in (None, "fp32", "bf16"):
        raise HeadstartError(f"--precision {precision}: use fp32 or bf16")
    summary = compare_strategies(
        train, test, backbone=backbone, strategies=strategies.split(",") if strategies else None, folds=folds,
        seeds=seeds, shots=shots, epochs=epochs, train_size=train_size, image_size=image_size,
        max_length=max_length, weights=weights, batch_size=batch_size, precision=precision, out=out,
        overwrite=overwrite, show_progress=not quiet, command="headstart " + " ".join(sys.argv[1:]))
    table = Table(title=f"{backbone} on {train}")
    for column in ("strategy", "accuracy", "macro-F1", "s/fold"):
        table.add_column(column)
    for name, e in sorted(summary["strategies"].items(), key=lambda kv: -kv[1]["accuracy_mean"]):
        table.add_row(name, f"{e['accuracy_mean']:.3f} ± {e['accuracy_std']:.3f}",
                      f"{e['macro_f1_mean']:.3f}", f"{e['seconds']:.1f}")
    Console().print(table)
    typer.echo(summary["recommendation"])
    typer.echo(f"report: {out / 'report.html'}")


def _print_metrics(metrics: dict, title: str, extra: dict[str, str]) -> None:
    table = Table(title=title, show_header=False)
    table.add_row("accuracy", f"{metrics['accuracy']:.4f}")
    table.add_row("macro-F1", f"{metrics['macro_f1']:.4f}")
    table.add_row("test examples", str(metrics["n"]))
    for key, value in extra.items():
        table.add_row(key, value)
    Console().print(table)


def main() -> None:
    warnings.showwarning = _show_warning
    try:
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
    except (KeyboardInterrupt, typer.Abort):
        console.print("[red]interrupted[/]; nothing was written")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _print_error(message: str) -> None:
    """One line, printed as plain text (a file named 'x[red].png' keeps its brackets)."""
    console.print(Text.assemble(("error:", "red"), " ", message), highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
