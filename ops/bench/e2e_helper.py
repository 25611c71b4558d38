"""Helpers of ops/bench/e2e (run with .venv/bin/python): the corrections file,
the DuckDB side, the cross-check, the per-stage breakdown and the report.

    e2e_helper.py corrections SRC.csv OUT.csv
    e2e_helper.py duckdb --threads 2 --out DIR FILE...        -> one JSON line
    e2e_helper.py compare --run-json RUN.json --data-root ROOT --duck DIR  -> one JSON line
    e2e_helper.py breakdown --db bis.db --run RUN             -> one JSON line
    e2e_helper.py report RESULTS.jsonl                         -> the table

The work both sides do is TPC-H Q1 wrapped in the lineitem-daily pipeline:
read the CSVs with declared types (decimal(15,2), dates); derive disc_price
and charge; keep l_shipdate <= 1998-09-02; dedupe on (l_orderkey,
l_linenumber) keeping the latest l_commitdate; check row rules (failing rows
quarantined, gate on the failure rate); write the good rows sorted by
(l_orderkey, l_linenumber) as zstd Parquet, the quarantined rows, and the
summary lineitem_by_status (Q1's aggregates) as Parquet.
"""
import argparse
import json
import math
import os
import resource
import sqlite3
import sys
import time
from decimal import Decimal

import duckdb

COLUMNS = {
    "l_orderkey": "BIGINT", "l_partkey": "BIGINT", "l_suppkey": "BIGINT", "l_linenumber": "BIGINT",
    "l_quantity": "DECIMAL(15,2)", "l_extendedprice": "DECIMAL(15,2)", "l_discount": "DECIMAL(15,2)",
    "l_tax": "DECIMAL(15,2)", "l_returnflag": "VARCHAR", "l_linestatus": "VARCHAR", "l_shipdate": "DATE",
    "l_commitdate": "DATE", "l_receiptdate": "DATE", "l_shipinstruct": "VARCHAR", "l_shipmode": "VARCHAR",
    "l_comment": "VARCHAR",
}
# Must match the spec ops/bench/e2e writes, rule for rule.
RULES = [
    ("not_null l_orderkey", "l_orderkey IS NULL"),
    ("not_null l_partkey", "l_partkey IS NULL"),
    ("not_null l_suppkey", "l_suppkey IS NULL"),
    ("range l_discount", "NOT (l_discount BETWEEN 0 AND 0.10)"),
    ("range l_quantity", "NOT (l_quantity BETWEEN 1 AND 50)"),
    ("allowed l_returnflag", "l_returnflag NOT IN ('A', 'N', 'R')"),
    ("allowed l_linestatus", "l_linestatus NOT IN ('O', 'F')"),
]
MAX_FAILURE_RATE = 0.01
GROUP = ["l_returnflag", "l_linestatus"]
AGGREGATES = [  # name, DuckDB expression; ours in the spec
    ("sum_qty", "sum(l_quantity)"), ("sum_base_price", "sum(l_extendedprice)"),
    ("sum_disc_price", "sum(disc_price)"), ("sum_charge", "sum(charge)"),
    ("avg_qty", "avg(l_quantity)"), ("avg_price", "avg(l_extendedprice)"),
    ("avg_disc", "avg(l_discount)"), ("count_order", "count(*)"),
]


def csv_source(files):
    cols = ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items())
    names = ", ".join(f"'{f}'" for f in files)
    # allow_quoted_nulls=false: ours reads only unquoted texts as null.
    return f"read_csv([{names}], header = true, columns = {{{cols}}}, allow_quoted_nulls = false)"


def corrections(src, out):
    """A late file of corrections, as a nightly drop has: every line of each
    997th order sent again with a later commit date and another quantity (so
    dedupe keep-latest changes the summary), some of them now breaking a rule
    (line 1: discount 0.11 > 0.10; line 2: return flag X), so rows are
    quarantined. Deterministic."""
    con = duckdb.connect()
    cols = ", ".join(COLUMNS)
    con.execute(f"""COPY (SELECT * REPLACE (
                            l_commitdate + 1 AS l_commitdate,
                            CAST(51 - l_quantity AS DECIMAL(15,2)) AS l_quantity,
                            CASE WHEN l_linenumber = 1 THEN 0.11 ELSE l_discount END::DECIMAL(15,2) AS l_discount,
                            CASE WHEN l_linenumber = 2 THEN 'X' ELSE l_returnflag END AS l_returnflag)
                          FROM {csv_source([src])} WHERE l_orderkey % 997 = 0 ORDER BY l_orderkey, l_linenumber)
                    TO '{out}.tmp' (FORMAT csv, HEADER true, DATEFORMAT '%Y-%m-%d')""")
    os.replace(f"{out}.tmp", out)
    n = con.execute(f"SELECT count(*) FROM read_csv('{out}')").fetchone()[0]
    print(json.dumps({"corrections": n}))


