"""Reads a local run's folder and tells what happened, step by step."""

from __future__ import annotations

import os
from typing import Any

from components.dataset_spec import metric_label
from components.kfp_io import unwrap_metadata
from components.run_folder import TASK_LOG, TASK_TIMING, read_json, task_folders
from pipelines.ct.spec import step_names


def output_metadata(task_dir: str, name: str) -> dict[str, Any]:
    """Metadata of a task's output artifact, as the task reported it (backend wrapping undone)."""
    output = read_json(os.path.join(task_dir, "executor_output.json")) or {}
    try:
        return unwrap_metadata(output["artifacts"][name]["artifacts"][0].get("metadata", {}))
    except (KeyError, IndexError):
        return {}


def collect(run_dir: str) -> dict[str, Any]:
    """Gathers the facts of a run: steps with timings, data, anomalies, metrics, decisions."""
    steps, tasks = [], {}
    found = task_folders(run_dir)
    order = step_names()
    for name in sorted(found, key=lambda n: order.index(n) if n in order else len(order)):
        timing = read_json(os.path.join(found[name], TASK_TIMING))
        # A cached task's outputs are in the folder of the run that produced them.
        tasks[name] = timing.get("cached_from") or found[name] if timing.get("cached") else found[name]
        steps.append({"step": name, "seconds": timing["seconds"], "ok": timing["exit_code"] == 0,
                      "cached": bool(timing.get("cached")), "runtime": timing.get("runtime"),
                      "log": os.path.join(tasks[name], TASK_LOG)})
    facts: dict[str, Any] = {"run_dir": run_dir, "steps": steps}
    if "extract" in tasks:
        facts["data"] = output_metadata(tasks["extract"], "dataset")
    if "join-features" in tasks:
        facts["features"] = output_metadata(tasks["join-features"], "joined")
    if "materialize" in tasks:
        facts["materialization"] = output_metadata(tasks["materialize"], "features")
    if "validate-data" in tasks:
        anomalies = read_json(os.path.join(tasks["validate-data"], "anomalies")) or {}
        facts["schema_anomalies"] = anomalies.get("schema_anomalies", {})
        facts["drift"] = [row for row in anomalies.get("drift", []) if row["drifted"]]
        facts["reports"] = [os.path.join(tasks["validate-data"], "report"),
                            os.path.join(tasks["validate-data"], "statistics_view")]
    if "train" in tasks:
        facts["train_metrics"] = output_metadata(tasks["train"], "train_metrics")
    if "evaluate" in tasks:
        evaluation = read_json(os.path.join(tasks["evaluate"], "evaluation")) or {}
        facts["candidate"] = {k: v for k, v in evaluation.get("candidate", {}).items() if k != "slices"}
        baseline = evaluation.get("baseline")
        facts["baseline"] = {k: v for k, v in baseline.items() if k != "slices"} if baseline else None
        facts["baseline_version"] = evaluation.get("baseline_version")
        facts["metric"] = evaluation.get("metric", "auc")
    if "validate-model" in tasks:
        facts["blessing"] = read_json(os.path.join(tasks["validate-model"], "blessing"))
    if "infra-validate" in tasks:
        facts["infra"] = read_json(os.path.join(tasks["infra-validate"], "infra_blessing"))
    if "deploy" in tasks:
        facts["deployment"] = read_json(os.path.join(tasks["deploy"], "deployment"))
    failed = [s for s in steps if not s["ok"]]
    if failed:
        facts["failed_step"] = failed[0]["step"]
        facts["failure"] = _failure_message(failed[0]["log"])
    return facts


def _failure_message(log_path: str) -> str:
    if not os.path.exists(log_path):
        return ""
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    marker = text.rfind("FAILED")
    return text[marker:].strip() if marker >= 0 else text[-1500:].strip()


