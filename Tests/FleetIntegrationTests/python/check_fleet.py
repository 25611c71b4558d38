"""Cross-checks what a fleet run published against DuckDB running the same
pipeline on the same CSV files, and reads the lineage store as an operator would.

Usage:
  check_fleet.py published CSVS ROOT DATASET SUMMARY
      CSVS     comma-separated input CSV files
      ROOT     the data root the run published under
      DATASET  the spec's publish.dataset
      SUMMARY  the spec's one summary (group_by [region]: lines = count(),
               total_qty = sum(qty))
      Reads published/<DATASET>/CURRENT and that version's _manifest.json
      (every file's sha256 and row count checked), then compares every row
      and every summary group with DuckDB's. Prints
      {"ok": bool, "rows": n, "ingest_quarantined": n, "validate_quarantined": n,
       "groups": n, "version": run, "mismatches": [...]}.
  check_fleet.py executions DB RUN
      The lineage store's executions of RUN per task, by state. Prints
      {"tasks": [{"stage": s, "index": i, "state": task state, "winner": id,
                  "executions": {state: n}}]}.
  check_fleet.py running DB RUN STAGE
      RUN's executions of STAGE the lineage store has as running (their
      worker announced them). Prints [{"index": i, "execution": id,
      "pid": pid, "age": seconds since it started}].
  check_fleet.py versions ROOT DATASET
      Every complete version folder of published/<DATASET> (those with a
      _manifest.json; .tmp-… entries are not versions) read back with DuckDB:
      each file's sha256 against the manifest, the row count against it, and
      view.sql executed. Prints {"ok": bool, "versions": {run: rows},
      "current": run, "view_rows": n, "leftovers": [names], "mismatches": [...]}.

The pipeline (the spec FleetData writes):
  ingest     rows where a present value does not cast are quarantined
  normalize  region = upper(trim(region)); total = amount * qty;
             tier = high (amount >= 500) | none (amount null) | low;
             keep qty is null or qty > 0
  consolidate dedupe by id, keep the latest by day (days are unique per row)
  validate   allowed tier in (low, none): 'high' rows are quarantined
  publish    the rest; summary grouped by region
"""
import hashlib
import json
import os
import sqlite3
import sys
import time

import duckdb


def lst(paths):
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def expected(con, csvs):
    con.execute(f"""
    CREATE TABLE raw AS SELECT * FROM read_csv({lst(csvs)}, header = true, all_varchar = true,
        nullstr = ['', 'NA', 'NULL'], allow_quoted_nulls = false, quote = '"', escape = '"', delim = ',')
    """)
    con.execute("""
    CREATE TABLE typed AS SELECT
        TRY_CAST(id AS BIGINT) AS id, region, TRY_CAST(amount AS DECIMAL(12,2)) AS amount,
        TRY_CAST(qty AS BIGINT) AS qty, TRY_CAST(day AS DATE) AS day, note,
        (id IS NOT NULL AND TRY_CAST(id AS BIGINT) IS NULL)
        OR (amount IS NOT NULL AND TRY_CAST(amount AS DECIMAL(12,2)) IS NULL)
        OR (qty IS NOT NULL AND TRY_CAST(qty AS BIGINT) IS NULL)
        OR (day IS NOT NULL AND TRY_CAST(day AS DATE) IS NULL) AS bad
    FROM raw
    """)
    con.execute("""
    CREATE TABLE consolidated AS
    WITH normalized AS (
        SELECT id, upper(trim(region)) AS region, amount, qty, day, note,
               amount * qty AS total,
               CASE WHEN amount >= 500 THEN 'high' WHEN amount IS NULL THEN 'none' ELSE 'low' END AS tier
        FROM typed WHERE NOT bad AND (qty IS NULL OR qty > 0)
    )
    SELECT * FROM normalized
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY day DESC NULLS LAST) = 1
    """)
    con.execute("CREATE TABLE expected AS SELECT * FROM consolidated WHERE tier IN ('low', 'none')")
    return {
        "ingest_quarantined": con.execute("SELECT count(*) FROM typed WHERE bad").fetchone()[0],
        "validate_quarantined": con.execute("SELECT count(*) FROM consolidated WHERE tier NOT IN ('low', 'none')").fetchone()[0],
    }