def run_duckdb(files, out, threads):
    os.makedirs(out, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = false")
    rules = ", ".join(f"CASE WHEN {cond} THEN '{name}' END" for name, cond in RULES)
    row = "to_json(struct_pack(" + ", ".join(f"{c} := {c}" for c in list(COLUMNS) + ["disc_price", "charge"]) + "))"
    aggs = ", ".join(f"{expr} AS {name}" for name, expr in AGGREGATES)
    t0, c0 = time.perf_counter(), time.process_time()
    con.execute(f"""CREATE TEMP TABLE checked AS
        WITH src AS (SELECT * FROM {csv_source(files)}),
        norm AS (SELECT *, l_extendedprice * (1 - l_discount) AS disc_price,
                           l_extendedprice * (1 - l_discount) * (1 + l_tax) AS charge
                 FROM src WHERE l_shipdate <= DATE '1998-09-02'),
        dedup AS (SELECT * FROM norm
                  QUALIFY row_number() OVER (PARTITION BY l_orderkey, l_linenumber ORDER BY l_commitdate DESC) = 1)
        SELECT *, concat_ws('; ', {rules}) AS failed FROM dedup""")
    phases = {"read+derive+filter+dedupe+rules": time.perf_counter() - t0}
    total, bad = con.execute("SELECT count(*), count(*) FILTER (failed <> '') FROM checked").fetchone()
    if bad > MAX_FAILURE_RATE * total:
        sys.exit(f"duckdb: quality gate failed: {bad} of {total} rows")
    con.execute(f"""COPY (SELECT * EXCLUDE (failed) FROM checked WHERE failed = '' ORDER BY l_orderkey, l_linenumber)
                    TO '{out}/good.parquet' (FORMAT parquet, COMPRESSION zstd)""")
    phases["sort+write good"] = time.perf_counter() - t0 - sum(phases.values())
    con.execute(f"""COPY (SELECT failed AS rule, {row} AS row FROM checked WHERE failed <> '')
                    TO '{out}/quarantine.parquet' (FORMAT parquet, COMPRESSION zstd)""")
    con.execute(f"""COPY (SELECT {', '.join(GROUP)}, {aggs} FROM checked WHERE failed = ''
                          GROUP BY ALL ORDER BY ALL)
                    TO '{out}/lineitem_by_status.parquet' (FORMAT parquet, COMPRESSION zstd)""")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    phases["quarantine+summary"] = wall - sum(phases.values())
    print(json.dumps({"side": "duckdb", "seconds": wall, "cpu_seconds": cpu, "rows_validated": total,
                      "rows_good": total - bad, "rows_quarantined": bad,
                      "bytes": os.path.getsize(f"{out}/good.parquet"),
                      "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "phases": phases}))


def values_equal(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9)
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return a is not None and b is not None and Decimal(a) == Decimal(b)
    return a == b


def compare(run_json, data_root, duck, label):
    """Same rows (a full EXCEPT ALL both ways over every column), same
    quarantine count, and the same summary values (decimals exactly, averages
    to 1e-9)."""
    run = json.load(open(run_json))
    ds = os.path.join(data_root, run["published"]["lineitem"])
    sm = os.path.join(data_root, run["published"]["lineitem_by_status"])
    con = duckdb.connect()
    ours = f"read_parquet('{ds}/*.parquet')"
    theirs = f"read_parquet('{duck}/good.parquet')"
    rows_ours = con.execute(f"SELECT count(*) FROM {ours}").fetchone()[0]
    rows_duck = con.execute(f"SELECT count(*) FROM {theirs}").fetchone()[0]
    cols = ", ".join(list(COLUMNS) + ["disc_price", "charge"])
    only_ours = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {ours} EXCEPT ALL SELECT {cols} FROM {theirs})").fetchone()[0]
    only_duck = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM {theirs} EXCEPT ALL SELECT {cols} FROM {ours})").fetchone()[0]
    names = GROUP + [n for n, _ in AGGREGATES]
    sel = ", ".join(names)
    s_ours = con.execute(f"SELECT {sel} FROM read_parquet('{sm}/*.parquet') ORDER BY ALL").fetchall()
    s_duck = con.execute(f"SELECT {sel} FROM read_parquet('{duck}/lineitem_by_status.parquet') ORDER BY ALL").fetchall()
    diffs = []
    if len(s_ours) != len(s_duck):
        diffs.append(f"summary groups: ours {len(s_ours)}, duckdb {len(s_duck)}")
    for a, b in zip(s_ours, s_duck):
        for n, x, y in zip(names, a, b):
            if not values_equal(x, y):
                diffs.append(f"{a[0]},{a[1]} {n}: ours {x}, duckdb {y}")
    q_ours = sum(s["rowsQuarantined"] for s in run["stages"] if s["stage"] == "validate")
    q_duck = con.execute(f"SELECT count(*) FROM read_parquet('{duck}/quarantine.parquet')").fetchone()[0]
    same = rows_ours == rows_duck and only_ours == 0 and only_duck == 0 and not diffs and q_ours == q_duck
    print(json.dumps({"side": "compare", "label": label, "same": same, "rows_ours": rows_ours, "rows_duck": rows_duck,
                      "only_ours": only_ours, "only_duck": only_duck, "summary_diffs": diffs[:10],
                      "groups": len(s_ours), "quarantined_ours": q_ours, "quarantined_duck": q_duck,
                      "bytes_ours": sum(os.path.getsize(os.path.join(ds, f)) for f in os.listdir(ds) if f.endswith(".parquet"))}))


STAGES = ["ingest", "normalize", "consolidate", "validate", "publish", "report", "deliver"]


def breakdown(db, run_id):
    """Per stage, from the lineage store: tasks, the stage's span (first
    execution start to last finish, relative to submit), the busy task-seconds
    (sum of the winners' execution times), the longest task, and the wait from
    planned to started (queueing/dispatch). Times are the coordinator's and
    workers' clocks (one host here)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    submitted, finished = con.execute("SELECT submitted_at, finished_at FROM runs WHERE id = ?", (run_id,)).fetchone()
    out = []
    for stage in STAGES:
        rows = con.execute("""SELECT t.planned_at, e.started_at, e.finished_at, e.rows_in, e.rows_out, e.rows_quarantined
                              FROM tasks t JOIN executions e ON e.id = t.winner
                              WHERE t.run = ? AND t.stage = ?""", (run_id, stage)).fetchall()
        if not rows:
            continue
        starts = [r[1] for r in rows if r[1] is not None]
        ends = [r[2] for r in rows if r[2] is not None]
        durs = [r[2] - r[1] for r in rows if r[1] is not None and r[2] is not None]
        waits = [r[1] - r[0] for r in rows if r[1] is not None]
        out.append({"stage": stage, "tasks": len(rows),
                    "start": (min(starts) - submitted) if starts else None,
                    "end": (max(ends) - submitted) if ends else None,
                    "busy": sum(durs), "longest": max(durs) if durs else None,
                    "max_wait": max(waits) if waits else None,
                    "rows_in": sum(r[3] for r in rows), "rows_out": sum(r[4] for r in rows),
                    "quarantined": sum(r[5] for r in rows)})
    print(json.dumps({"side": "breakdown", "run": run_id, "seconds": (finished or time.time()) - submitted,
                      "stages": out}))


def report(path, scale, workers, concurrency, partitions):
    res = [json.loads(l) for l in open(path) if l.strip()]
    fleet = [r for r in res if r["side"] == "fleet"]
    local = [r for r in res if r["side"] == "local"]
    duck = [r for r in res if r["side"] == "duckdb"]
    comps = [r for r in res if r["side"] == "compare"]
    bds = {r["run"]: r for r in res if r["side"] == "breakdown"}
    loads = [r for r in res if r["side"] == "load"]
    best = lambda rs: min(rs, key=lambda r: r["seconds"]) if rs else None
    f, l, d = best(fleet), best(local), best(duck)
    print(f"TPC-H lineitem SF{scale} CSV -> lineitem-daily (Q1 as a pipeline); {workers} bis-worker x "
          f"--concurrency {concurrency}, {partitions} partitions; DuckDB threads=2; best of "
          f"{max(len(fleet), len(duck))}")
    if d:
        print(f"rows validated {d['rows_validated']:,}: {d['rows_good']:,} published, {d['rows_quarantined']:,} quarantined")
    print(f"{'side':<30}{'wall s':>9}{'cpu s':>9}{'peak RSS MiB':>16}  all runs (s)")
    def line(name, r, rs, rss):
        cpu = f"{r['cpu_seconds']:.1f}" if r.get("cpu_seconds") is not None else "-"
        print(f"{name:<30}{r['seconds']:>9.2f}{cpu:>9}{rss:>16}  {' '.join('%.2f' % x['seconds'] for x in rs)}")
    if f:
        line("ours: fleet (submit --wait)", f, fleet,
             "+".join(str(round(k / 1024)) for k in f.get("worker_rss_kib", [])))
    if l:
        line("ours: bis run --local -c 2", l, local, f"{l['max_rss_kib'] / 1024:.0f}")
    if d:
        line("duckdb (2 threads)", d, duck, f"{d['max_rss_kib'] / 1024:.0f}")
    if d:
        print("  (duckdb: " + ", ".join(f"{k} {v:.2f} s" for k, v in d.get("phases", {}).items()) + ")")
    if f:
        print(f"  (fleet: cpu s and peak RSS are the workers'; the coordinator used {f['coordinator_cpu_seconds']:.1f} cpu s more)")
        # The same worker processes serve every run: their peak (VmHWM) after
        # each run shows memory that grows from run to run.
        peaks = [r.get("worker_rss_kib", []) for r in fleet]
        top = max((k for p in peaks for k in p), default=0) / 1024
        print("  (workers' peak RSS MiB after each run: " + ", ".join("+".join(str(round(k / 1024)) for k in p) for p in peaks)
              + f"; target <= 1024 each: {'met' if top <= 1024 else 'NOT met'})")
    if f and d:
        ratio = f["seconds"] / d["seconds"]
        print(f"ratio ours (fleet) / duckdb: {ratio:.2f}x   target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'}")
    if l and d:
        print(f"ratio ours (--local) / duckdb: {l['seconds'] / d['seconds']:.2f}x")
    ok = bool(comps) and all(c["same"] for c in comps)
    for c in comps:
        print(f"cross-check {c['label']}: {'same' if c['same'] else 'DIFFERENT'} rows ({c['rows_ours']:,} vs "
              f"{c['rows_duck']:,}; only ours {c['only_ours']}, only duckdb {c['only_duck']}), "
              f"{c['groups']} summary groups{' equal' if not c['summary_diffs'] else ': ' + '; '.join(c['summary_diffs'])}, "
              f"quarantined {c['quarantined_ours']:,} vs {c['quarantined_duck']:,}; "
              f"dataset bytes {c['bytes_ours']:,}" + (f" vs duckdb {d['bytes']:,}" if d else ""))
    for label, r in (("fleet", f), ("local", l)):
        if r and r.get("run") in bds:
            b = bds[r["run"]]
            print(f"where the time goes ({label} run {b['run']}, {b['seconds']:.2f} s submit -> finished; "
                  f"seconds from submit):")
            print(f"  {'stage':<12}{'tasks':>6}{'start':>8}{'end':>8}{'span':>8}{'busy':>8}{'longest':>9}"
                  f"{'max wait':>9}{'rows in':>12}{'rows out':>12}")
            for s in b["stages"]:
                fmt = lambda x, w: f"{x:>{w}.2f}" if x is not None else f"{'-':>{w}}"
                span = s["end"] - s["start"] if s["start"] is not None and s["end"] is not None else None
                print(f"  {s['stage']:<12}{s['tasks']:>6}{fmt(s['start'], 8)}{fmt(s['end'], 8)}{fmt(span, 8)}"
                      f"{fmt(s['busy'], 8)}{fmt(s['longest'], 9)}{fmt(s['max_wait'], 9)}"
                      f"{s['rows_in']:>12,}{s['rows_out']:>12,}")
    for x in loads:
        print(f"load during {x['label']}: load average {x['loadavg']}, swift-frontend running: {x['swift']}")
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("corrections"); c.add_argument("src"); c.add_argument("out")
    d = sub.add_parser("duckdb"); d.add_argument("--threads", type=int, default=2); d.add_argument("--out", required=True)
    d.add_argument("files", nargs="+")
    m = sub.add_parser("compare"); m.add_argument("--run-json", required=True); m.add_argument("--data-root", required=True)
    m.add_argument("--duck", required=True); m.add_argument("--label", default="fleet")
    b = sub.add_parser("breakdown"); b.add_argument("--db", required=True); b.add_argument("--run", required=True)
    r = sub.add_parser("report"); r.add_argument("results"); r.add_argument("--scale", default="1")
    r.add_argument("--workers", default="2"); r.add_argument("--concurrency", default="1"); r.add_argument("--partitions", default="4")
    a = p.parse_args()
    if a.cmd == "corrections":
        corrections(a.src, a.out)
    elif a.cmd == "duckdb":
        run_duckdb(a.files, a.out, a.threads)
    elif a.cmd == "compare":
        compare(a.run_json, a.data_root, a.duck, a.label)
    elif a.cmd == "breakdown":
        breakdown(a.db, a.run)
    elif a.cmd == "report":
        sys.exit(report(a.results, a.scale, a.workers, a.concurrency, a.partitions))


if __name__ == "__main__":
    main()
