"""Writes Parquet files with the types other systems write and our chunk
reader refuses (INT96 and nanosecond timestamps, UINT_32/UINT_64, decimals
of 19 to 38 digits), plus manifest.json with pyarrow's reading of each
column as ParquetSourceReader must see it: its kind and every value as a
canonical string (integers; decimals unscaled; timestamps in nanoseconds
since the epoch), null as None. Also a file of unsupported columns with the
word each refusal must contain.

usage: write_source_types.py OUTDIR
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

from handmade_parquet import be_bytes, write_byte_array_decimal

decimal.getcontext().prec = 100   # exact: Decimal's default 28 digits would round
out = sys.argv[1]
rng = random.Random(5)
N = 1800


def maybe(v, p=0.1):
    return None if rng.random() < p else v


table = pa.table({
    "u8": pa.array([maybe(rng.randrange(256)) for _ in range(N)], pa.uint8()),
    "u32": pa.array([maybe(rng.choice([0, 2**32 - 1, rng.randrange(2**32)])) for _ in range(N)], pa.uint32()),
    "u64": pa.array([maybe(rng.choice([0, 2**63, 2**64 - 1, rng.randrange(2**64)])) for _ in range(N)], pa.uint64()),
    "d9": pa.array([maybe(Decimal(rng.randrange(-10**9 + 1, 10**9)).scaleb(-2)) for _ in range(N)], pa.decimal128(9, 2)),
    "d20": pa.array([maybe(Decimal(rng.randrange(-10**20 + 1, 10**20)).scaleb(-3)) for _ in range(N)], pa.decimal128(20, 3)),
    "d38": pa.array([maybe(Decimal(rng.choice([10**38 - 1, -(10**38) + 1, rng.randrange(-10**38 + 1, 10**38)])).scaleb(-10))
                     for _ in range(N)], pa.decimal128(38, 10)),
    "ts": pa.array([maybe(rng.randrange(-2**62, 2**62)) for _ in range(N)], pa.timestamp("ns", tz="UTC")),
    "old": pa.array([maybe(rng.randrange(-10**15, 10**15) * 1000) for _ in range(N)], pa.timestamp("ns")),
})
kinds = {"u8": "int32", "u32": "uint32", "u64": "uint64", "d9": "decimal(9,2)", "d20": "decimal(20,3)",
         "d38": "decimal(38,10)", "ts": "timestamp(ns)", "old": "timestamp(ns)"}


def canonical(col, back):
    t = back.column(col).type
    vals = back.column(col).cast(pa.int64()).to_pylist() if pa.types.is_timestamp(t) else back.column(col).to_pylist()
    res = []
    for v in vals:
        if v is None:
            res.append(None)
        elif isinstance(v, Decimal):
            res.append(str(int(v.scaleb(t.scale))))
        else:
            res.append(str(v))
    return res


files = []


def add(name, tab, write):
    path = os.path.join(out, name)
    write(path)
    back = pq.read_table(path)
    cols = []
    for c in tab.column_names:
        cols.append({"name": c, "kind": kinds[c], "values": canonical(c, back)})
    files.append({"path": path, "columns": cols})


add("source_zstd_int96.parquet", table, lambda p: pq.write_table(
    table, p, compression="zstd", row_group_size=500, use_deprecated_int96_timestamps=True))
add("source_none_v2_plain.parquet", table, lambda p: pq.write_table(
    table, p, compression="none", row_group_size=700, data_page_version="2.0", use_dictionary=False,
    store_decimal_as_integer=True))
add("source_zstd_dictionary.parquet", table, lambda p: pq.write_table(
    table, p, compression="zstd", row_group_size=N, data_page_size=2048))

# BYTE_ARRAY decimals (pyarrow cannot write them): minimal big-endian
# bytes, some with sign-extension bytes in front (up to 16 bytes).
for name, p, sc in (("byte_array_decimal_30_4.parquet", 30, 4), ("byte_array_decimal_9_2.parquet", 9, 2)):
    vals = [rng.choice([0, -1, 10**p - 1, -(10**p) + 1, rng.randrange(-(10**p) + 1, 10**p)]) for _ in range(300)]
    enc = [be_bytes(v, pad=rng.choice([0, 0, 1, 3])) for v in vals]
    enc = [e[-16:] if len(e) > 16 else e for e in enc]
    path = os.path.join(out, name)
    write_byte_array_decimal(path, enc, p, sc)
    back = pq.read_table(path)
    kinds["bd"] = f"decimal({p},{sc})"
    files.append({"path": path, "columns": [{"name": "bd", "kind": kinds["bd"], "values": canonical("bd", back)}]})

unsupported = pa.table({
    "id": pa.array([1, 2], pa.int64()),
    "tags": pa.array([["a"], ["b", "c"]]),
    "point": pa.array([{"x": 1, "y": 2}, None]),
    "at": pa.array([datetime.time(12, 0), None], pa.time64("us")),
    "key": pa.array([b"0123456789abcdef", b"fedcba9876543210"], pa.uuid()),
})
path = os.path.join(out, "unsupported.parquet")
pq.write_table(unsupported, path, compression="zstd")

with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump({"files": files, "unsupported": {"path": path, "refusals": {
        "tags": "nested", "point": "nested", "at": "TIME", "key": "UUID"}}}, f)
print("ok")
