"""Nothing lost: a long command killed (SIGKILL) or stopped (Ctrl-C) mid-run resumes with --resume OUT to the result
of a run that was never interrupted, bit for bit in fp32; a changed command, or a fresh run over the checkpoints,
is refused in one line."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from headstart.checkpoints import Checkpoints, resume_folder
from test_bad_input import one_error, run_cli

# `headstart ARGS` in a child process that sends itself SIGNAL right after its N-th checkpoint (or finished piece
# of work) is written: a kill at a known point, with nothing in headstart itself that knows about tests.
KILLER = """
import os, signal, sys
n, sig = int(sys.argv.pop(1)), getattr(signal, sys.argv.pop(1))
from headstart import checkpoints
count = [0]
def counted(write):
    def wrapper(self, *args):
        write(self, *args)
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), sig)
    return wrapper
checkpoints.Checkpoints.save = counted(checkpoints.Checkpoints.save)
checkpoints.Checkpoints.put = counted(checkpoints.Checkpoints.put)
from headstart.cli import main
sys.argv[0] = "headstart"
main()
"""

IMAGES = ("--backbone", "efficientnet-lite0", "--image-size", "32", "--precision", "fp32", "--quiet")


def interrupted(cwd: Path, after: int, *args, sig: str = "SIGKILL") -> subprocess.CompletedProcess:
    """Run headstart ARGS in a child stopped by `sig` after `after` checkpoints; the run is not in place."""
    child = subprocess.run([sys.executable, "-c", KILLER, str(after), sig, *map(str, args)], cwd=cwd,
                           capture_output=True, text=True, timeout=600)
    expected = -signal.SIGKILL if sig == "SIGKILL" else 130
    assert child.returncode == expected, child.stdout + child.stderr
    return child


def same_result(a: Path, b: Path, files=("predictions.csv",)) -> None:
    """Two runs agree: the files byte for byte, every metric but the timings."""
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    untimed = lambda path: {k: v for k, v in json.loads(path.read_text()).items() if "seconds" not in k}  # noqa: E731
    metrics = "metrics.json" if (a / "metrics.json").is_file() else "summary.json"
    assert untimed(a / metrics) == untimed(b / metrics)


@pytest.fixture(autouse=True)
def every_epoch(monkeypatch):
    """A checkpoint after every epoch, so that 'killed after the N-th' names one point (by default quick epochs
    share one: see the thinning test below)."""
    monkeypatch.setenv("HEADSTART_CHECKPOINT_INTERVAL", "0")


@pytest.fixture()
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_fit_killed_in_its_second_phase_resumes_to_the_uninterrupted_run(here):
    args = ("fit", "builtin:digits", "--train-size", "150", "--strategy", "lp-ft", "--epochs", "3", *IMAGES)
    assert run_cli(*args, "--out", "whole")[0] == 0
    interrupted(here, 4, *args, "--out", "run")  # 3 probe epochs, 1 of the fine-tune
    assert not (here / "run").exists()
    saved = Checkpoints(resume_folder(here / "run") / "train").latest()
    assert (saved["phase"], saved["epochs_done"]) == (1, 1)
    code, output = run_cli(*args, "--resume", "run")
    assert code == 0, output
    same_result(here / "whole", here / "run")
    assert not resume_folder(here / "run").exists()  # the checkpoints go once the run is in place


def test_a_linear_probe_checkpoints_its_head_alone_and_resumes_to_the_uninterrupted_run(here):
    # The frozen backbone is what a resumed run loads again: its checkpoint (and best epoch) is the head's few KB.
    args = ("fit", "builtin:digits", "--train-size", "150", "--strategy", "linear-probe", "--epochs", "3", *IMAGES)
    assert run_cli(*args, "--out", "whole")[0] == 0
    interrupted(here, 2, *args, "--out", "run")
    saved = Checkpoints(resume_folder(here / "run") / "train").latest()
    assert saved["epochs_done"] == 2
    assert set(saved["model"]) == set(saved["callbacks"][1]["weights"]) == {"weight", "bias"}
    code, output = run_cli(*args, "--resume", "run")
    assert code == 0, output
    same_result(here / "whole", here / "run")


@pytest.mark.parametrize("strategy", ["l2sp", "gradual"])
def test_a_regularised_fit_killed_mid_phase_resumes_to_the_uninterrupted_run(here, strategy):
    # L2-SP's pretrained weights travel in the checkpoint; gradual unfreezing picks up at the group it had reached.
    args = ("fit", "builtin:digits", "--train-size", "150", "--strategy", strategy, "--epochs", "3", *IMAGES)
    assert run_cli(*args, "--out", "whole")[0] == 0
    interrupted(here, 2, *args, "--out", "run")
    code, output = run_cli(*args, "--resume", "run")
    assert code == 0, output
    same_result(here / "whole", here / "run")


def test_auto_killed_mid_race_resumes_to_the_same_winner_and_model(here):
    args = ("fit", "builtin:digits", "--train-size", "200", "--strategy", "auto", "--epochs", "3", *IMAGES)
    assert run_cli(*args, "--out", "whole")[0] == 0
    interrupted(here, 5, *args, "--out", "run")  # inside the third candidate's turn at the first rung
    code, output = run_cli(*args, "--resume", "run")
    assert code == 0, output
    same_result(here / "whole", here / "run")
    race = lambda d: [[{k: v for k, v in e.items() if k != "seconds"} for e in r["results"]]  # noqa: E731
                      for r in json.loads((d / "auto.json").read_text())["rungs"]]
    assert race(here / "whole") == race(here / "run")


def test_compare_killed_after_some_folds_keeps_them_and_resumes(here):
    args = ("compare", "builtin:digits", "--train-size", "150", "--strategies", "linear-probe,full", "--epochs", "2",
            "--seeds", "2", "--shot-steps", "0", *IMAGES)
    assert run_cli(*args, "--out", "whole")[0] == 0
    interrupted(here, 6, *args, "--out", "run")
    kept = sorted(p.name for p in resume_folder(here / "run").glob("*.json") if p.name != "command.json")
    assert kept == ["fold0-all-linear-probe.json", "fold0-all-scratch.json"]
    code, output = run_cli(*args, "--resume", "run")
    assert code == 0, output
    untimed = lambda d: {n: {k: v for k, v in e.items() if k != "seconds"}  # noqa: E731
                         for n, e in json.loads((d / "summary.json").read_text())["strategies"].items()}
    assert untimed(here / "whole") == untimed(here / "run")


def test_self_train_killed_mid_round_resumes_to_the_same_rounds(here, review_csvs):
    train, test = review_csvs
    pool = here / "pool.csv"  # the test reviews without their labels
    with open(test, newline="", encoding="utf-8") as f, open(pool, "w", newline="", encoding="utf-8") as g:
        csv.writer(g).writerows([[row["text"]] for row in [{"text": "text"}, *csv.DictReader(f)]])
    args = ("self-train", train, "--unlabeled", pool, "--backbone", "minilm-l6", "--strategy", "linear-probe",
            "--rounds", "2", "--epochs", "3", "--precision", "fp32", "--quiet")
    assert run_cli(*args, "--out", "whole")[0] == 0
    interrupted(here, 5, *args, "--out", "run")  # round 0 kept (its 3 epochs and the round), round 1 begun
    assert (resume_folder(here / "run") / "round-0.json").is_file()
    code, output = run_cli(*args, "--resume", "run")
    assert code == 0, output
    same_result(here / "whole", here / "run")
    rounds = lambda d: [{k: v for k, v in r.items() if k != "seconds"}  # noqa: E731
                        for r in json.loads((d / "rounds.json").read_text())["rounds"]]
    assert rounds(here / "whole") == rounds(here / "run")


@pytest.mark.parametrize("method", [
    ("builtin:digits", "--method", "contrastive", "--backbone", "timm:resnet10t:random", "--image-size", "32",
     "--train-size", "48", "--batch-size", "16"),
    ("builtin:rotten-tomatoes", "--method", "mlm", "--backbone", "minilm-l6", "--train-size", "120",
     "--max-length", "32"),
], ids=["contrastive", "mlm"])
def test_pretrain_killed_after_an_epoch_resumes_to_the_same_backbone(here, method):
    args = ("pretrain", *method, "--epochs", "3", "--precision", "fp32", "--quiet")
    assert run_cli(*args, "--out", "whole")[0] == 0
    interrupted(here, 1, *args, "--out", "run")
    code, output = run_cli(*args, "--resume", "run")
    assert code == 0, output
    same_result(here / "whole", here / "run", ("backbone.safetensors",))


def test_ctrl_c_stops_at_the_next_checkpoint_and_says_how_to_resume(here):
    args = ("fit", "builtin:digits", "--train-size", "150", "--strategy", "full", "--epochs", "4", *IMAGES)
    assert run_cli(*args, "--out", "whole")[0] == 0
    child = interrupted(here, 1, *args, "--out", "run", sig="SIGINT")
    said = child.stdout + child.stderr
    assert "interrupted: the checkpoints are kept" in said and "--resume run" in said and "Traceback" not in said
    saved = Checkpoints(resume_folder(here / "run") / "train").latest()
    assert saved["epochs_done"] == 2  # asked after epoch 1: it finished epoch 2 and its checkpoint, then stopped
    assert run_cli(*args, "--resume", "run")[0] == 0
    same_result(here / "whole", here / "run")


def test_what_resume_refuses(here):
    args = ("fit", "builtin:digits", "--train-size", "150", "--strategy", "full", "--epochs", "3", *IMAGES)
    error = one_error(*run_cli(*args, "--resume", "run"))
    assert "--resume run: there is no unfinished run to resume there" in error
    interrupted(here, 1, *args, "--out", "run")
    error = one_error(*run_cli(*args, "--out", "run"))  # a fresh start would lose the checkpoints
    assert "has the checkpoints of an unfinished run" in error and "--resume run" in error
    error = one_error(*run_cli(*args[:-9], "--epochs", "4", *IMAGES, "--resume", "run"))
    assert "strategy.epochs (was 3, now 4)" in error
    error = one_error(*run_cli("compare", "builtin:digits", *IMAGES, "--resume", "run"))
    assert "is a 'fit', not a 'compare'" in error
    assert "name different runs" in one_error(*run_cli(*args, "--out", "elsewhere", "--resume", "run"))
    assert run_cli(*args, "--out", "run", "--overwrite")[0] == 0  # --overwrite starts afresh
    assert not resume_folder(here / "run").exists()


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before_and_two_are_kept(tmp_path):
    checkpoints = Checkpoints(tmp_path / "c")
    for step in range(4):
        checkpoints.save({"step": step, "weights": torch.full((3,), float(step)), "nested": {"a": (1, 2)}})
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["000002.safetensors", "000003.safetensors"]
    latest = checkpoints.latest()
    assert latest["step"] == 3 and torch.equal(latest["weights"], torch.full((3,), 3.0))
    assert latest["nested"] == {"a": [1, 2]}
    (tmp_path / "c" / "000003.safetensors").write_bytes(b"half a file")
    assert checkpoints.latest()["step"] == 2


def test_quick_epochs_share_a_checkpoint_and_a_stop_always_writes_its_own(tmp_path, monkeypatch):
    from headstart import checkpoints as module

    monkeypatch.delenv("HEADSTART_CHECKPOINT_INTERVAL")
    monkeypatch.setattr(module, "CHECKPOINT_SHARE", 1e-9)  # every write "costs" far more than the time until the next
    checkpoints = Checkpoints(tmp_path / "c")
    for step in range(3):
        checkpoints.save({"step": step, "weights": torch.zeros(100)})
    assert checkpoints.latest()["step"] == 0  # the first is always written, the next two were not worth it
    monkeypatch.setattr(module, "_stop_requested", True)
    with pytest.raises(module.Interrupted):
        checkpoints.save({"step": 3, "weights": torch.zeros(100)})
    assert checkpoints.latest()["step"] == 3  # Ctrl-C's stop comes right after a checkpoint, due or not
    monkeypatch.setattr(module, "_stop_requested", False)
    monkeypatch.setenv("HEADSTART_CHECKPOINT_INTERVAL", "0")
    checkpoints.save({"step": 4, "weights": torch.zeros(100)})
    assert checkpoints.latest()["step"] == 4


def test_a_bad_checkpoint_interval_is_refused_before_any_work(here, monkeypatch):
    monkeypatch.setenv("HEADSTART_CHECKPOINT_INTERVAL", "soon")
    error = one_error(*run_cli("fit", "builtin:digits", "--train-size", "150", *IMAGES, "--out", "run"))
    assert "HEADSTART_CHECKPOINT_INTERVAL='soon' is not a number of seconds" in error
    assert not (here / "run").exists()
