"""Reads Parquet files with pyarrow and writes what it read as JSON: for each
file its columns, each with the type our reader must give it and every value
as a canonical string (null as null). Used by ParquetTestingTests to compare
our reader with pyarrow on the apache/parquet-testing files.

Canonical values: integers, dates (days since 1970-01-01), timestamps (UTC
microseconds) and decimals (the unscaled integer) as decimal digits; doubles
as Python's repr (float32 values widened exactly); booleans as true/false;
strings and binaries as the hex of their bytes.

A column whose pyarrow type has no counterpart in ours gets the type
"unmapped"; a file pyarrow cannot read gets {"error": ...}.

usage: read_reference.py OUT.json FILE.parquet...
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def our_type(t):
    if pa.types.is_boolean(t):
        return "bool"
    if t in (pa.int8(), pa.int16(), pa.int32(), pa.uint8(), pa.uint16()):
        return "int32"
    if t == pa.int64():
        return "int64"
    if pa.types.is_float32(t) or pa.types.is_float64(t):
        return "double"
    if pa.types.is_date32(t):
        return "date"
    if pa.types.is_timestamp(t) and t.unit in ("ms", "us"):
        return "timestamp"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_string(t):
        return "string"
    return "unmapped"


def canonical(arr, t):
    if t == "date":
        arr = pc.cast(arr, pa.int32())
    elif t == "timestamp":
        arr = pc.cast(pc.cast(arr, pa.timestamp("us", tz=arr.type.tz)), pa.int64())
    values = arr.to_pylist()
    out = []
    for v in values:
        if v is None:
            out.append(None)
        elif t == "bool":
            out.append("true" if v else "false")
        elif t == "double":
            out.append(repr(float(v)))
        elif t == "string":
            out.append((v.encode("utf-8") if isinstance(v, str) else v).hex())
        elif t.startswith("decimal"):
            out.append(str(int(v.scaleb(arr.type.scale))))
        else:
            out.append(str(v))
    return out


def main():
    out_path, paths = sys.argv[1], sys.argv[2:]
    files = []
    for path in paths:
        entry = {"file": os.path.basename(path)}
        try:
            table = pq.read_table(path)
        except Exception as e:  # noqa: BLE001 - any refusal is the answer
            entry["error"] = f"{type(e).__name__}: {e}"
            files.append(entry)
            continue
        entry["rows"] = table.num_rows
        columns = []
        for field, column in zip(table.schema, table.columns):
            t = our_type(field.type)
            arr = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
            columns.append({"name": field.name, "type": t, "arrow": str(field.type),
                            "values": canonical(arr, t) if t != "unmapped" else None})
        entry["columns"] = columns
        files.append(entry)
    with open(out_path, "w") as f:
        json.dump({"files": files}, f)
    print("ok")


main()
