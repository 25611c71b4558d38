"""Reads a file written by the Swift writer with pyarrow and DuckDB and
compares types, values and statistics with the expectation JSON the test
wrote beside it. Prints "ok" or exits 1 with what differed.

usage: check_ours.py FILE.parquet EXPECTED.json
"""
import json
import math
import sys
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ARROW = {
    "int64": pa.int64(), "int32": pa.int32(), "double": pa.float64(), "bool": pa.bool_(),
    "string": pa.string(), "date": pa.date32(), "timestamp": pa.timestamp("us", tz="UTC"),
}
DUCK = {
    "int64": "BIGINT", "int32": "INTEGER", "double": "DOUBLE", "bool": "BOOLEAN",
    "string": "VARCHAR", "date": "DATE", "timestamp": "TIMESTAMP WITH TIME ZONE",
}
problems = []


def decimal_of(t):
    p, s = t[len("decimal("):-1].split(",")
    return int(p), int(s)


def canon(v, t):
    """One value as the canonical string the Swift side wrote."""
    if v is None:
        return None
    if t == "double":
        return v  # compared numerically below
    if t == "bool":
        return "true" if v else "false"
    if t.startswith("decimal"):
        _, s = decimal_of(t)
        return str(int(Decimal(v).scaleb(s)))
    return str(v)


def same_double(a, b):
    if b is None or a is None:
        return a is None and b is None
    b = float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


def compare(reader, name, t, got, want):
    if len(got) != len(want):
        problems.append(f"{reader} {name}: {len(got)} rows, expected {len(want)}")
        return
    for i, (g, w) in enumerate(zip(got, want)):
        ok = same_double(g, w) if t == "double" else canon(g, t) == w
        if not ok:
            problems.append(f"{reader} {name} row {i}: got {g!r}, expected {w!r}")
            return


def main():
    path, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    columns = expected["columns"]

    # pyarrow: logical types, values, statistics.
    table = pq.read_table(path)
    meta = pq.ParquetFile(path).metadata
    for col in columns:
        name, t = col["name"], col["type"]
        want_type = pa.decimal128(*decimal_of(t)) if t.startswith("decimal") else ARROW[t]
        arr = table.column(name)
        if arr.type != want_type:
            problems.append(f"pyarrow {name}: type {arr.type}, expected {want_type}")
            continue
        if t == "date":
            arr = pc.cast(arr, pa.int32())
        elif t == "timestamp":
            arr = pc.cast(arr, pa.int64())
        compare("pyarrow", name, t, arr.to_pylist(), col["values"])
    by_name = {c["name"]: c for c in columns}
    first = 0
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for j in range(rg.num_columns):
            c = rg.column(j)
            st = c.statistics
            col = by_name.get(c.path_in_schema)
            if st is None:
                problems.append(f"pyarrow: row group {g} column {c.path_in_schema} has no statistics")
                continue
            values = [] if col is None else [v for v in col["values"][first:first + rg.num_rows] if v is not None]
            if st.null_count != rg.num_rows - len(values):
                problems.append(f"pyarrow: row group {g} column {c.path_in_schema} null_count {st.null_count}")
            if values and not st.has_min_max:
                problems.append(f"pyarrow: row group {g} column {c.path_in_schema} has no min/max")
            # pyarrow must see the same extremes (sign and byte order included).
            t = col["type"] if col else ""
            if values and st.has_min_max and (t in ("int64", "int32", "string", "bool") or t.startswith("decimal")):
                key = (lambda v: v.encode()) if t == "string" else (lambda v: v) if t == "bool" else int
                want = (min(values, key=key), max(values, key=key))
                got = (canon(st.min, t), canon(st.max, t))
                if got != want:
                    problems.append(f"pyarrow: row group {g} column {c.path_in_schema} min/max {got}, expected {want}")
        first += rg.num_rows
    if meta.created_by != expected["created_by"]:
        problems.append(f"pyarrow: created_by {meta.created_by!r}")

    # DuckDB: types and values through SQL, so no Python date range limits apply.
    con = duckdb.connect()
    desc = {r[0]: r[1] for r in con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [path]).fetchall()}
    exprs = []
    for col in columns:
        name, t = col["name"], col["type"]
        want = f"DECIMAL({decimal_of(t)[0]},{decimal_of(t)[1]})" if t.startswith("decimal") else DUCK[t]
        if desc.get(name) != want:
            problems.append(f"duckdb {name}: type {desc.get(name)}, expected {want}")
        q = '"' + name.replace('"', '""') + '"'
        if t == "date":
            exprs.append(f"CAST({q} - DATE '1970-01-01' AS VARCHAR)")
        elif t == "timestamp":
            exprs.append(f"CAST(epoch_us({q}) AS VARCHAR)")
        elif t in ("double", "bool", "string"):
            exprs.append(q)
        else:
            exprs.append(f"CAST({q} AS VARCHAR)")
    rows = con.execute(
        f"SELECT {', '.join(exprs)} FROM read_parquet(?, file_row_number = true) ORDER BY file_row_number", [path]
    ).fetchall() if columns else []
    for k, col in enumerate(columns):
        t = col["type"]
        got = [r[k] for r in rows]
        if t.startswith("decimal"):
            got = [None if g is None else Decimal(g) for g in got]
        compare("duckdb", col["name"], t, got, col["values"])

    if problems:
        print("\n".join(problems[:20]))
        sys.exit(1)
    print("ok")


main()
