"""Checks that published rows and validate's quarantined rows point back at
the input records they came from.

Usage: check_provenance.py CSVS PUBLISHED QUARANTINE
  CSVS        comma-separated input CSV files (header id,region,amount,qty,day,note)
  PUBLISHED   comma-separated Parquet files of the published dataset (with provenance)
  QUARANTINE  comma-separated validate quarantine chunks (may be empty)

Python's csv module reads each file on its own, noting the line each record
starts on (1-based, the header is line 1; files must not hold a lone CR).
DuckDB reads the Parquet files. Every published row's (_source_file,
_source_line) must name a record of that file with the same id and day (days
are unique per record, so the day also shows the dedupe kept the winner's
origin), and no two rows may name the same record; every quarantined row's
(file, line) must name a record with the id in its row JSON.

Prints one JSON object: {"ok": bool, "rows": n, "quarantined": n, "mismatches": [...]}.
"""
import csv
import json
import sys

import duckdb

csvs = sys.argv[1].split(",")
published = sys.argv[2].split(",")
quarantine = [p for p in sys.argv[3].split(",") if p]

records = {}
for path in csvs:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        start = 1
        header = None
        for rec in reader:
            line, start = start, reader.line_num + 1
            if not rec:
                continue
            if header is None:
                header = rec
                continue
            records[(path, line)] = dict(zip(header, rec))

con = duckdb.connect()


def lst(paths):
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


mismatches = []
rows = con.execute(f"""
SELECT CAST(id AS VARCHAR), CAST(day AS VARCHAR), _source_file, _source_line FROM read_parquet({lst(published)})
""").fetchall()
seen = set()
for id_, day, file, line in rows:
    rec = records.get((file, line))
    if rec is None:
        mismatches.append(f"published id {id_}: {file}:{line} is not the start of a record")
    elif rec["id"] != id_ or rec["day"] != day:
        mismatches.append(f"published id {id_} day {day}: {file}:{line} holds id {rec['id']} day {rec['day']}")
    if (file, line) in seen:
        mismatches.append(f"two published rows name {file}:{line}")
    seen.add((file, line))
    if len(mismatches) > 10:
        break

quarantined = 0
if quarantine:
    for file, line, row in con.execute(f"SELECT file, line, row FROM read_parquet({lst(quarantine)})").fetchall():
        quarantined += 1
        rec = records.get((file, line))
        values = json.loads(row)
        if "_source_file" in values or "_source_line" in values:
            mismatches.append(f"quarantined row {row} repeats its provenance")
        if rec is None:
            mismatches.append(f"quarantined {row}: {file}:{line} is not the start of a record")
        elif rec["id"] != str(values["id"]):
            mismatches.append(f"quarantined {row}: {file}:{line} holds id {rec['id']}")

print(json.dumps({"ok": not mismatches, "rows": len(rows), "quarantined": quarantined, "mismatches": mismatches[:12]}))
