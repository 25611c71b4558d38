"""Writes Parquet files with pyarrow and DuckDB at their default encodings
(and a few variants), plus manifest.json with the expected column types and
values as canonical strings, and for each file the error (a word the
message must contain) our reader must raise instead, if any.

usage: write_foreign.py OUTDIR
"""
import datetime
import json
import os
import random
import struct
import sys
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

out = sys.argv[1]
rng = random.Random(42)
N = 3000
EPOCH = datetime.date(1970, 1, 1)
UTC = datetime.timezone.utc


def maybe(v, p=0.1):
    return None if rng.random() < p else v


i64 = [maybe(rng.choice([-(2**63), 2**63 - 1, 0, -1, rng.randrange(-(2**63), 2**63)])) for _ in range(N)]
i32 = [rng.choice([-(2**31), 2**31 - 1, rng.randrange(-1000, 1000)]) for _ in range(N)]
f64 = [maybe(rng.choice([float("nan"), -0.0, 0.0, float("inf"), float("-inf"), rng.uniform(-1e9, 1e9)])) for _ in range(N)]
flag = [maybe(rng.random() < 0.5) for _ in range(N)]
words = ["", "a", "é", "日本語", "🎉", "naïve café", "zebra"]
s_low = [maybe(rng.choice(words)) for _ in range(N)]
s_high = [f"id-{rng.randrange(10**12)}-{'ü' * rng.randrange(5)}" for _ in range(N)]
days = [maybe(rng.randrange(-719162, 2932896)) for _ in range(N)]
micros = [maybe(rng.randrange(-62135596800 * 10**6, 253402300799 * 10**6)) for _ in range(N)]
dec = [maybe(rng.randrange(-(10**15) + 1, 10**15)) for _ in range(N)]
dec9 = [rng.randrange(-(10**9) + 1, 10**9) for _ in range(N)]
seq = list(range(N))

table = pa.table({
    "i64": pa.array(i64, pa.int64()),
    "i32": pa.array(i32, pa.int32()),
    "f64": pa.array(f64, pa.float64()),
    "flag": pa.array(flag, pa.bool_()),
    "s_low": pa.array(s_low, pa.string()),
    "s_high": pa.array(s_high, pa.string()),
    "day": pa.array([None if d is None else EPOCH + datetime.timedelta(days=d) for d in days], pa.date32()),
    "ts": pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
    "dec": pa.array([None if v is None else Decimal(v).scaleb(-2) for v in dec], pa.decimal128(15, 2)),
    "dec9": pa.array([Decimal(v).scaleb(-3) for v in dec9], pa.decimal128(9, 3)),
    "seq": pa.array(seq, pa.int64()),
})


def canon_list(vals, kind):
    res = []
    for v in vals:
        if v is None:
            res.append(None)
        elif kind == "double":
            res.append(repr(v))
        elif kind == "bool":
            res.append("true" if v else "false")
        else:
            res.append(str(v))
    return res


expected = [
    {"name": "i64", "type": "int64", "values": canon_list(i64, "int")},
    {"name": "i32", "type": "int32", "values": canon_list(i32, "int")},
    {"name": "f64", "type": "double", "values": canon_list(f64, "double")},
    {"name": "flag", "type": "bool", "values": canon_list(flag, "bool")},
    {"name": "s_low", "type": "string", "values": canon_list(s_low, "str")},
    {"name": "s_high", "type": "string", "values": canon_list(s_high, "str")},
    {"name": "day", "type": "date", "values": canon_list(days, "int")},
    {"name": "ts", "type": "timestamp", "values": canon_list(micros, "int")},
    {"name": "dec", "type": "decimal(15,2)", "values": canon_list(dec, "int")},
    {"name": "dec9", "type": "decimal(9,3)", "values": canon_list(dec9, "int")},
    {"name": "seq", "type": "int64", "values": canon_list(seq, "int")},
]
files = []


def add(name, writer, error=None):
    path = os.path.join(out, name)
    writer(path)
    files.append({"path": path, "error": error})


small = dict(row_group_size=1000, data_page_size=8192)
add("pyarrow_zstd.parquet", lambda p: pq.write_table(table, p, compression="zstd", **small))
add("pyarrow_none.parquet", lambda p: pq.write_table(table, p, compression="none", **small))
add("pyarrow_zstd_v2.parquet", lambda p: pq.write_table(table, p, compression="zstd", data_page_version="2.0", **small))
add("pyarrow_plain_int_decimals.parquet", lambda p: pq.write_table(
    table, p, compression="zstd", use_dictionary=False, store_decimal_as_integer=True, **small))
add("pyarrow_delta_bss.parquet", lambda p: pq.write_table(
    table, p, compression="zstd", use_dictionary=False, data_page_version="2.0",
    column_encoding={"i64": "DELTA_BINARY_PACKED", "i32": "DELTA_BINARY_PACKED", "seq": "DELTA_BINARY_PACKED",
                     "f64": "BYTE_STREAM_SPLIT", "s_low": "DELTA_LENGTH_BYTE_ARRAY",
                     "s_high": "DELTA_BYTE_ARRAY", "flag": "RLE"}, **small))
