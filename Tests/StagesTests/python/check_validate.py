"""Reads validate's outputs with DuckDB, as a user would.

Usage: check_validate.py QUARANTINE VALIDATED
  QUARANTINE  the quarantine.parquet chunk
  VALIDATED   comma-separated validated-*.parquet chunks

Prints one JSON object:
  {"quarantine": [[rule, reason, row.id, row.amount, row.flag], ...] in file order,
   "validated": [id, ...] in file order,
   "schema": [[column, type], ...] of the quarantine}
Values inside `row` are read with DuckDB's JSON functions (as text).
"""
import json
import sys

import duckdb

quarantine, validated = sys.argv[1], sys.argv[2].split(",")
con = duckdb.connect()
q = con.execute(
    "select rule, reason, json_extract_string(row, '$.id'), json_extract_string(row, '$.amount'), "
    "json_extract_string(row, '$.flag') from read_parquet(?)",
    [quarantine],
).fetchall()
v = con.execute("select id from read_parquet(?)", [validated]).fetchall()
schema = con.execute("select column_name, column_type from (describe select * from read_parquet(?))", [quarantine]).fetchall()
print(json.dumps({"quarantine": [list(r) for r in q], "validated": [r[0] for r in v], "schema": [list(s) for s in schema]}))