def version(root, dataset, mismatches):
    """The CURRENT version's folder, manifest and files (checked), or None."""
    base = os.path.join(root, "published", dataset)
    try:
        with open(os.path.join(base, "CURRENT")) as f:
            run = f.read().strip()
        folder = os.path.join(base, run)
        with open(os.path.join(folder, "_manifest.json")) as f:
            manifest = json.load(f)
    except OSError as e:
        mismatches.append(f"{dataset}: no current version: {e}")
        return None, None, []
    if manifest.get("run") != run:
        mismatches.append(f"{dataset}: CURRENT names {run} but its manifest says {manifest.get('run')}")
    files = []
    for entry in manifest.get("files", []):
        path = os.path.join(folder, entry["name"])
        try:
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        except OSError as e:
            mismatches.append(f"{dataset}: {entry['name']} listed in the manifest is missing: {e}")
            continue
        if digest != entry["sha256"]:
            mismatches.append(f"{dataset}: {entry['name']} sha256 {digest} but the manifest says {entry['sha256']}")
        files.append(path)
    return run, manifest, files


def published(csvs, root, dataset, summary):
    con = duckdb.connect()
    counts = expected(con, csvs)
    mismatches = []
    run, manifest, files = version(root, dataset, mismatches)
    rows = con.execute("SELECT count(*) FROM expected").fetchone()[0]
    groups = 0
    if files:
        cols = "id, region, amount, qty, day, note, total, tier"
        # Exactly the normalized columns: without publish.provenance the
        # rows' _source_file and _source_line stay out of the dataset.
        names = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({lst(files)})").fetchall()]
        if names != cols.split(", "):
            mismatches.append(f"{dataset}: published columns {names}, expected {cols}")
        want = con.execute(f"SELECT {cols} FROM expected ORDER BY id").fetchall()
        got = con.execute(f"SELECT {cols} FROM read_parquet({lst(files)}) ORDER BY id").fetchall()
        if len(got) != len(want):
            mismatches.append(f"{dataset}: {len(got)} rows published, DuckDB has {len(want)}")
        if manifest.get("rows") != len(got):
            mismatches.append(f"{dataset}: the manifest says {manifest.get('rows')} rows, the files hold {len(got)}")
        ids = [r[0] for r in got]
        if len(set(ids)) != len(ids):
            mismatches.append(f"{dataset}: an id is published twice")
        for g, w in zip(got, want):
            if g != w:
                mismatches.append(f"{dataset}: published {g!r} != duckdb {w!r}")
                if len(mismatches) > 10:
                    break
    srun, _, sfiles = version(root, summary, mismatches)
    if run is not None and srun is not None and srun != run:
        mismatches.append(f"{summary}: CURRENT names {srun}, {dataset}'s names {run}")
    if sfiles:
        want = con.execute("""
            SELECT region, count(*) AS lines, sum(qty) AS total_qty FROM expected
            GROUP BY region ORDER BY region NULLS FIRST""").fetchall()
        got = con.execute(f"""
            SELECT region, lines, total_qty FROM read_parquet({lst(sfiles)}) ORDER BY region NULLS FIRST""").fetchall()
        groups = len(want)
        if len(got) != len(want):
            mismatches.append(f"{summary}: {len(got)} groups published, DuckDB has {len(want)}")
        for g, w in zip(got, want):
            if tuple(g) != tuple(w):
                mismatches.append(f"{summary}: published {g!r} != duckdb {w!r}")
    return {"ok": not mismatches, "rows": rows, "groups": groups, "version": run, "mismatches": mismatches[:20], **counts}


