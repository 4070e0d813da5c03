"""fit --strategy auto on real digits: the race, its record, the rerun of the winner, the time budget, bad input."""

from __future__ import annotations

import json

import yaml

from headstart import api
from headstart.data import load_task
from headstart.select import _rule
from headstart.select.auto import MAX_CANDIDATES, candidates_for, mcnemar_p, race
from test_bad_input import one_error, run_cli

IMAGE = ("--backbone", "efficientnet-lite0", "--image-size", "32", "--quiet")


def test_auto_races_the_candidates_fits_the_winner_and_reruns_it_from_config(digit_folders, tmp_path, monkeypatch):
    train, test = digit_folders
    # The race of strategies that train: on 8x8 digits the pixels' lead would advise the baseline instead
    # (test_auto_advises_the_baseline_where_the_classical_features_lead), so that rule is set aside here.
    monkeypatch.setattr(_rule, "CLASSICAL_AHEAD", 2.0)
    run = tmp_path / "run"
    code, output = run_cli("fit", train, "--test", test, *IMAGE, "--strategy", "auto", "--budget", "10m",
                           "--epochs", "2", "--batch-size", "8", "--precision", "fp32", "--out", run)
    assert code == 0, output
    record = json.loads((run / "auto.json").read_text())
    config = yaml.safe_load((run / "config.yaml").read_text())
    winner = record["winner"]
    assert f"strategy {winner} chosen by auto" in output

    # Small data (27 per class): the advice (linear-probe-cv or freeze:K), the linear probe, LP-FT, and no scratch.
    assert record["advice"]["strategy"] in record["candidates"] and "linear-probe-cv" in record["candidates"]
    # ... and the classical baseline, which takes no place (seconds: TF-IDF or pixels + logistic regression)
    assert len(record["candidates"]) == MAX_CANDIDATES + 1 and "baseline" in record["candidates"]
    assert "scratch" not in record["candidates"]  # 27 per class
    assert record["candidates"][0] == "linear-probe-cv"  # cheap first
    # One rung: every candidate trains the first third of its plan (rounded up to whole epochs), the best
    # goes on to the end of its plan, and that model is the run's: the losers never train past their third.
    (rung,) = record["rungs"]
    assert [e["strategy"] for e in rung["results"]] == record["candidates"] and rung["kept"] == [winner]
    scores = {e["strategy"]: e for e in rung["results"]}
    # linear-probe-cv and the baseline are one fit each: whole at the first rung. The others have trained a third.
    one_fit = ("linear-probe-cv", "baseline")
    assert all(scores[n]["share"] == 1.0 for n in one_fit) and not record["stopped_early"]
    assert all(0 < e["share"] < 1 for n, e in scores.items() if n not in one_fit)
    best = max(scores, key=lambda n: (scores[n]["val_accuracy"], -scores[n]["val_loss"]))
    # The best score wins, unless the advised strategy keeps the lead for want of a significant challenger.
    assert winner == best or (winner == record["advice"]["strategy"] and "kept the lead" in record["reason"])
    assert record["final"]["strategy"] == winner and record["final"]["share"] == 1.0
    assert record["final"]["epochs"] >= scores[winner]["epochs"] + (winner not in one_fit)
    assert 0 < record["seconds"] and record["budget_seconds"] == 600 and winner in record["reason"]

    # The run is an ordinary run of the winner: resolved in config.yaml, with the race in its notes.
    assert config["run"]["strategy"]["name"] == winner and config["run"]["strategy"]["budget"] is None
    assert config["plan"]["strategy"] == winner
    assert any("--strategy auto" in note and winner in note for note in config["notes"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.8

    code, output = run_cli("fit", "--config", run / "config.yaml", "--out", tmp_path / "again", "--quiet")
    assert code == 0, output
    assert not (tmp_path / "again" / "auto.json").exists()  # the winner again, no second race
    # Paused and resumed in the race, the winner drew what a run of its own draws: the same model.
    assert (tmp_path / "again" / "predictions.csv").read_text() == (run / "predictions.csv").read_text()
    assert _epochs(tmp_path / "again") == _epochs(run)


def _epochs(run) -> list[tuple]:
    records = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    return [(r["phase"], r["epoch"], r["val_accuracy"], r["val_loss"], r["train_loss"]) for r in records]


def test_a_spent_budget_stops_the_race_with_the_best_so_far(digit_folders):
    train, test = digit_folders
    spec = api.run_spec(str(train), str(test), backbone="efficientnet-lite0", image_size=32, strategy="auto",
                        budget="0.01s")
    task = load_task(spec.data, spec.train.seed)
    result, model, history = race(task, spec, ["linear-probe", "full", "scratch"], show_progress=False)
    # The first (cheapest) candidate always runs; after it the hundredth of a second is gone.
    assert result.stopped_early and result.winner == "linear-probe"
    assert [e["strategy"] for e in result.rungs[0]["results"]] == ["linear-probe"]
    assert "budget ran out" in result.reason and result.budget_seconds == 0.01
    assert result.final["share"] == 1.0 and round(history.best_val_accuracy, 4) == result.final["val_accuracy"]
    assert model.classes == task.classes


def test_the_race_drops_a_dominated_strategy(digit_folders):
    # 30 digits per class: ImageNet features fit them at once; the same network from random weights cannot.
    train, test = digit_folders
    spec = api.run_spec(str(train), str(test), backbone="efficientnet-lite0", image_size=32, strategy="auto",
                        epochs=3, batch_size=8)
    task = load_task(spec.data, spec.train.seed)
    # Even where the advice points at the loser, so that it is the prior, the lead is too large to be chance.
    result, _, _ = race(task, spec, ["scratch", "linear-probe"], {"strategy": "scratch"}, show_progress=False)
    (rung,) = result.rungs
    scores = {e["strategy"]: e["val_accuracy"] for e in rung["results"]}
    assert result.winner == "linear-probe" and scores["scratch"] < scores["linear-probe"] - 0.2
    test = rung["prior"]["challengers"]["linear-probe"]
    assert rung["prior"]["leader"] == "linear-probe" and test["p"] < 0.05
    assert test["right_where_advised_wrong"] > test["wrong_where_advised_right"]
    assert "beat the advised scratch significantly" in result.reason


def test_the_advised_strategy_keeps_the_lead_unless_a_challenger_is_significantly_better(digit_folders):
    # McNemar's exact test by hand: 7 of 8 disagreements won is (8 + 1) / 2^8; 3 of 5 is (10 + 5 + 1) / 2^5.
    assert mcnemar_p(7, 1) == 9 / 256 and mcnemar_p(3, 2) == 16 / 32 and mcnemar_p(0, 0) == 1
    # Two strategies so close on the digits that neither is significantly better: whichever is advised wins.
    train, test = digit_folders
    spec = api.run_spec(str(train), str(test), backbone="efficientnet-lite0", image_size=32, strategy="auto",
                        epochs=3, batch_size=8)
    task = load_task(spec.data, spec.train.seed)
    behind = []
    for advised in ("linear-probe", "lp-ft"):
        result, _, _ = race(task, spec, ["linear-probe", "lp-ft"], {"strategy": advised}, show_progress=False)
        assert result.winner == advised, result.reason
        prior = result.rungs[0].get("prior")  # recorded where the advised one scored lower
        if prior:
            behind.append(advised)
            assert prior["leader"] == advised and all(t["p"] >= 0.05 for t in prior["challengers"].values())
            assert "kept the lead" in result.reason and "McNemar p" in result.reason
    assert len(behind) == 1  # one of the two scored lower and still won: the prior decided


def test_candidates_follow_the_advice_as_far_as_the_compute_affords():
    # Beside a plan that trains no backbone weights, two challengers that do; beside freeze:K one; beside a plan
    # that trains them all, only the linear probe on cached features (a third of lp-ft would cost too much).
    assert candidates_for("linear-probe-cv", ["lp-ft", "freeze:4"]) == ["linear-probe-cv", "lp-ft", "freeze:4"]
    assert candidates_for("freeze:4", ["linear-probe-cv", "full"]) == ["freeze:4", "linear-probe-cv", "lp-ft"]
    assert candidates_for("full", ["lp-ft", "linear-probe-cv"]) == ["full", "linear-probe-cv"]
    assert candidates_for("full", ["freeze:4", "linear-probe-cv"]) == ["full", "linear-probe-cv"]
    assert candidates_for("scratch", ["full", "freeze:4"]) == ["scratch", "linear-probe-cv"]
    # The advised baseline trains nothing either: two challengers beside it.
    assert candidates_for("baseline", ["linear-probe-cv", "lp-ft"]) == ["baseline", "linear-probe-cv", "lp-ft"]


def test_auto_advises_the_baseline_where_the_classical_features_lead(digit_folders, tmp_path):
    train, test = digit_folders
    run = tmp_path / "run"
    code, output = run_cli("fit", train, "--test", test, *IMAGE, "--strategy", "auto", "--epochs", "2",
                           "--batch-size", "8", "--out", run)
    assert code == 0, output
    record = json.loads((run / "auto.json").read_text())
    # 8x8 grey digits: the pixels separate the classes far better than ImageNet features by the same probe.
    m = record["advice"]["measurements"]
    assert m["probe_classical"] >= m["probe_pretrained"] + _rule.CLASSICAL_AHEAD
    assert record["advice"]["strategy"] == "baseline"
    assert record["candidates"] == ["baseline", "linear-probe-cv", "lp-ft"]  # raced once, cheap first
    # The advice is the prior: a challenger displaces it only when significantly better on validation.
    assert record["winner"] == "baseline" or "significantly" in record["reason"]
    assert json.loads((run / "metrics.json").read_text())["accuracy"] >= 0.8


def test_dry_run_says_what_auto_would_do_without_training(digit_folders, tmp_path):
    train, test = digit_folders
    code, output = run_cli("fit", train, "--test", test, *IMAGE, "--strategy", "auto", "--budget", "90s",
                           "--dry-run", "--out", tmp_path / "run")
    assert code == 0, output
    assert "strategy auto (budget 90s)" in output and "successive halving" in output
    assert "if similar: linear-probe-cv, lp-ft, freeze:2" in output  # 27 per class: small
    assert "if the classical features separate the classes better (TF-IDF or pixels): baseline, linear-probe-cv, " \
           "lp-ft\n" in output
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
