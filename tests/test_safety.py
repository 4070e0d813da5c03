"""Nothing destroyed, nothing run, nothing corrupt used, nothing lost: the holes a hostile or careless user found,
each through the real CLI (or the reader the CLI calls), each closed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headstart.backbones.hf_text import minilm_folder
from headstart.data import load_examples
from headstart.data.readers import MAX_IMAGE_SIDE, MAX_TEXT_CHARS
from headstart.runs import json_text
from headstart.train import cache

from test_bad_input import image_folder, one_error, run_cli

IMAGE = ["--backbone", "efficientnet-lite0", "--image-size", "16", "--epochs", "1", "--quiet"]


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """One small image run (classes a, b), made once; tests copy it before they damage anything."""
    root = tmp_path_factory.mktemp("safety")
    image_folder(root / "imgs", broken=False)
    code, output = run_cli("fit", root / "imgs", *IMAGE, "--out", root / "run")
    assert code == 0, output
    return root


@pytest.fixture
def here(made, tmp_path, monkeypatch):
    """A fresh folder holding a copy of the image data and of the run."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(made / "imgs", tmp_path / "imgs")
    shutil.copytree(made / "run", tmp_path / "run")
    return tmp_path


# -- 1. output paths never inside an input ---------------------------------------------------------

def test_out_inside_the_data_is_refused_and_the_data_kept(here):
    before = _snapshot(here / "imgs")
    error = one_error(*run_cli("fit", "imgs", *IMAGE, "--out", "imgs/a", "--overwrite"))
    assert "--out imgs/a lies inside the input imgs" in error and "choose a folder outside" in error
    error = one_error(*run_cli("fit", "imgs", *IMAGE, "--out", "imgs/new-run"))
    assert "lies inside the input imgs" in error
    assert _snapshot(here / "imgs") == before and not (here / "imgs" / "new-run").exists()


def test_out_may_not_be_the_backbone_folder_it_reads(here):
    before = _snapshot(here / "run")
    error = one_error(*run_cli("fit", "imgs", "--backbone", "run", "--epochs", "1", "--quiet", "--out", "run",
                               "--overwrite"))
    assert "--out run is or holds the input run" in error
    assert _snapshot(here / "run") == before


@pytest.mark.parametrize("output", ["run/model/model.safetensors", "run/predictions.csv", "imgs/preds.csv"])
def test_predict_output_may_not_overwrite_the_run_or_lie_in_the_input(here, output):
    before = {name: _snapshot(here / name) for name in ("run", "imgs")}
    error = one_error(*run_cli("predict", "run", "imgs", "--output", output))
    assert f"--output {output}" in error and "the input" in error
    assert {name: _snapshot(here / name) for name in ("run", "imgs")} == before


def test_predict_output_may_not_be_the_input_file(here):
    (here / "texts.csv").write_text("text\nhello\n")
    error = one_error(*run_cli("predict", "run", "texts.csv", "--output", "texts.csv"))
    assert "--output texts.csv is or holds the input texts.csv" in error
    assert (here / "texts.csv").read_text() == "text\nhello\n"


# -- 2. no code runs from a model folder -------------------------------------------------------------

@pytest.mark.parametrize("change, expected", [
    ({"model_type": "evil", "auto_map": {"AutoModel": "evil.EvilModel", "AutoConfig": "evil.EvilConfig"}},
     "asks for custom code (auto_map)"),
    ({"model_type": "evil"}, "model_type 'evil' is not an architecture transformers knows"),
])
def test_a_model_folder_with_custom_code_is_refused_without_a_prompt(here, monkeypatch, change, expected):
    folder = here / "evil"
    shutil.copytree(minilm_folder(), folder, ignore=shutil.ignore_patterns("*.safetensors", "1_Pooling"))
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, **change}))
    marker = here / "ran.txt"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('code ran')\n")
    (here / "texts.csv").write_text("text,label\n" + "".join(f"t{i},{'xy'[i % 2]}\n" for i in range(12)))
    monkeypatch.setattr(sys, "stdin", __import__("io").StringIO("y\ny\n"))  # a user who would say yes
    error = one_error(*run_cli("rank", "texts.csv", "--backbones", "evil", "--quiet"))
    assert expected in error and "never runs code from a model folder" in error
    assert not marker.exists()


