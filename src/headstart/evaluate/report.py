"""The compare report: one self-contained HTML page (plots embedded as data URIs) and the PNGs beside it."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..runs import atomic_write_text  # noqa: E402
from .plots import _save, plot_confusion_matrix  # noqa: E402

__all__ = ["write_report", "benefits_in_words", "shots_in_words"]


def _plot_learning_curves(summary: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for name, entry in summary["strategies"].items():
        if entry["learning_curve"]:
            ax.plot(range(len(entry["learning_curve"])), entry["learning_curve"], marker=".", label=name)
    ax.set_xlabel("epoch (0 = before training)")
    _finish(fig, ax, f"validation {summary['score']['name']} (mean over folds)", "learning curves", path)


def _finish(fig, ax, ylabel: str, title: str, path: Path) -> None:
    ax.set_ylabel(ylabel)
    ax.set_ylim(min(0, ax.get_ylim()[0]), 1.02)  # R^2 may fall below 0; accuracy and F1 may not
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    _save(fig, path)


def _plot_data_efficiency(summary: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    shots = [k for k in summary["config"]["shots"] if k != "all"]
    largest = max(shots) * 2 if shots else 1
    positions = shots + [largest]
    key = summary["score"]["key"]
    for name, entry in summary["strategies"].items():
        means = [entry["shots"][str(k)][f"{key}_mean"] for k in shots] + [entry[f"{key}_mean"]]
        stds = [entry["shots"][str(k)][f"{key}_std"] for k in shots] + [entry[f"{key}_std"]]
        ax.errorbar(positions, means, yerr=stds, marker="o", capsize=3, label=name)
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(positions, [str(k) for k in shots] + ["all"])
    ax.set_xlabel("labelled examples per class")
    _finish(fig, ax, f"held-out {summary['score']['name']}", "data efficiency", path)


def _points(x: float) -> str:
    return f"{abs(100 * x):.1f} points {'higher' if x >= 0 else 'lower'}"


def benefits_in_words(name: str, gains: dict, score: str = "accuracy") -> str:
    """'lp-ft started 31.0 points higher, ...' with the noise verdict of each benefit (`score` names the score)."""
    start, slope, end = gains["start"], gains["slope"], gains["asymptote"]
    noise = lambda b: "" if b["significant"] else " (within noise)"
    reach, scratch_reach = slope["epochs_to_90pct_of_scratch"], slope["scratch_epochs_to_90pct"]
    epochs = lambda n: f"{n:.3g} epoch" + ("" if n == 1 else "s")
    if reach is not None and scratch_reach is not None:
        pace = f"reached 90% of scratch's final {score} in {epochs(reach)} instead of {epochs(scratch_reach)}"
    elif reach is not None:
        pace = f"reached 90% of scratch's final {score} in {epochs(reach)}"
    else:
        pace = f"never reached 90% of scratch's final {score}"
    return (f"{name} started {_points(start['delta_vs_scratch'])}{noise(start)} than scratch, {pace} "
            f"(area under its learning curve {_points(slope['delta_vs_scratch'])}{noise(slope)}), and ended "
            f"{_points(end['delta_vs_scratch'])}{noise(end)}.")


def shots_in_words(summary: dict) -> list[str]:
    """Per labels-per-class count: which strategies beat scratch beyond the noise, and which only seem to."""
    lines = []
    for k in summary["config"]["shots"]:
        clear, unclear = [], []
        for name, entry in summary["strategies"].items():
            shot = entry["shots"][str(k)]
            if name == "scratch" or shot["delta_vs_scratch"] <= 0:
                continue
            item = f"{name} (+{100 * shot['delta_vs_scratch']:.1f})"
            (clear if shot["significant"] else unclear).append(item)
        label = "all labels" if k == "all" else f"{k} labels per class"
        text = f"With {label}: " + (f"beyond the noise, {', '.join(clear)} beat scratch" if clear else
                                    "nothing beats scratch beyond the noise")
        lines.append(text + (f"; {', '.join(unclear)} ahead but within the noise." if unclear else "."))
    return lines


def _kind_in_words(summary: dict) -> str:
    task = summary["task"]
    if task.get("classes"):
        return f"{len(task['classes'])} classes"
    if task.get("labels"):
        return f"{len(task['labels'])} tags, any number per example"
    return f"{task.get('kind', 'regression')} targets"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'


def _table(summary: dict) -> str:
    shots = [str(k) for k in summary["config"]["shots"] if k != "all"]
    score = summary["score"]
    key, second = score["key"], score["second"]
    external = any(f"test_{key}_mean" in e for e in summary["strategies"].values())
    head = ["strategy", score["name"], score["second_name"]] + ([f"--test {score['name']}"] if external else []) + \
           [f"{k}/class" for k in shots] + ["labels/class to match scratch", "seconds per fold"]
    rows = []
    for name, e in sorted(summary["strategies"].items(), key=lambda kv: -kv[1][f"{key}_mean"]):
        cells = [name, f"{e[f'{key}_mean']:.3f} &plusmn; {e[f'{key}_std']:.3f}",
                 f"{e[f'{second}_mean']:.3f} &plusmn; {e[f'{second}_std']:.3f}"]
        if external:
            cells.append(f"{e.get(f'test_{key}_mean', float('nan')):.3f}")
        cells += [f"{e['shots'][k][f'{key}_mean']:.3f}" for k in shots]
        cells += [str(e["labels_per_class_to_match_scratch"] or "&ndash;"), f"{e['seconds']:.1f}"]
        mark = ' class="best"' if name == summary["best"] else ""
        rows.append(f"<tr{mark}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ("<table id='results'><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>" +
            "".join(rows) + "</tbody></table>")


_STYLE = """body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}tr.best{background:#e8f4e8;font-weight:600}
figure{display:inline-block;margin:0.5em}img{max-width:460px}pre{background:#f4f4f4;padding:1em;overflow-x:auto}"""

# Marks the page as rendered once every plot has decoded: what the report test reads in Chromium.
_SELF_CHECK = """<script>window.addEventListener('load',function(){var i=[].slice.call(document.images);
document.body.setAttribute('data-images-rendered',i.filter(function(x){return x.complete&&x.naturalWidth>0}).length);
document.body.setAttribute('data-table-rows',document.querySelectorAll('#results tbody tr').length);});</script>"""


def write_report(summary: dict, folder: Path) -> Path:
    """report.html and its PNGs in folder; the page needs no network and no other file."""
    best = summary["best"]
    _plot_learning_curves(summary, folder / "learning_curves.png")
    _plot_data_efficiency(summary, folder / "data_efficiency.png")
    matrix = summary["strategies"][best].get("confusion_matrix")
    if matrix is not None:
        plot_confusion_matrix({"labels": summary["classes"], "confusion_matrix": matrix},
                              folder / "confusion_matrix.png", f"{best}, all folds")
    name = summary["score"]["name"]
    words = "".join(f"<li>{html.escape(benefits_in_words(n, g, name))}</li>" for n, g in summary["benefits"].items())
    shots = "".join(f"<li>{html.escape(line)}</li>" for line in shots_in_words(summary))
    config = json.dumps(summary["config"], indent=2)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>headstart compare</title>
<style>{_STYLE}</style></head><body>
<h1>Did the transfer help?</h1>
<p>{html.escape(summary['task']['splits'])} on {summary['task']['n']} examples
({summary['task']['modality']}, {html.escape(_kind_in_words(summary))}), backbone
<b>{html.escape(summary['config']['backbone'])}</b>. {html.escape(name)} is on each split's held-out part, mean &plusmn;
standard deviation over splits; validation: {html.escape(summary['task']['validation'])}.</p>
<h2>Recommendation</h2><p id="recommendation">{html.escape(summary['recommendation'])}</p>
<h2>Results</h2>{_table(summary)}
<h2>Data efficiency, against scratch (points of {html.escape(name)})</h2><ul id="shots">{shots}</ul>
<h2>The three benefits of transfer, against scratch</h2><ul id="benefits">{words}</ul>
<p>Start: validation {html.escape(name)} after the first epoch. Slope: area under the validation learning curve over
scratch's epochs, and epochs to 90% of scratch's final {html.escape(name)}. Asymptote: final held-out {html.escape(name)}.
Noise: {html.escape(summary['noise_test'])}.</p>
<h2>Plots</h2>
{_image(folder / 'learning_curves.png', 'learning curves')}
{_image(folder / 'data_efficiency.png', 'data efficiency')}
{_image(folder / 'confusion_matrix.png', f'confusion matrix of {best}') if matrix is not None else ''}
<h2>Reproduce</h2><pre>{html.escape(summary.get('command') or '')}</pre><pre>{html.escape(config)}</pre>
{_SELF_CHECK}</body></html>"""
    atomic_write_text(folder / "report.html", page)
    return folder / "report.html"
