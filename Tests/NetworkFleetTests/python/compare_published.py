"""Compares two published versions of a dataset row by row with DuckDB.

    compare_published.py VERSION_DIR_A VERSION_DIR_B

Each folder is a published version (`published/<dataset>/<run>/`): its
`_manifest.json` lists the Parquet files. Rows are compared as multisets
(sorted by every column); column names and DuckDB types must match too.
Prints one JSON object: {"ok": bool, "rows": [a, b], "columns": [...], "problem": "..."}.
"""
import json
import os
import sys

import duckdb


def load(folder):
    with open(os.path.join(folder, "_manifest.json")) as f:
        manifest = json.load(f)
    files = [os.path.join(folder, f["name"]) for f in manifest["files"]]
    con = duckdb.connect()
    if not files:
        return [], [], []
    rel = con.read_parquet(files)
    columns = rel.columns
    types = [str(t) for t in rel.types]
    rows = con.execute("SELECT * FROM read_parquet(?) ORDER BY ALL", [files]).fetchall()
    return columns, types, rows


def main():
    a, b = sys.argv[1], sys.argv[2]
    ca, ta, ra = load(a)
    cb, tb, rb = load(b)
    out = {"ok": True, "rows": [len(ra), len(rb)], "columns": ca}
    if (ca, ta) != (cb, tb):
        out["ok"] = False
        out["problem"] = f"schemas differ: {list(zip(ca, ta))} vs {list(zip(cb, tb))}"
    elif ra != rb:
        out["ok"] = False
        only_a = [r for r in ra if r not in rb][:3]
        only_b = [r for r in rb if r not in ra][:3]
        out["problem"] = f"rows differ: only in {a}: {only_a!r}; only in {b}: {only_b!r}"
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
