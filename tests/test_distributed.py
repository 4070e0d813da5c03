"""Data-parallel fit: two processes (torchrun, gloo on the CPU) train the same plan as one, and one run is written."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import headstart
from test_bad_input import one_error, run_cli

ARGS = ("builtin:digits", "--backbone", "efficientnet-lite0", "--image-size", "32", "--train-size", "200",
        "--strategy", "lp-ft", "--epochs", "2", "--precision", "fp32", "--quiet")


def history(run) -> list[dict]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def test_two_processes_write_one_run_within_noise_of_one_process(tmp_path):
    launched = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                               "--master_port", "29517", "-m", "headstart", "fit", *ARGS, "--out", "two"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert launched.stdout.count("run saved to two") == 1  # the main process reports, the other is silent
    single = headstart.fit(*ARGS[:1], backbone="efficientnet-lite0", image_size=32, train_size=200, strategy="lp-ft",
                           epochs=2, precision="fp32", out=tmp_path / "one", show_progress=False)
    two = tmp_path / "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # no checkpoints, staging or lock left
    metrics = json.loads((two / "metrics.json").read_text())
    # Each process takes half of every batch: the same examples' gradients, averaged in another order, and
    # shuffled by Accelerate's sampler. Stated tolerance: 0.1 of test accuracy, 10% of every validation loss.
    assert abs(metrics["accuracy"] - single.metrics["accuracy"]) <= 0.1
    assert metrics["n_train"] == single.metrics["n_train"] and metrics["n"] == single.metrics["n"]
    for a, b in zip(history(two), history(tmp_path / "one"), strict=True):
        assert (a["phase"], a["epoch"]) == (b["phase"], b["epoch"])
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=0.1)
    reloaded = headstart.evaluate(two, "builtin:digits", show_progress=False)  # a valid run: it loads and scores
    assert reloaded["n"] == 1797 and 0.3 <= reloaded["accuracy"] <= 1


def test_what_several_processes_refuse(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    error = one_error(*run_cli("compare", *ARGS[:5], "--out", tmp_path / "c"))
    assert error == "error: 'headstart compare' runs in one process, not 2; launch 'headstart fit' on several"
    error = one_error(*run_cli("fit", *ARGS[:7], "--strategy", "auto", "--out", tmp_path / "a"))
    assert error.startswith("error: --strategy auto runs in one process, not 2; its race is timed")
    error = one_error(*run_cli("fit", *ARGS, "--batch-size", "33", "--out", tmp_path / "b"))
    assert error == "error: --batch-size 33 does not split evenly over 2 processes; give a multiple of 2"
    assert not list(tmp_path.iterdir())  # refused before any work
