"""Writes Parquet files with pyarrow (ZSTD or uncompressed; v1 and v2 pages)
holding the types other systems write (INT96 and nanosecond timestamps,
unsigned integers, decimals up to 38 digits), and manifest.json: for each
case the declared columns, and what ingest must produce, computed here from
pyarrow's own reading of the file with the conversion rules of
docs/spec.md applied independently:

  rows        every written row as canonical text (null as None), then its
              _source_line (1-based row number in the file), in file order
  quarantine  [line, column] of every quarantined row (first failing
              declared column), in file order
  row_groups  how many row groups (= shards) the file has
  error       instead of rows: words the ingest error must contain

usage: parquet_sources.py OUTDIR
"""
import datetime
import json
import os
import random
import sys
import decimal
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ColumnarTests", "python"))
from handmade_parquet import be_bytes, write_byte_array_decimal  # noqa: E402

decimal.getcontext().prec = 100   # exact: Decimal's default 28 digits would round
out = sys.argv[1]
rng = random.Random(17)
N = 2500
EPOCH = datetime.datetime(1970, 1, 1)


def maybe(v, p=0.08):
    return None if rng.random() < p else v


# ---------------------------------------------------------------- values
us = [maybe(rng.randrange(-2208988800 * 10**6, 4102444800 * 10**6)) for _ in range(N)]
# Nanoseconds: most a whole number of microseconds, some not.
ns = [None if v is None else v * 1000 + (rng.randrange(1, 1000) if rng.random() < 0.05 else 0)
      for v in (maybe(rng.randrange(-2208988800 * 10**6, 4102444800 * 10**6)) for _ in range(N))]
u8 = [maybe(rng.randrange(0, 256)) for _ in range(N)]
u16 = [maybe(rng.randrange(0, 65536), 0.01) for _ in range(N)]
u32 = [maybe(rng.choice([0, 2**32 - 1, rng.randrange(0, 2**32)])) for _ in range(N)]
u64 = [maybe(rng.choice([2**63, 2**64 - 1, rng.randrange(2**63, 2**64)]) if rng.random() < 0.05
             else rng.choice([0, 2**63 - 1, rng.randrange(0, 2**63)])) for _ in range(N)]
d9 = [maybe(Decimal(rng.randrange(-(10**9) + 1, 10**9)).scaleb(-2)) for _ in range(N)]
d18 = [maybe(Decimal(rng.randrange(-(10**18) + 1, 10**18)).scaleb(-4)) for _ in range(N)]


def d38_value():
    r = rng.random()
    if r < 0.92:   # fits decimal(18,4): up to 14 integer digits, 4 fraction digits
        return Decimal(rng.randrange(-(10**18) + 1, 10**18)).scaleb(-4)
    if r < 0.96:   # too many fraction digits
        return Decimal(rng.randrange(-(10**20), 10**20)).scaleb(-10)
    return Decimal(rng.choice([-1, 1]) * rng.randrange(10**18, 10**28)).scaleb(-4)   # too many integer digits


d38 = [maybe(d38_value()) for _ in range(N)]
d25 = [maybe(Decimal(rng.randrange(-(10**24), 10**24) if rng.random() < 0.05 else rng.randrange(-(10**18), 10**18)))
       for _ in range(N)]
seq = list(range(N))

table = pa.table({
    "id": pa.array(seq, pa.int64()),
    "t96": pa.array(us, pa.timestamp("us")),
    "tns": pa.array(ns, pa.timestamp("ns", tz="UTC")),
    "u8": pa.array(u8, pa.uint8()),
    "u16": pa.array(u16, pa.uint16()),
    "u32": pa.array(u32, pa.uint32()),
    "u64": pa.array(u64, pa.uint64()),
    "d9": pa.array(d9, pa.decimal128(9, 2)),
    "d18": pa.array(d18, pa.decimal128(18, 4)),
    "d38": pa.array(d38, pa.decimal128(38, 10)),
    "d25": pa.array(d25, pa.decimal128(25, 0)),
})

declared = [
    {"name": "id", "type": "int64", "nullable": False},
    {"name": "t96", "type": "timestamp", "nullable": True},
    {"name": "tns", "type": "timestamp", "nullable": True},
    {"name": "u8", "type": "int32", "nullable": True},
    {"name": "u16", "type": "int32", "nullable": False},
    {"name": "u32", "type": "int64", "nullable": True},
    {"name": "u64", "type": "int64", "nullable": True},
    {"name": "d9", "type": "decimal(12,4)", "nullable": True},
    {"name": "d18", "type": "decimal(18,4)", "nullable": True},
    {"name": "d38", "type": "decimal(18,4)", "nullable": True},
    {"name": "d25", "type": "int64", "nullable": True},
]


# ---------------------------------------------------------------- rules
def ts_text(micros):
    t = EPOCH + datetime.timedelta(microseconds=micros)
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.year < 1000:
        s = "%04d" % t.year + s[s.index("-"):]
    if micros % 10**6:
        s += ".%06d" % (micros % 10**6)
    return s + "Z"


def decimal_text(d, scale):
    q = d.scaleb(scale)
    assert q == q.to_integral_value()
    n = int(q)
    digits = str(abs(n)).rjust(scale + 1, "0")
    body = digits if scale == 0 else digits[:-scale] + "." + digits[-scale:]
    return ("-" if n < 0 else "") + body


