"""compare on tiny real data: same splits for everyone, the baseline, shots, summary keys, the report."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

import headstart
from headstart import cli


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    from PIL import Image

    from headstart.data import load_examples

    digits = load_examples("builtin:digits")
    external = tmp_path_factory.mktemp("external")
    for i, (image, label) in enumerate(zip(digits.inputs[-30:], digits.labels[-30:])):
        (external / label).mkdir(exist_ok=True)
        Image.fromarray(image).save(external / label / f"{i}.png")
    out = tmp_path_factory.mktemp("compare") / "digits"
    headstart.compare("builtin:digits", str(external), backbone="efficientnet-lite0", image_size=32, train_size=200,
                      strategies=["linear-probe", "lp-ft"], seeds=2, shots="3,all", epochs=2, shot_steps=4, out=out,
                      show_progress=False, command="headstart compare builtin:digits ...")
    return json.loads((out / "summary.json").read_text()), out


def test_every_strategy_runs_on_the_same_splits_against_scratch_and_the_baseline(summary):
    data, _ = summary
    assert set(data["strategies"]) == {"scratch", "linear-probe", "lp-ft", "baseline"}
    for name, entry in data["strategies"].items():
        assert len(entry["accuracy_per_fold"]) == 2
        assert 0 <= entry["accuracy_std"] <= 0.5 and 0 <= entry["macro_f1_mean"] <= 1
        assert set(entry["shots"]) == {"3", "all"}
        assert {"accuracy_mean", "accuracy_std", "delta_vs_scratch", "significant"} <= set(entry["shots"]["3"])
        assert entry["shots"]["all"]["accuracy_mean"] == pytest.approx(entry["accuracy_mean"])
        assert (entry["learning_curve"] is None) == (name == "baseline")
        assert 0 <= entry["test_accuracy_mean"] <= 1  # every strategy is also tested on --test
    assert data["strategies"]["linear-probe"]["accuracy_mean"] > data["strategies"]["scratch"]["accuracy_mean"] + 0.3
    assert data["best"] in data["strategies"] and data["recommendation"].startswith(f"Use {data['best']}")
    assert data["config"]["shot_steps"] == 4  # few-shot phases train at least this many steps


def test_benefits_are_reported_for_each_pretrained_strategy(summary):
    data, _ = summary
    assert set(data["benefits"]) == {"linear-probe", "lp-ft"}
    for gains in data["benefits"].values():
        for benefit in ("start", "slope", "asymptote"):
            assert set(gains[benefit]) >= {"value", "scratch", "delta_vs_scratch", "significant"}
    asymptote = data["benefits"]["linear-probe"]["asymptote"]
    assert asymptote["delta_vs_scratch"] == pytest.approx(
        data["strategies"]["linear-probe"]["accuracy_mean"] - data["strategies"]["scratch"]["accuracy_mean"])


def test_the_report_is_one_self_contained_page_with_its_plots(summary):
    data, out = summary
    page = (out / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no external requests
    assert page.count("data:image/png;base64,") == 3
    assert "<table id='results'>" in page and data["recommendation"][:40] in page
    assert "With 3 labels per class:" in page and "linear-probe started" in page
    for name in ("learning_curves.png", "data_efficiency.png", "confusion_matrix.png", "config.yaml"):
        assert (out / name).is_file()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_report_renders_its_table_and_plots_in_headless_chromium(summary, tmp_path):
    _, out = summary
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path}",
         "--virtual-time-budget=5000", "--dump-dom", (out / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120).stdout
    assert 'data-images-rendered="3"' in dom
    rows = re.search(r'data-table-rows="(\d+)"', dom)
    assert rows and int(rows.group(1)) == 4


def test_compare_from_the_command_line_with_folds(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["headstart", "compare", "builtin:digits", "--backbone", "efficientnet-lite0",
                                      "--image-size", "32", "--train-size", "120", "--folds", "2", "--strategies",
                                      "linear-probe", "--epochs", "2", "--shot-steps", "0", "--quiet",
                                      "--out", str(tmp_path / "c")])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert "report:" in printed and "linear-probe" in printed
    data = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert data["task"]["splits"] == "2-fold stratified cross-validation"
    assert data["command"].startswith("headstart compare builtin:digits")
