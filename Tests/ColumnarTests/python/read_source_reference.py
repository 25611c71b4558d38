"""Reads Parquet files with pyarrow and writes every value as JSON in the
representation ParquetSourceReader gives it, for ParquetTestingTests'
cross-check of the files ParquetReader refuses (INT96, UINT_64, decimals
over 18 digits or stored as BYTE_ARRAY, ...):

- timestamps: nanoseconds since the epoch, exactly. pyarrow reads INT96 as
  int64 nanoseconds and wraps values beyond 1677..2262; those are rebuilt
  from the same file read in milliseconds (the wrapped value is exact modulo
  2^64, the millisecond value says which multiple);
- decimals: the unscaled integer; integers (signed or unsigned): the value;
  dates: days since 1970-01-01; booleans: true/false;
- floats and doubles: Python's repr of the value as a double;
- strings and binaries: the hex of their bytes.

Columns pyarrow gives another type (nested, half floats, ...) get "values": null.

usage: read_source_reference.py OUT.json FILE.parquet...
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def exact_nanos(wrapped, millis):
    if wrapped is None:
        return None
    target = millis * 1_000_000
    k = round((target - wrapped) / 2**64)
    return wrapped + k * 2**64


def canonical(arr, coarse):
    t = arr.type
    if pa.types.is_timestamp(t):
        ns = pa.compute.cast(arr, pa.timestamp("ns", tz=t.tz), safe=False) if t.unit != "ns" else arr
        wrapped = ns.cast(pa.int64()).to_pylist()
        if coarse is None:
            return [None if v is None else str(v) for v in wrapped]
        millis = coarse.cast(pa.int64()).to_pylist()
        return [None if w is None else str(exact_nanos(w, m)) for w, m in zip(wrapped, millis)]
    if pa.types.is_date32(t):
        return [None if v is None else str(v) for v in arr.cast(pa.int32()).to_pylist()]
    if pa.types.is_decimal(t):
        return [None if v is None else str(int(v.scaleb(t.scale))) for v in arr.to_pylist()]
    if pa.types.is_integer(t):
        return [None if v is None else str(v) for v in arr.to_pylist()]
    if pa.types.is_boolean(t):
        return [None if v is None else ("true" if v else "false") for v in arr.to_pylist()]
    if pa.types.is_float32(t) or pa.types.is_float64(t):
        return [None if v is None else repr(float(v)) for v in arr.to_pylist()]
    if pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_string(t) or pa.types.is_fixed_size_binary(t):
        return [None if v is None else (v.encode("utf-8") if isinstance(v, str) else v).hex() for v in arr.to_pylist()]
    return None


def main():
    out_path, paths = sys.argv[1], sys.argv[2:]
    files = []
    for path in paths:
        entry = {"file": os.path.basename(path)}
        try:
            table = pq.read_table(path)
            coarse = pq.read_table(path, coerce_int96_timestamp_unit="ms")
        except Exception as e:  # noqa: BLE001 - any refusal is the answer
            entry["error"] = f"{type(e).__name__}: {e}"
            files.append(entry)
            continue
        columns = []
        for k, (field, column) in enumerate(zip(table.schema, table.columns)):
            arr = column.combine_chunks()
            c = coarse.column(k).combine_chunks()
            c = c if pa.types.is_timestamp(c.type) and c.type.unit == "ms" and field.type != c.type else None
            columns.append({"name": field.name, "arrow": str(field.type), "values": canonical(arr, c)})
        entry["rows"] = table.num_rows
        entry["columns"] = columns
        files.append(entry)
    with open(out_path, "w") as f:
        json.dump({"files": files}, f)
    print("ok")


main()
