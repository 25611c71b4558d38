"""Parses the coordinator's /metrics text with prometheus_client's own parser.

Usage: check_metrics.py METRICS.txt ID [ID ...]
Exits 1 naming the problem when the text does not parse, a family the
dashboards or the alert rules rely on is missing or has the wrong type, a histogram lacks its
+Inf bucket, sum or count, or any label names a run, task or execution
(label names `run`, `task`, `execution`, or a label value equal to, or
containing, one of the IDs given). Prints {family: type} as JSON on success.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1], encoding="utf-8").read()
ids = sys.argv[2:]
try:
    families = {f.name: f for f in text_string_to_metric_families(text)}
except Exception as e:  # the parser raises ValueError and friends
    sys.exit(f"prometheus_client cannot parse /metrics: {e}")

expected = {
    "bis_runs": "gauge",
    "bis_tasks": "gauge",
    "bis_executions": "gauge",
    "bis_queue_depth": "gauge",
    "bis_workers_live": "gauge",
    "bis_handoff_latency_seconds": "histogram",
    "bis_task_duration_seconds": "histogram",
    # Per pipeline and per worker (prometheus_client names counter families without _total).
    "bis_pipeline_last_success_timestamp_seconds": "gauge",
    "bis_pipeline_run_duration_seconds": "histogram",
    "bis_pipeline_runs": "counter",
    "bis_pipeline_rows_in": "counter",
    "bis_pipeline_rows_out": "counter",
    "bis_pipeline_rows_quarantined": "counter",
    "bis_pipeline_deadline_misses": "counter",
    "bis_pipeline_alerts_sent": "counter",
    "bis_pipeline_alerts_failed": "counter",
    "bis_worker_cpu_seconds": "counter",
    "bis_worker_resident_memory_bytes": "gauge",
    "bis_worker_running_tasks": "gauge",
    # Hummingbird's request metrics, through swift-metrics.
    "http_server_active_requests": "gauge",
}
problems = []
for name, kind in expected.items():
    f = families.get(name)
    if f is None:
        problems.append(f"family {name} is missing (have: {sorted(families)})")
    elif f.type != kind:
        problems.append(f"family {name} is a {f.type}, not a {kind}")

for name in ("bis_handoff_latency_seconds", "bis_task_duration_seconds", "bis_pipeline_run_duration_seconds"):
    f = families.get(name)
    if f is None:
        continue
    names = {s.name for s in f.samples}
    for part in ("_bucket", "_sum", "_count"):
        if name + part not in names:
            problems.append(f"histogram {name} has no {name}{part} sample")
    if not any(s.name == name + "_bucket" and s.labels.get("le") == "+Inf" for s in f.samples):
        problems.append(f"histogram {name} has no le=\"+Inf\" bucket")

for f in families.values():
    for s in f.samples:
        for label, value in s.labels.items():
            if label in ("run", "run_id", "task", "task_id", "execution"):
                problems.append(f"{s.name} has a label '{label}': runs and tasks are unbounded")
            for i in ids:
                if i and i in value:
                    problems.append(f"{s.name}{{{label}=\"{value}\"}} carries the id {i}")

if problems:
    sys.exit("\n".join(problems))
print(json.dumps({name: f.type for name, f in sorted(families.items())}))
