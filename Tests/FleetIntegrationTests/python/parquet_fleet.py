"""The Parquet-source fleet test's input and its check against DuckDB.

Usage:
  parquet_fleet.py write DIR
      Writes DIR/parquet/events-{1,2,3}.parquet with pyarrow (ZSTD, row groups
      of 300 rows, so each file is several shards): `ts` is INT96 in the
      first file, INT64 nanoseconds in the second (a few with sub-microsecond
      digits), microseconds in the third; `amount` decimal(38,10), `qty`
      uint64 (a few above int64's range), `small` uint32, plus a column the
      spec does not declare. Prints {"files": [...]}.
  parquet_fleet.py check FILES ROOT DATASET
      FILES comma-separated input files. Compares the CURRENT version of
      DATASET under ROOT (manifest checksums checked) with DuckDB's reading
      of the input files, EXCEPT ALL both ways, provenance included
      (_source_file = the file, _source_line = file_row_number + 1). Prints
      {"ok": bool, "rows": n, "quarantined": n, "mismatches": [...]}.
"""
import decimal
import hashlib
import json
import os
import random
import sys
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

decimal.getcontext().prec = 100


def write(d):
    rng = random.Random(11)
    folder = os.path.join(d, "parquet")
    os.makedirs(folder, exist_ok=True)
    files = []
    next_id = 0
    for k in (1, 2, 3):
        n = 1000 + 37 * k
        ids = list(range(next_id, next_id + n))
        next_id += n
        micros = [None if rng.random() < 0.05 else rng.randrange(0, 4102444800 * 10**6) for _ in range(n)]
        if k == 2:
            at = pa.array([None if m is None else m * 1000 + (rng.randrange(1, 1000) if rng.random() < 0.03 else 0)
                           for m in micros], pa.timestamp("ns", tz="UTC"))
        else:
            at = pa.array(micros, pa.timestamp("us", tz="UTC"))
        table = pa.table({
            "id": pa.array(ids, pa.int64()),
            "region": pa.array([None if rng.random() < 0.05 else rng.choice(["EU", "US", "日本", "naïve"]) for _ in range(n)]),
            "ts": at,
            "amount": pa.array([None if rng.random() < 0.05 else Decimal(rng.randrange(-10**18 + 1, 10**18)).scaleb(-4)
                                for _ in range(n)], pa.decimal128(38, 10)),
            "qty": pa.array([rng.randrange(2**63, 2**64) if rng.random() < 0.02 else rng.randrange(0, 10**6)
                             for _ in range(n)], pa.uint64()),
            "small": pa.array([rng.randrange(0, 2**31) for _ in range(n)], pa.uint32()),
            "ignored": pa.array([rng.random() for _ in range(n)], pa.float64()),
        })
        path = os.path.join(folder, f"events-{k}.parquet")
        pq.write_table(table, path, compression="zstd", row_group_size=300, use_deprecated_int96_timestamps=(k == 1))
        files.append(os.path.realpath(path))
    print(json.dumps({"files": files}))


def lst(paths):
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def check(files, root, dataset):
    con = duckdb.connect()
    mismatches = []
    parts = []
    for f in files:
        q = f.replace("'", "''")
        parts.append(f"""SELECT id, region, epoch_ns(ts) AS at_ns, amount, qty, small, '{q}' AS file,
                         file_row_number + 1 AS line FROM read_parquet('{q}', file_row_number = true)""")
    con.execute("CREATE TABLE src AS " + " UNION ALL ".join(parts))
    con.execute("""CREATE TABLE expected AS SELECT id, region, at_ns // 1000 AS at_us, CAST(amount AS DECIMAL(18,4)) AS amount,
                   CAST(qty AS BIGINT) AS qty, CAST(small AS BIGINT) AS small, file, line FROM src
                   WHERE (qty IS NULL OR qty <= 9223372036854775807) AND (at_ns IS NULL OR at_ns % 1000 = 0)""")
    quarantined = con.execute("SELECT count(*) FROM src").fetchone()[0] - con.execute("SELECT count(*) FROM expected").fetchone()[0]
    base = os.path.join(root, "published", dataset)
    with open(os.path.join(base, "CURRENT")) as fh:
        run = fh.read().strip()
    folder = os.path.join(base, run)
    with open(os.path.join(folder, "_manifest.json")) as fh:
        manifest = json.load(fh)
    pub = []
    for entry in manifest.get("files", []):
        path = os.path.join(folder, entry["name"])
        with open(path, "rb") as fh:
            if hashlib.sha256(fh.read()).hexdigest() != entry["sha256"]:
                mismatches.append(f"{entry['name']}: sha256 differs from the manifest")
        pub.append(path)
    if not pub:
        mismatches.append("no published files")
        print(json.dumps({"ok": False, "rows": 0, "quarantined": quarantined, "mismatches": mismatches}))
        return
    con.execute(f"""CREATE TABLE got AS SELECT id, region, epoch_us(ts) AS at_us, amount, qty, CAST(small AS BIGINT) AS small,
                    _source_file AS file, _source_line AS line FROM read_parquet({lst(pub)})""")
    for a, b in (("got", "expected"), ("expected", "got")):
        extra = con.execute(f"SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b} LIMIT 5").fetchall()
        if extra:
            n = con.execute(f"SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})").fetchone()[0]
            mismatches.append(f"{n} rows in {a} and not in {b}, e.g. {extra!r}")
    rows = con.execute("SELECT count(*) FROM got").fetchone()[0]
    if manifest.get("rows") != rows:
        mismatches.append(f"the manifest says {manifest.get('rows')} rows, the files hold {rows}")
    print(json.dumps({"ok": not mismatches, "rows": rows, "quarantined": quarantined, "mismatches": mismatches}, default=str))


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        check(sys.argv[2].split(","), sys.argv[3], sys.argv[4])
