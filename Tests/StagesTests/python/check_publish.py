"""Reads published datasets through their view.sql with DuckDB, as a user would.

Usage:
  check_publish.py view VIEW_SQL NAME
      Runs the view file (what `duckdb -c ".read VIEW_SQL"` runs) from a
      different working directory, and prints
      {"ok": true, "rows": n, "columns": [...], "ids": [...]} (ids: the
      sorted values of column `id`, when there is one).
  check_publish.py summary DATA_VIEW_SQL DATA SUMMARY_VIEW_SQL SUMMARY GROUP_BY AGGS
      Compares the summary view with DuckDB's own GROUP BY over the data
      view. GROUP_BY: comma-separated columns; AGGS: the DuckDB aggregate
      expressions, separated by ';', in the summary's column order.
      Prints {"ok": bool, "groups": n, "mismatches": [...]}.
"""
import json
import math
import os
import sys
import tempfile

import duckdb


def load(con, path):
    with open(path) as f:
        con.execute(f.read())


os.chdir(tempfile.gettempdir())  # absolute paths in view.sql: any directory works
con = duckdb.connect()
mode = sys.argv[1]

if mode == "view":
    load(con, sys.argv[2])
    name = sys.argv[3]
    rows = con.execute(f'SELECT * FROM "{name}"').fetchall()
    cols = [d[0] for d in con.description]
    ids = sorted(r[cols.index("id")] for r in rows) if "id" in cols else []
    print(json.dumps({"ok": True, "rows": len(rows), "columns": cols, "ids": ids}))
elif mode == "summary":
    data_view, data, summary_view, summary, group_by, aggs = sys.argv[2:8]
    load(con, data_view)
    load(con, summary_view)
    keys = group_by.split(",")
    order = ", ".join(f'"{k}" NULLS FIRST' for k in keys)
    quoted = ", ".join(f'"{k}"' for k in keys)
    ref = con.execute(
        f'SELECT {quoted}, {", ".join(aggs.split(";"))} FROM "{data}" GROUP BY {quoted} ORDER BY {order}').fetchall()
    got = con.execute(f'SELECT * FROM "{summary}" ORDER BY {order}').fetchall()
    mismatches = []
    if len(ref) != len(got):
        mismatches.append(f"DuckDB has {len(ref)} groups, the summary {len(got)}")
    for i, (a, b) in enumerate(zip(ref, got)):
        for j, (x, y) in enumerate(zip(a, b)):
            if isinstance(x, float) or isinstance(y, float):
                same = (x is None and y is None) or (
                    x is not None and y is not None and math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-9))
            else:
                same = x == y
            if not same:
                mismatches.append(f"group {i} column {j}: DuckDB {x!r} summary {y!r}")
    print(json.dumps({"ok": not mismatches, "groups": len(ref), "mismatches": mismatches[:20]}))
else:
    sys.exit(f"unknown mode {mode}")
