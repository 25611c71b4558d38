"""Opens the report's workbook with openpyxl and checks every cell's value and type.

Usage: check_report_xlsx.py XLSX EXPECTED
  EXPECTED  JSON written by the Swift test: {"sheets": [name, ...],
            "tables": [{"sheet": name, "rows": [[cell, ...], ...]}]}, a cell being
            null, {"s": text}, {"n": "exact number text"}, {"i": int} or {"d": "YYYY-MM-DD"}.
            Row 1 of each table sheet is the header (texts).

Prints one JSON object: {"ok": bool, "sheets": [...], "mismatches": [...]}.
"""
import datetime
import json
import sys
from decimal import Decimal

import openpyxl

path, expected_path = sys.argv[1], sys.argv[2]
expected = json.load(open(expected_path, encoding="utf-8"))
wb = openpyxl.load_workbook(path)
mismatches = []
if wb.sheetnames != expected["sheets"]:
    mismatches.append(f"sheets: {wb.sheetnames!r}, expected {expected['sheets']!r}")

for table in expected["tables"]:
    if table["sheet"] not in wb.sheetnames:
        mismatches.append(f"no sheet {table['sheet']!r}")
        continue
    ws = wb[table["sheet"]]
    if ws.max_row != len(table["rows"]) and any(table["rows"][-1]):
        mismatches.append(f"{ws.title}: {ws.max_row} rows, expected {len(table['rows'])}")
    for r, row in enumerate(table["rows"], start=1):
        for c, want in enumerate(row, start=1):
            cell = ws.cell(row=r, column=c)
            got, where = cell.value, f"{ws.title}!{cell.coordinate}"
            if want is None:
                ok = got is None
            elif "s" in want:
                ok = isinstance(got, str) and got == want["s"]
            elif "i" in want:
                ok = type(got) is int and got == want["i"] and cell.data_type == "n"
            elif "n" in want:
                ok = isinstance(got, (int, float)) and not isinstance(got, bool) and cell.data_type == "n" \
                    and Decimal(repr(float(got))) == Decimal(repr(float(Decimal(want["n"]))))
            elif "d" in want:
                ok = isinstance(got, datetime.datetime) and cell.is_date and got.date().isoformat() == want["d"] \
                    and got.time() == datetime.time(0)
            else:
                ok = False
            if not ok:
                mismatches.append(f"{where}: got {got!r} ({type(got).__name__}, data_type {cell.data_type}), expected {want!r}")

# The Run sheet: the run's id, and the start time as a date-time.
run = wb["Run"]
labels = {run.cell(row=r, column=1).value: run.cell(row=r, column=2) for r in range(1, 8)}
if labels.get("run") is None or labels["run"].value != expected.get("run_id"):
    mismatches.append(f"Run!B2: {labels.get('run') and labels['run'].value!r}, expected {expected.get('run_id')!r}")
started = labels.get("started (UTC)")
if started is None or not started.is_date or started.value.isoformat() != expected.get("started_at"):
    mismatches.append(f"Run started: {started and started.value!r}, expected {expected.get('started_at')!r}")

# The Run sheet's lineage: each input's size is a number.
inputs = [r for r in range(1, run.max_row + 1) if run.cell(row=r, column=1).value == "input file"]
if not inputs:
    mismatches.append("Run: no 'input file' table")
else:
    size = run.cell(row=inputs[0] + 1, column=2)
    if size.data_type != "n" or size.value != expected.get("first_input_bytes"):
        mismatches.append(f"Run!{size.coordinate}: {size.value!r}, expected {expected.get('first_input_bytes')!r}")

print(json.dumps({"ok": not mismatches, "sheets": wb.sheetnames, "mismatches": mismatches[:30]}))