def executions(db, run):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    tasks = {}
    for stage, idx, state, winner in con.execute(
            "SELECT stage, idx, state, winner FROM tasks WHERE run = ? ORDER BY stage, idx", (run,)):
        tasks[(stage, idx)] = {"stage": stage, "index": idx, "state": state, "winner": winner, "executions": {}}
    for stage, idx, state, n in con.execute("""
            SELECT t.stage, t.idx, x.state, count(*) FROM tasks t JOIN executions x ON x.task = t.id
            WHERE t.run = ? GROUP BY t.stage, t.idx, x.state""", (run,)):
        tasks[(stage, idx)]["executions"][state] = n
    return {"tasks": list(tasks.values())}


def running(db, run, stage):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute("""
        SELECT t.idx, x.id, x.pid, x.started_at FROM tasks t JOIN executions x ON x.task = t.id
        WHERE t.run = ? AND t.stage = ? AND x.state = 'running' ORDER BY x.started_at DESC""", (run, stage))
    now = time.time()
    return [{"index": i, "execution": x, "pid": pid, "age": now - started} for i, x, pid, started in rows]


def placeholders(db, run):
    """Source chunks still carrying a stat placeholder: those `run`'s tasks
    or executions name, and those in the whole store."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    named = con.execute("""
        SELECT count(DISTINCT c.id) FROM chunks c WHERE c.sha256 LIKE 'stat:%' AND (
            c.id IN (SELECT ti.chunk FROM task_inputs ti JOIN tasks t ON t.id = ti.task WHERE t.run = ?)
            OR c.id IN (SELECT e.chunk FROM edges e JOIN executions x ON x.id = e.execution
                        JOIN tasks t ON t.id = x.task WHERE t.run = ?))""", (run, run)).fetchone()[0]
    total = con.execute("SELECT count(*) FROM chunks WHERE sha256 LIKE 'stat:%'").fetchone()[0]
    return {"run": named, "store": total}


def versions(root, dataset):
    base = os.path.join(root, "published", dataset)
    mismatches, counts = [], {}
    con = duckdb.connect()
    for name in sorted(os.listdir(base)):
        folder = os.path.join(base, name)
        if name.startswith(".") or not os.path.isdir(folder):
            continue
        try:
            with open(os.path.join(folder, "_manifest.json")) as f:
                manifest = json.load(f)
        except OSError as e:
            mismatches.append(f"{name}: a version folder without a readable manifest: {e}")
            continue
        paths = []
        for entry in manifest["files"]:
            path = os.path.join(folder, entry["name"])
            with open(path, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != entry["sha256"]:
                    mismatches.append(f"{name}/{entry['name']}: sha256 differs from the manifest")
            paths.append(path)
        rows = con.execute(f"SELECT count(*) FROM read_parquet({lst(paths)})").fetchone()[0]
        if rows != manifest["rows"]:
            mismatches.append(f"{name}: {rows} rows read, the manifest says {manifest['rows']}")
        counts[name] = rows
    with open(os.path.join(base, "CURRENT")) as f:
        current = f.read().strip()
    with open(os.path.join(base, "view.sql")) as f:
        con.execute(f.read())
    view_rows = con.execute(f'SELECT count(*) FROM "{dataset}"').fetchone()[0]
    if current not in counts:
        mismatches.append(f"CURRENT names {current}, which is not a complete version")
    elif view_rows != counts[current]:
        mismatches.append(f"view.sql reads {view_rows} rows, CURRENT's version has {counts[current]}")
    leftovers = sorted(n for n in os.listdir(base) if n.startswith(".tmp-"))
    return {"ok": not mismatches, "versions": counts, "current": current, "view_rows": view_rows,
            "leftovers": leftovers, "mismatches": mismatches}


mode = sys.argv[1]
if mode == "published":
    print(json.dumps(published(sys.argv[2].split(","), sys.argv[3], sys.argv[4], sys.argv[5]), default=str))
elif mode == "executions":
    print(json.dumps(executions(sys.argv[2], sys.argv[3])))
elif mode == "versions":
    print(json.dumps(versions(sys.argv[2], sys.argv[3])))
elif mode == "placeholders":
    print(json.dumps(placeholders(sys.argv[2], sys.argv[3])))
elif mode == "running":
    print(json.dumps(running(sys.argv[2], sys.argv[3], sys.argv[4])))
else:
    sys.exit(f"unknown mode {mode}")