# -- 3. corrupt files are never used silently ---------------------------------------------------------

def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_bit_flip_in_the_weights_stops_predict(here):
    weights = here / "run" / "model" / "model.safetensors"
    _flip(weights, weights.stat().st_size - 100)  # inside the tensors: safetensors itself cannot tell
    error = one_error(*run_cli("predict", "run", "imgs"))
    assert "model.safetensors is damaged or was changed" in error and "rerun the fit" in error


@pytest.mark.parametrize("edit", ["classes", "image_size"])
def test_an_edited_class_list_or_image_size_stops_predict(here, edit):
    marker = here / "run" / "model" / "headstart-model.json"
    facts = json.loads(marker.read_text())
    if edit == "classes":
        facts["task"]["classes"] = facts["task"]["classes"][::-1]
    else:
        facts["backbone"]["image_size"] = 32
    marker.write_text(json.dumps(facts))
    error = one_error(*run_cli("predict", "run", "imgs"))
    assert "headstart-model.json was edited or is damaged" in error


def test_damaged_cached_features_are_recomputed_not_used(here, monkeypatch):
    monkeypatch.setenv("HEADSTART_CACHE", str(here / "cache"))
    cache.clear_memory_cache()
    code, first = run_cli("fit", "imgs", *IMAGE, "--out", "one")
    assert code == 0, first
    files = list((here / "cache").rglob("*.safetensors"))
    assert files
    for path in files:
        _flip(path, path.stat().st_size - 8)
    cache.clear_memory_cache()
    code, second = run_cli("fit", "imgs", *IMAGE, "--out", "two")
    assert code == 0, second
    assert "cached features" in second and "damaged; computing them again" in second
    assert json.loads((here / "one/metrics.json").read_text())["accuracy"] == \
        json.loads((here / "two/metrics.json").read_text())["accuracy"]


def test_a_run_saved_before_checksums_still_loads_with_a_warning(here):
    marker = here / "run" / "model" / "headstart-model.json"
    facts = json.loads(marker.read_text())
    del facts["checksums"]
    marker.write_text(json.dumps(facts))
    code, output = run_cli("predict", "run", "imgs")
    assert code == 0 and "has no checksums" in output and "a/0.png" in output


# -- 4. one writer per --out ------------------------------------------------------------------------

def test_a_second_writer_of_the_same_out_is_refused_and_a_killed_one_blocks_nothing(here):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; from headstart.runs import claim_out\n"
         "with claim_out(Path('busy'), False):\n    print('holding', flush=True); time.sleep(600)"],
        cwd=here, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        error = one_error(*run_cli("fit", "imgs", *IMAGE, "--out", "busy"))
        assert "--out busy is being written by another headstart process" in error and f"pid {holder.pid}" in error
    finally:
        holder.kill()
        holder.wait()
    code, output = run_cli("fit", "imgs", *IMAGE, "--out", "busy")  # the kill released the lock
    assert code == 0, output
    assert sorted(p.name for p in here.iterdir() if p.name.startswith(".")) == []


# -- 5. a diverged run is not saved; JSON is strict -------------------------------------------------

def test_a_diverging_fit_stops_with_one_line_and_saves_nothing(here):
    error = one_error(*run_cli("fit", "imgs", *IMAGE[:-3], "--epochs", "3", "--quiet", "--lr", "1e30",
                               "--out", "diverged"))
    assert "not a finite number" in error and "try a smaller --lr" in error and "probe phase" in error
    assert not (here / "diverged").exists()
    error = one_error(*run_cli("fit", "imgs", *IMAGE, "--lr", "inf"))
    assert "strategy.lr" in error and "finite number" in error


def test_a_diverging_pretraining_saves_no_backbone(here):
    error = one_error(*run_cli("pretrain", "imgs", "--method", "contrastive", "--backbone", "timm:resnet10t:random",
                               "--image-size", "16", "--epochs", "2", "--batch-size", "4", "--lr", "1e30", "--quiet",
                               "--out", "pre"))
    assert "contrastive epoch" in error and "not a finite number" in error
    assert not (here / "pre").exists()


