"""Checks a report CSV against DuckDB's GROUP BY on the same Parquet file.

Usage: check_report_csv.py PARQUET CSV QUERY
  QUERY  SQL over the table `t` (the Parquet file), its rows in the CSV's order.

Two checks: the CSV's bytes equal DuckDB's result written the report's way
(RFC 4180, CRLF, a quoted "" for an empty text, nothing for null, decimals
with their scale, ISO dates); and DuckDB reading the CSV back with the
result's column types gets the same rows.
Prints one JSON object: {"ok": bool, "rows": n, "mismatches": [...]}.
"""
import datetime
import json
import sys
from decimal import Decimal

import duckdb

parquet, csv_path, query = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{parquet}')")
rel = con.execute(query)
names = [d[0] for d in rel.description]
rows = rel.fetchall()
types = [r[1] for r in con.execute(f"DESCRIBE {query}").fetchall()]


def field(v):
    if v is None:
        return ""
    if isinstance(v, str):
        if v == "":
            return '""'
        if any(ch in v for ch in ',"\r\n'):
            return '"' + v.replace('"', '""') + '"'
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, datetime.date):
        return v.isoformat()
    return str(v)


expected = ",".join(field(n) for n in names) + "\r\n"
expected += "".join(",".join(field(v) for v in row) + "\r\n" for row in rows)
got = open(csv_path, encoding="utf-8", newline="").read()
mismatches = []
if got != expected:
    gl, el = got.split("\r\n"), expected.split("\r\n")
    for i, (a, b) in enumerate(zip(gl, el)):
        if a != b:
            mismatches.append(f"line {i + 1}: ours {a!r}, DuckDB {b!r}")
            if len(mismatches) > 10:
                break
    if len(gl) != len(el):
        mismatches.append(f"ours {len(gl)} lines, DuckDB {len(el)}")

# DuckDB reads our CSV back with the result's types: the same rows.
cols = ", ".join(f"'{n}': '{t}'" for n, t in zip(names, types))
back = con.execute(f"SELECT * FROM read_csv('{csv_path}', header = true, columns = {{{cols}}}, "
                   "quote = '\"', escape = '\"', allow_quoted_nulls = false)").fetchall()
if back != rows:
    mismatches.append(f"DuckDB reading our CSV gets {len(back)} rows, differing from the GROUP BY's {len(rows)}")
    for i, (a, b) in enumerate(zip(back, rows)):
        if a != b:
            mismatches.append(f"row {i}: read back {a!r}, GROUP BY {b!r}")
            break

print(json.dumps({"ok": not mismatches, "rows": len(rows), "mismatches": mismatches}))
