"""Cross-checks consolidate (dedupe latest) and the aggregates against DuckDB.

Usage: check_consolidate.py KEEP INPUTS OURS AGG
  KEEP    "latest" (by `updated`) or "first"
  INPUTS  comma-separated shard chunks, in shard order (names sort in that order)
  OURS    comma-separated consolidated chunks, in order
  AGG     the aggregate result written by the Swift test

Prints one JSON object: {"ok": bool, "rows": n, "groups": n, "mismatches": [...]}.
"""
import json
import math
import sys

import duckdb

keep = sys.argv[1]
inputs, ours, agg = sys.argv[2].split(","), sys.argv[3].split(","), sys.argv[4]
con = duckdb.connect()
mismatches = []


def lst(paths):
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


COLS = "k, line, updated, amount, price, flag, status, name, shard, seq"

# latest: greatest `updated` (null lowest); ties go to the later shard, then the later row.
# first: the earliest shard, then the earliest row.
order = {
    "latest": "updated DESC NULLS LAST, filename DESC, file_row_number DESC",
    "first": "filename, file_row_number",
}[keep]
ref = con.execute(f"""
    SELECT {COLS} FROM read_parquet({lst(inputs)}, filename = true, file_row_number = true)
    QUALIFY row_number() OVER (PARTITION BY k, line ORDER BY {order}) = 1
    ORDER BY k NULLS FIRST, line NULLS FIRST
""").fetchall()
got = con.execute(f"""
    SELECT {COLS} FROM read_parquet({lst(ours)}, filename = true, file_row_number = true)
    ORDER BY filename, file_row_number
""").fetchall()
if len(ref) != len(got):
    mismatches.append(f"consolidate: DuckDB keeps {len(ref)} rows, ours {len(got)}")
for i, (a, b) in enumerate(zip(ref, got)):
    if a != b:
        mismatches.append(f"consolidate row {i}: DuckDB {a!r} ours {b!r}")
        if len(mismatches) > 20:
            break

# The aggregates over the de-duplicated rows.
con.execute(f"CREATE TABLE dedup AS SELECT * FROM read_parquet({lst(ours)})")
ref_agg = con.execute("""
    SELECT flag, status, count(*), count(amount), count(DISTINCT name), sum(amount), sum(line),
           min(name), max(amount), min(updated), max(status), avg(amount), avg(price), sum(price)
    FROM dedup GROUP BY flag, status ORDER BY flag NULLS FIRST, status NULLS FIRST
""").fetchall()
got_agg = con.execute(f"SELECT * FROM read_parquet('{agg}')").fetchall()
if len(ref_agg) != len(got_agg):
    mismatches.append(f"aggregate: DuckDB has {len(ref_agg)} groups, ours {len(got_agg)}")
for i, (a, b) in enumerate(zip(ref_agg, got_agg)):
    for j, (x, y) in enumerate(zip(a, b)):
        if isinstance(x, float) or isinstance(y, float):
            same = (x is None and y is None) or (
                x is not None and y is not None and math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-9))
        else:
            same = x == y
        if not same:
            mismatches.append(f"aggregate group {i} column {j}: DuckDB {x!r} ours {y!r}")

print(json.dumps({"ok": not mismatches, "rows": len(ref), "groups": len(ref_agg), "mismatches": mismatches[:20]}))
