"""fit --strategy auto on real digits: the race, its record, the rerun of the winner, the time budget, bad input."""

from __future__ import annotations

import json

import yaml

from headstart import api
from headstart.data import load_task
from headstart.select.auto import MAX_CANDIDATES, candidates_for, race
from test_bad_input import one_error, run_cli

IMAGE = ("--backbone", "efficientnet-lite0", "--image-size", "32", "--quiet")


def test_auto_races_the_candidates_fits_the_winner_and_reruns_it_from_config(digit_folders, tmp_path):
    train, test = digit_folders
    run = tmp_path / "run"
    code, output = run_cli("fit", train, "--test", test, *IMAGE, "--strategy", "auto", "--budget", "10m",
                           "--epochs", "2", "--batch-size", "8", "--precision", "fp32", "--out", run)
    assert code == 0, output
    record = json.loads((run / "auto.json").read_text())
    config = yaml.safe_load((run / "config.yaml").read_text())
    winner = record["winner"]
    assert f"strategy {winner} chosen by auto" in output

    # Candidates: the advice's, the cheap linear probe, scratch as the reference; at most four.
    assert record["advice"]["strategy"] in record["candidates"]
    assert {"linear-probe", "scratch"} <= set(record["candidates"]) and len(record["candidates"]) <= MAX_CANDIDATES
    first = record["rungs"][0]
    assert [e["strategy"] for e in first["results"]] == record["candidates"]  # every candidate, cheap first
    assert record["candidates"][0] == "linear-probe" and record["candidates"][-1] == "scratch"
    # Successive halving: the better half goes on with twice the epochs, until one is left.
    sizes = [len(r["results"]) for r in record["rungs"]]
    assert sizes == [4, 2] and record["rungs"][-1]["kept"] == [winner] and not record["stopped_early"]
    second = {e["strategy"]: e for e in record["rungs"][1]["results"]}
    assert set(second) == set(first["kept"]) and max(second, key=lambda n: second[n]["val_accuracy"]) == winner
    assert all(second[n]["epochs"] >= e["epochs"] for e in first["results"] if e["strategy"] in second
               for n in [e["strategy"]])
    scores = {e["strategy"]: e["val_accuracy"] for e in first["results"]}
    # 30 digits per class: ImageNet weights beat random ones by far, so scratch is out at the first rung.
    assert "scratch" not in first["kept"] and scores["scratch"] < max(scores.values())
    assert winner != "scratch" and 0 < record["seconds"] and record["budget_seconds"] == 600
    assert winner in record["reason"]

    # The run is an ordinary run of the winner: resolved in config.yaml, with the race in its notes.
    assert config["run"]["strategy"]["name"] == winner and config["run"]["strategy"]["budget"] is None
    assert config["plan"]["strategy"] == winner
    assert any("--strategy auto" in note and winner in note for note in config["notes"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.8

    code, output = run_cli("fit", "--config", run / "config.yaml", "--out", tmp_path / "again", "--quiet")
    assert code == 0, output
    assert not (tmp_path / "again" / "auto.json").exists()  # the winner again, no second race
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]


def test_a_spent_budget_stops_the_race_with_the_best_so_far(digit_folders):
    train, test = digit_folders
    spec = api.run_spec(str(train), str(test), backbone="efficientnet-lite0", image_size=32, strategy="auto",
                        budget="0.01s")
    task = load_task(spec.data, spec.train.seed)
    result = race(task, spec, ["linear-probe", "full", "scratch"], show_progress=False)
    # The first (cheapest) candidate always runs; after it the hundredth of a second is gone.
    assert result.stopped_early and result.winner == "linear-probe"
    assert [e["strategy"] for e in result.rungs[0]["results"]] == ["linear-probe"]
    assert "budget ran out" in result.reason and result.budget_seconds == 0.01


def test_candidates_follow_the_advice():
    assert candidates_for("linear-probe", ["lp-ft", "freeze:4"]) == ["linear-probe", "lp-ft", "freeze:4", "scratch"]
    assert candidates_for("freeze:4", ["linear-probe", "full"]) == ["freeze:4", "linear-probe", "full", "scratch"]
    assert candidates_for("scratch", ["full", "freeze:4"]) == ["linear-probe", "full", "freeze:4", "scratch"]


def test_dry_run_says_what_auto_would_do_without_training(digit_folders, tmp_path):
    train, test = digit_folders
    code, output = run_cli("fit", train, "--test", test, *IMAGE, "--strategy", "auto", "--budget", "90s",
                           "--dry-run", "--out", tmp_path / "run")
    assert code == 0, output
    assert "strategy auto (budget 90s)" in output and "successive halving" in output
    assert "if similar: linear-probe, lp-ft, freeze:4, scratch" in output  # 27 per class: small
    assert not (tmp_path / "run").exists()


def test_bad_budget_through_the_cli(digit_folders, tmp_path):
    train, _ = digit_folders
    for budget in ("10x", "0m", "-5s", "soon"):
        line = one_error(*run_cli("fit", train, *IMAGE, "--strategy", "auto", "--budget", budget,
                                  "--out", tmp_path / "run"))
        assert "budget" in line and budget in line and "10m" in line
    line = one_error(*run_cli("fit", train, *IMAGE, "--strategy", "full", "--budget", "5m", "--out", tmp_path / "run"))
    assert "--strategy auto only" in line and "full" in line
    assert not (tmp_path / "run").exists()