def convert(value, arrow_type, decl):
    """(text, None) or (None, failure) for one non-null value."""
    t = decl
    if pa.types.is_timestamp(arrow_type):
        factor = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[arrow_type.unit]
        n = value * factor
        if t == "timestamp":
            if n % 1000:
                return None, "sub-microsecond"
            return ts_text(n // 1000), None
        raise ValueError(t)
    if isinstance(value, Decimal):
        if t.startswith("decimal"):
            p, s = map(int, t[8:-1].split(","))
            q = value.scaleb(s)
            if q != q.to_integral_value():
                return None, "scale"
            if abs(int(q)) >= 10**p:
                return None, "overflow"
            return decimal_text(value, s), None
        if t in ("int64", "int32"):
            if value != value.to_integral_value():
                return None, "fraction"
            n = int(value)
        else:
            raise ValueError(t)
    else:
        n = value
    bits = 63 if t == "int64" else 31
    if not (-(2**bits) <= n < 2**bits):
        return None, "range"
    return str(n), None


def expected(tab, decl, first_line=1):
    rows, quarantine = [], []
    cols = {d["name"]: tab.column(d["name"]) for d in decl if d["name"] in tab.column_names}
    values = {n: c.to_pylist() if not pa.types.is_timestamp(c.type) else c.cast(pa.int64()).to_pylist()
              for n, c in cols.items()}
    for i in range(tab.num_rows):
        row, bad = [], None
        for d in decl:
            name = d["name"]
            if name not in cols:
                row.append(None)
                continue
            v = values[name][i]
            if v is None:
                if not d["nullable"] and bad is None:
                    bad = name
                row.append(None)
                continue
            text, failure = convert(v, cols[name].type, d["type"])
            if failure and bad is None:
                bad = name
            row.append(text)
        if bad is None:
            rows.append(row + [first_line + i])
        else:
            quarantine.append([first_line + i, bad])
    return rows, quarantine


cases = []


def add(name, tab, decl, write, error=None, missing="error", extra="error"):
    path = os.path.join(out, name + ".parquet")
    write(path)
    back = pq.read_table(path)   # pyarrow's reading of the file is the reference
    case = {"name": name, "path": path, "columns": decl, "missing_columns": missing, "extra_columns": extra,
            "row_groups": pq.ParquetFile(path).metadata.num_row_groups}
    if error:
        case["error"] = error
    else:
        case["rows"], case["quarantine"] = expected(back, decl)
    cases.append(case)


int96 = dict(use_deprecated_int96_timestamps=True, coerce_timestamps=None)
# INT96 for every timestamp column would make tns INT96 too: write t96 alone as INT96 by a second file? No:
# pyarrow applies int96 to all timestamp columns, so tns becomes INT96 as well (nanoseconds kept).
add("zstd_v1", table, declared, lambda p: pq.write_table(
    table, p, compression="zstd", row_group_size=1000, data_page_size=4096, **int96))
add("none_v2_plain", table, declared, lambda p: pq.write_table(
    table, p, compression="none", row_group_size=700, data_page_version="2.0", use_dictionary=False,
    store_decimal_as_integer=True, **int96))
# Nanoseconds as INT64 TIMESTAMP(NANOS), not INT96.
add("zstd_ns_int64", table.select(["id", "tns", "u64"]), [declared[0], declared[2], declared[6]],
    lambda p: pq.write_table(table.select(["id", "tns", "u64"]), p, compression="zstd", row_group_size=900,
                             version="2.6"))

# A declared column the file lacks: an error naming it, or nulls.
small = table.select(["id", "u8"]).slice(0, 50)
add("missing", small, [declared[0], declared[3], {"name": "zzz", "type": "string", "nullable": True}],
    lambda p: pq.write_table(small, p, compression="zstd"), error=["missing.parquet", "'zzz'"])
add("missing_null", small, [declared[0], declared[3], {"name": "zzz", "type": "string", "nullable": True}],
    lambda p: pq.write_table(small, p, compression="zstd"), missing="null")
add("extra", small, [declared[0]], lambda p: pq.write_table(small, p, compression="zstd"),
    error=["extra.parquet", "'u8'"])
add("extra_ignored", small, [declared[0]], lambda p: pq.write_table(small, p, compression="zstd"), extra="ignore")

# Unsupported features, declared: refused naming file, column and feature.
nested = pa.table({"id": pa.array([1, 2], pa.int64()), "tags": pa.array([["a"], ["b", "c"]]),
                   "when": pa.array([datetime.time(12, 0), None], pa.time64("us"))})
add("nested", nested, [{"name": "id", "type": "int64", "nullable": True}, {"name": "tags", "type": "string", "nullable": True}],
    lambda p: pq.write_table(nested, p, compression="zstd"), error=["nested.parquet", "'tags'", "nested"], extra="ignore")
add("time", nested, [{"name": "when", "type": "string", "nullable": True}],
    lambda p: pq.write_table(nested, p, compression="zstd"), error=["time.parquet", "'when'", "TIME"], extra="ignore")
# Not declared and extra_columns: ignore: the unsupported columns are skipped.
add("nested_ignored", nested, [{"name": "id", "type": "int64", "nullable": True}],
    lambda p: pq.write_table(nested, p, compression="zstd"), extra="ignore")
# An incompatible declaration: refused before any row is read.
add("incompatible", small, [{"name": "id", "type": "date", "nullable": True}, declared[3]],
    lambda p: pq.write_table(small, p, compression="zstd"), error=["incompatible.parquet", "id", "date"])

# BYTE_ARRAY decimals (Hive, older Spark), hand-made: decimal(30,4) into decimal(18,4).
ba_values = [rng.randrange(-(10**18) + 1, 10**18) if rng.random() < 0.9 else rng.randrange(-(10**30) + 1, 10**30)
             for _ in range(400)]
add("byte_array_decimal", None, [{"name": "bd", "type": "decimal(18,4)", "nullable": False}],
    lambda p: write_byte_array_decimal(p, [be_bytes(v) for v in ba_values], 30, 4))

with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump({"cases": cases}, f)
print("ok")