def format_summary(facts: dict[str, Any]) -> str:
    """A short human summary of a run."""
    lines: list[str] = ["", "=" * 78, "CT pipeline run summary", "=" * 78]
    data = facts.get("data") or {}
    if data:
        lines.append("Data (rows per span):")
        for span in data.get("spans", []):
            lines.append(f"  {span}: {int(data['rows_per_span'][span]):>8,}")
        lines.append(f"  data hash {str(data.get('data_hash', ''))[:16]}…")
    features = facts.get("features") or {}
    if features.get("feature_view"):
        missing = sum(int(v) for v in (features.get("rows_without_features") or {}).values())
        lines.append(f"Features: {', '.join(features['features'])} from the feature view {features['feature_view']} "
                     f"(point-in-time join; {missing:,} rows without a reading)")
    materialized = facts.get("materialization") or {}
    if materialized.get("feature_view"):
        what = (f"{int(materialized['rows']):,} readings of {', '.join(materialized['spans'])} "
                f"({materialized['start']} to {materialized['end']})" if materialized.get("spans")
                else "nothing new")
        online = len(materialized.get("online_spans", []))
        lines.append(f"Online store: {what}; {online} span(s) of the feature views online, "
                     f"feature server {materialized.get('feature_server_url')}")
    if "schema_anomalies" in facts:
        anomalies = facts["schema_anomalies"]
        count = sum(len(v) for v in anomalies.values())
        lines.append(f"Schema anomalies: {count}")
        for span, found in anomalies.items():
            for a in found:
                lines.append(f"  span {span}: {a['feature']}: {a['short_description']} [{a['kind']}]")
        drifted = facts.get("drift", [])
        lines.append(f"Drift over threshold (vs previous span): {len(drifted)}")
        for row in drifted[:10]:
            lines.append(f"  {row['span']} {row['feature']}: {row['measure']} {row['value']:.3f} > {row['threshold']}")
    if facts.get("candidate"):
        c = facts["candidate"]
        shown = [name for name in ("auc", "accuracy", "log_loss", "rmse", "mae", "r2") if name in c]
        metric = facts.get("metric") or shown[0]
        lines.append(f"Candidate on test span: {_metrics_line(c, shown)}  ({int(c['rows']):,} rows)")
        tm = facts.get("train_metrics") or {}
        if tm:
            label = metric_label(metric)
            lines.append(f"  train {label} {tm.get(f'train_{metric}', float('nan')):.4f}, "
                         f"eval {label} {tm.get(f'eval_{metric}', float('nan')):.4f}")
        if facts.get("baseline"):
            b = facts["baseline"]
            lines.append(f"Production model {facts.get('baseline_version')} on the same test span: "
                         f"{_metrics_line(b, shown[:2])}")
        else:
            lines.append("Production model: none yet (first model)")
    if facts.get("blessing"):
        blessing = facts["blessing"]
        lines.append(f"Model validation: {'BLESSED' if blessing['blessed'] else 'NOT BLESSED'}")
        lines.extend(f"  {reason}" for reason in blessing["reasons"])
    if facts.get("infra"):
        infra = facts["infra"]
        lines.append(f"Infra validation: {'PASSED' if infra['blessed'] else 'FAILED'}")
        lines.extend(f"  {reason}" for reason in infra["reasons"])
    deployment = facts.get("deployment")
    if deployment and deployment.get("deployed"):
        pointer, serving = deployment["pointer"], deployment["serving"]
        lines.append(f"Deployed: {pointer['version']} -> {pointer['model_dir']}")
        if deployment.get("experiment"):
            lines.append(f"  as the candidate of an online experiment: {deployment['experiment_percent']:g}% of the "
                         f"requests, production stays {pointer.get('previous_version')} until the monitor decides "
                         "(python -m components.monitor experiment)")
        lines.append(f"Serving: {serving['predict_url']}  (V1)")
        lines.append(f"         {serving.get('infer_url', '')}  (V2 / Open Inference Protocol), pid {serving['pid']}")
    elif deployment:
        lines.append(f"Not deployed: {'; '.join(deployment.get('reasons', []))}")
    elif facts.get("blessing") and not facts["blessing"]["blessed"]:
        lines.append("Not deployed: the model was not blessed; serving is unchanged")
    if facts.get("failed_step"):
        lines.append(f"FAILED at step {facts['failed_step']}; nothing after it ran, serving is unchanged:")
        lines.extend(f"  {line}" for line in facts["failure"].splitlines()[:20])
    lines.append("Steps (wall time):")
    for step in facts["steps"]:
        state = "  cached" if step["cached"] else "" if step["ok"] else "  FAILED"
        lines.append(f"  {step['step']:<17} {step['seconds']:>7.2f} s  [{step['runtime']}]{state}")
    lines.append(f"Run folder: {facts['run_dir']}")
    if facts.get("reports"):
        lines.append(f"Data reports: {facts['reports'][0]}  (HTML)")
    lines.append("=" * 78)
    return "\n".join(lines)


def _metrics_line(metrics: dict, names: list[str]) -> str:
    return "  ".join(f"{metric_label(name)} {metrics[name]:.4f}" for name in names if name in metrics)