def test_every_json_a_run_writes_is_strict(made):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    written = [p for p in (made / "run").rglob("*") if p.suffix in (".json", ".jsonl")]
    assert len(written) >= 3
    for path in written:
        for line in path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]:
            json.loads(line, parse_constant=refuse)
    assert json_text({"p": float("nan"), "x": [float("inf"), 1.5]}) == '{"p": null, "x": [null, 1.5]}'


# -- 6. huge inputs cost megabytes -------------------------------------------------------------------

def test_a_huge_image_is_reduced_when_decoded_and_16_bit_keeps_its_shades(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(np.zeros((1500, 3000, 3), dtype=np.uint8)).save(tmp_path / "a" / "wide.png")
    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(ramp).save(tmp_path / "a" / "deep.png")
    examples = load_examples(str(tmp_path), labelled=False)
    shapes = dict(zip(examples.ids, (x.shape for x in examples.inputs)))
    assert shapes["a/wide.png"] == (MAX_IMAGE_SIDE // 2, MAX_IMAGE_SIDE, 3)
    deep = examples.inputs[examples.ids.index("a/deep.png")]
    assert deep.min() == 0 and deep.max() >= 254 and len(np.unique(deep)) > 200  # not squashed to 0 / 255


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_very_long_text_is_cut_the_same_way_in_csv_and_jsonl(tmp_path, suffix):
    long = "word " * (MAX_TEXT_CHARS // 2)
    path = tmp_path / f"long{suffix}"
    if suffix == ".csv":
        path.write_text(f"text,label\n{long},x\nshort,y\n")
    else:
        path.write_text(json.dumps({"text": long, "label": "x"}) + "\n" + json.dumps({"text": "short", "label": "y"}))
    with pytest.warns(UserWarning, match=r"cut 1 text\(s\) longer than 100,000 characters"):
        examples = load_examples(str(path))
    assert [len(t) for t in examples.inputs] == [MAX_TEXT_CHARS, 5]


# -- 7. nothing wrong without a word ------------------------------------------------------------------

@pytest.mark.parametrize("name, content, expected", [
    ("dup.csv", "text,label,label\na,x,y\nb,y,x\n", "dup.csv: the header names the column 'label' more than once"),
    ("dup.jsonl", '{"text": "a", "text": "b", "label": "x"}\n', "the object on line 1 names the column 'text'"),
    ("listy.jsonl", '{"text": "a", "label": ["fresh"]}\n', "listy.jsonl, line 1: 'label' is a JSON list"),
])
def test_ambiguous_tables_are_refused(tmp_path, monkeypatch, name, content, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(content)
    assert expected in one_error(*run_cli("fit", name, "--backbone", "minilm-l6"))


def test_labels_with_spaces_or_other_case_are_named(tmp_path):
    (tmp_path / "labels.csv").write_text("text,label\na,fresh \nb,fresh\nc,Rotten\nd,rotten\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        examples = load_examples(str(tmp_path / "labels.csv"))
    said = " ".join(str(w.message) for w in caught)
    assert examples.labels == ["fresh", "fresh", "Rotten", "rotten"]
    assert "removed the spaces around 1 label(s), e.g. 'fresh '" in said
    assert "'Rotten' / 'rotten' differ only by case" in said


def test_a_class_folder_without_a_decodable_image_is_named(tmp_path):
    image_folder(tmp_path, broken=False)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "broken.png").write_bytes(b"not an image")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = load_examples(str(tmp_path)).labels
    assert sorted(set(labels)) == ["a", "b"]
    assert any("class folder(s) 'c' hold no image that can be decoded" in str(w.message) for w in caught)


# -- 8. options get a line, not a traceback ------------------------------------------------------------

SEEDED = [
    ["fit", "imgs", *IMAGE],
    ["rank", "imgs", "--backbones", "efficientnet-lite0", "--quiet"],
    ["advise", "imgs", "--backbone", "efficientnet-lite0", "--quiet"],
    ["self-train", "imgs", "--unlabeled", "imgs", "--strategy", "linear-probe", *IMAGE],
    ["pretrain", "imgs", "--method", "contrastive", "--backbone", "timm:resnet10t:random", "--quiet"],
]


@pytest.mark.parametrize("seed", ["-1", "99999999999"])
@pytest.mark.parametrize("command", SEEDED, ids=[c[0] for c in SEEDED])
def test_a_seed_out_of_range_gets_one_line(here, command, seed):
    error = one_error(*run_cli(*command, "--seed", seed, "--out", "seeded"))
    assert "seed" in error and seed in error
    assert not (here / "seeded").exists()


@pytest.mark.parametrize("args, expected", [
    (["--epochs", "0"], "strategy.epochs"),
    (["--seeds", "-1"], "--seeds -1: need at least 1"),
    (["--seeds", "0"], "--seeds 0: need at least 1"),
    (["--batch-size", "0"], "train.batch_size"),
    (["--max-length", "0"], "backbone.max_length"),
    (["--image-size", "4"], "backbone.image_size"),
])
def test_compare_checks_its_options_as_fit_does(here, args, expected):
    error = one_error(*run_cli("compare", "imgs", "--backbone", "efficientnet-lite0", *args, "--quiet", "--out", "c"))
    assert "invalid compare options" in error or "--seeds" in error
    assert expected in error and not (here / "c").exists()


def test_advise_checks_its_options_as_fit_does(here):
    error = one_error(*run_cli("advise", "imgs", "--backbone", "efficientnet-lite0", "--max-length", "0"))
    assert "invalid advise options" in error and "backbone.max_length" in error


def test_an_unwritable_out_is_refused_before_any_work(here):
    (here / "afile").write_text("a file, not a folder")
    error = one_error(*run_cli("fit", "imgs", *IMAGE, "--out", "afile/run"))
    assert "cannot write in afile" in error and "--out afile/run" in error


# -- 9. what a kill left behind is cleaned up or restored ------------------------------------------------

def test_a_run_moved_aside_by_a_kill_is_restored_and_a_staging_folder_removed(here):
    before = _snapshot(here / "run")
    os.replace(here / "run", here / ".run.4242.old")  # killed between moving the old run aside and the new in
    (here / ".run.ab12cd34.partial").mkdir()
    (here / ".run.ab12cd34.partial" / "model.safetensors").write_bytes(b"\0" * 1000)
    code, output = run_cli("fit", "imgs", *IMAGE, "--out", "run")
    assert "restored run from .run.4242.old" in output and "removed .run.ab12cd34.partial" in output
    assert "--out run exists and is not empty" in one_error(code, output)  # restored, so not overwritten unasked
    assert _snapshot(here / "run") == before
    assert sorted(p.name for p in here.iterdir() if p.name.startswith(".")) == []


def test_a_temporary_file_left_by_a_killed_predict_is_removed(here):
    (here / ".preds.csv.x1y2z3w4.tmp").write_text("input,label,sc")
    code, output = run_cli("predict", "run", "imgs", "--output", "preds.csv")
    assert code == 0 and "removed .preds.csv.x1y2z3w4.tmp" in output
    assert (here / "preds.csv").read_text().startswith("input,label,score\n")
    assert sorted(p.name for p in here.iterdir() if p.name.startswith(".")) == []


# -- 10. spreadsheet formulas ---------------------------------------------------------------------------

def test_csv_safe_quotes_cells_a_spreadsheet_would_run(here):
    (here / "new").mkdir()
    for name in ("=1+1.png", "ok.png"):
        shutil.copy(here / "imgs" / "a" / "0.png", here / "new" / name)
    assert run_cli("predict", "run", "new", "--output", "plain.csv")[0] == 0
    assert "\n=1+1.png," in (here / "plain.csv").read_text()  # as it is, without the option
    code, output = run_cli("predict", "run", "new", "--output", "safe.csv", "--csv-safe")
    assert code == 0, output
    safe = (here / "safe.csv").read_text()
    assert "\n'=1+1.png," in safe and "\nok.png," in safe
    code, output = run_cli("predict", "run", "new", "--csv-safe")  # printed, too
    assert code == 0 and "'=1+1.png," in output
