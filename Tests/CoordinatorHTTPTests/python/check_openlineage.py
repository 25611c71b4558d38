"""Checks `bis lineage export RUN --openlineage` output: OpenLineage RunEvents.

Usage: check_openlineage.py EVENTS.jsonl
One event a line. openlineage-python (the venv's) does not ship the spec's
JSON schema (OpenLineage.json), and jsonschema is not among the packages
ops/setup installs, so this checks what the 2-0-2 schema requires by hand:

- RunEvent: eventTime (date-time), producer (uri), schemaURL (uri), run
  {runId: uuid}, job {namespace, name}; eventType one of START, RUNNING,
  COMPLETE, ABORT, FAIL, OTHER; inputs/outputs: datasets with namespace and
  name; every run facet with _producer and _schemaURL (uri);
- ParentRunFacet (1-0-1): run {runId: uuid}, job {namespace, name};
- ErrorMessageRunFacet: message, programmingLanguage;

and then builds each event with openlineage-python's generated classes
(`openlineage.client.generated`), whose validators check the uuid, the
date-time and the event type again. Finally the spec's rule that a run has
one START and one COMPLETE, ABORT or FAIL. Prints a JSON summary on success.
"""
import json
import sys
import uuid
from datetime import datetime
from urllib.parse import urlparse

from openlineage.client.generated import base, error_message_run, parent_run

problems = []


def need(obj, key, where, kind=str):
    if not isinstance(obj, dict) or key not in obj:
        problems.append(f"{where}: '{key}' is required")
        return None
    value = obj[key]
    if not isinstance(value, kind):
        problems.append(f"{where}: '{key}' should be a {kind.__name__}, not {type(value).__name__}")
        return None
    return value


def is_uuid(value, where):
    try:
        uuid.UUID(value)
    except (TypeError, ValueError):
        problems.append(f"{where}: '{value}' is not a uuid")


def is_uri(value, where):
    parts = urlparse(value or "")
    if not parts.scheme or not (parts.netloc or parts.path):
        problems.append(f"{where}: '{value}' is not a uri")


def is_datetime(value, where):
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        if "T" not in value:
            raise ValueError
    except (AttributeError, ValueError):
        problems.append(f"{where}: '{value}' is not a date-time")


def check_facet(facet, where):
    is_uri(need(facet, "_producer", where), where + "._producer")
    is_uri(need(facet, "_schemaURL", where), where + "._schemaURL")


events = []
for number, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    if not line.strip():
        continue
    where = f"line {number}"
    try:
        e = json.loads(line)
    except ValueError as err:
        problems.append(f"{where}: not JSON: {err}")
        continue
    events.append(e)
    is_datetime(need(e, "eventTime", where), where + ".eventTime")
    is_uri(need(e, "producer", where), where + ".producer")
    is_uri(need(e, "schemaURL", where), where + ".schemaURL")
    if not str(e.get("schemaURL", "")).endswith("#/$defs/RunEvent"):
        problems.append(f"{where}: schemaURL should point at #/$defs/RunEvent")
    if e.get("eventType") not in ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"):
        problems.append(f"{where}: eventType '{e.get('eventType')}' is not one of the spec's")
    run = need(e, "run", where, dict) or {}
    is_uuid(need(run, "runId", where + ".run"), where + ".run.runId")
    job = need(e, "job", where, dict) or {}
    need(job, "namespace", where + ".job")
    need(job, "name", where + ".job")
    for side in ("inputs", "outputs"):
        for i, d in enumerate(e.get(side) or []):
            need(d, "namespace", f"{where}.{side}[{i}]")
            need(d, "name", f"{where}.{side}[{i}]")
    facets = run.get("facets") or {}
    for name, facet in facets.items():
        check_facet(facet, f"{where}.run.facets.{name}")
    if "parent" in facets:
        p = facets["parent"]
        is_uuid(need(need(p, "run", where + ".parent", dict) or {}, "runId", where + ".parent.run"), where + ".parent.run.runId")
        pj = need(p, "job", where + ".parent", dict) or {}
        need(pj, "namespace", where + ".parent.job")
        need(pj, "name", where + ".parent.job")
    if "errorMessage" in facets:
        need(facets["errorMessage"], "message", where + ".errorMessage")
        need(facets["errorMessage"], "programmingLanguage", where + ".errorMessage")

    # The same event through openlineage-python's classes and their validators.
    try:
        run_facets = {}
        if "parent" in facets:
            p = facets["parent"]
            run_facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=p["run"]["runId"]),
                job=parent_run.Job(namespace=p["job"]["namespace"], name=p["job"]["name"]))
        if "errorMessage" in facets:
            m = facets["errorMessage"]
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=m["message"], programmingLanguage=m["programmingLanguage"])
        base.RunEvent(
            eventTime=e["eventTime"], producer=e["producer"], eventType=base.EventType(e["eventType"]),
            run=base.Run(runId=run["runId"], facets=run_facets), job=base.Job(namespace=job["namespace"], name=job["name"]),
            inputs=[base.InputDataset(namespace=d["namespace"], name=d["name"]) for d in e.get("inputs") or []],
            outputs=[base.OutputDataset(namespace=d["namespace"], name=d["name"]) for d in e.get("outputs") or []])
    except Exception as err:  # attrs validators raise ValueError, TypeError, KeyError
        problems.append(f"{where}: openlineage-python refuses it: {type(err).__name__}: {err}")

starts, ends = {}, {}
for e in events:
    rid = (e.get("run") or {}).get("runId")
    if e.get("eventType") == "START":
        starts[rid] = starts.get(rid, 0) + 1
    elif e.get("eventType") in ("COMPLETE", "ABORT", "FAIL"):
        ends[rid] = ends.get(rid, 0) + 1
for rid in set(starts) | set(ends):
    if starts.get(rid, 0) != 1 or ends.get(rid, 0) > 1:
        problems.append(f"run {rid}: {starts.get(rid, 0)} START and {ends.get(rid, 0)} end events; the spec wants one of each")

if not events:
    problems.append("no events at all")
if problems:
    sys.exit("\n".join(problems[:50]))
print(json.dumps({
    "events": len(events),
    "runs": len(starts),
    "types": sorted({e["eventType"] for e in events}),
    "jobs": sorted({e["job"]["name"] for e in events}),
    "inputs": sum(len(e.get("inputs") or []) for e in events),
    "outputs": sum(len(e.get("outputs") or []) for e in events),
}))