add("pyarrow_defaults.parquet", lambda p: pq.write_table(table, p, compression="zstd"))
# A 1 KiB dictionary limit makes pyarrow fall back to PLAIN pages mid-chunk.
add("pyarrow_dictionary_fallback.parquet", lambda p: pq.write_table(
    table, p, compression="zstd", dictionary_pagesize_limit=1024, write_batch_size=64, **small))

# SNAPPY (pyarrow's and DuckDB's default) and GZIP, v1 and v2 pages.
add("pyarrow_snappy.parquet", lambda p: pq.write_table(table, p, compression="snappy", **small))
add("pyarrow_snappy_v2.parquet", lambda p: pq.write_table(table, p, compression="snappy", data_page_version="2.0", **small))
add("pyarrow_gzip.parquet", lambda p: pq.write_table(table, p, compression="gzip", **small))
add("pyarrow_gzip_v2.parquet", lambda p: pq.write_table(table, p, compression="gzip", data_page_version="2.0", **small))

con = duckdb.connect()
con.register("t", table)
for name, opts in [
    ("duckdb_zstd.parquet", "COMPRESSION zstd, ROW_GROUP_SIZE 1024"),
    ("duckdb_none.parquet", "COMPRESSION uncompressed, ROW_GROUP_SIZE 1024"),
    ("duckdb_zstd_v2.parquet", "COMPRESSION zstd, PARQUET_VERSION v2, ROW_GROUP_SIZE 1024"),
    ("duckdb_defaults.parquet", "COMPRESSION zstd"),
    ("duckdb_snappy.parquet", "COMPRESSION snappy, ROW_GROUP_SIZE 1024"),
    ("duckdb_gzip.parquet", "COMPRESSION gzip, PARQUET_VERSION v2, ROW_GROUP_SIZE 1024"),
]:
    add(name, lambda p, opts=opts: con.execute(f"COPY (SELECT * FROM t ORDER BY seq) TO '{p}' (FORMAT parquet, {opts})"))

# Other DuckDB types that map onto ours, with their own expected columns.
R = range(0, 100)
other_columns = [
    {"name": "small", "type": "int32", "values": [str(i - 50) for i in R]},
    {"name": "tiny", "type": "int32", "values": [str(i % 100 - 50) for i in R]},
    {"name": "utiny", "type": "int32", "values": [str(i * 2) for i in R]},
    {"name": "f", "type": "double", "values": [repr(struct.unpack("<f", struct.pack("<f", i / 7.0))[0]) for i in R]},
    {"name": "blob", "type": "string", "values": [f"b{i}" for i in R]},
    {"name": "naive", "type": "timestamp", "values": [str((1577836800 + i) * 10**6) for i in R]},
    {"name": "ms", "type": "timestamp", "values": [str((1577836800 + 60 * i) * 10**6 + 123000) for i in R]},
]
add("duckdb_other_types.parquet", lambda p: con.execute(f"""COPY (SELECT (i - 50)::SMALLINT AS small,
    (i % 100 - 50)::TINYINT AS tiny, (i * 2)::UTINYINT AS utiny, (i / 7.0)::FLOAT AS f,
    ('b' || i)::BLOB AS blob, TIMESTAMP '2020-01-01' + to_seconds(i) AS naive,
    (TIMESTAMP '2020-01-01 00:00:00.123' + to_minutes(i))::TIMESTAMP_MS AS ms
    FROM range(0, 100) t(i) ORDER BY i) TO '{p}' (FORMAT parquet, COMPRESSION zstd)"""))
files[-1]["columns"] = other_columns

# Files our reader must refuse with a clear error naming the feature.
add("pyarrow_brotli.parquet", lambda p: pq.write_table(table, p, compression="brotli"), error="BROTLI")
add("pyarrow_lz4.parquet", lambda p: pq.write_table(table, p, compression="lz4"), error="LZ4")
add("pyarrow_list.parquet", lambda p: pq.write_table(pa.table({"l": pa.array([[1, 2], [3]])}), p), error="nested")
add("pyarrow_int96.parquet", lambda p: pq.write_table(
    table.select(["ts"]), p, use_deprecated_int96_timestamps=True), error="INT96")
add("duckdb_uint32.parquet", lambda p: con.execute(
    f"COPY (SELECT 1::UINTEGER AS u) TO '{p}' (FORMAT parquet)"), error="UINT")
add("duckdb_time.parquet", lambda p: con.execute(
    f"COPY (SELECT TIME '12:00:00' AS t) TO '{p}' (FORMAT parquet, COMPRESSION zstd)"), error="TIME")
add("duckdb_uuid.parquet", lambda p: con.execute(
    f"COPY (SELECT uuid() AS id) TO '{p}' (FORMAT parquet, COMPRESSION zstd)"), error="UUID")
add("pyarrow_ns.parquet", lambda p: pq.write_table(
    pa.table({"t": pa.array([1, 2], pa.timestamp("ns", tz="UTC"))}), p), error="nanoseconds")

with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump({"columns": expected, "files": files}, f, ensure_ascii=False)
print("ok")
