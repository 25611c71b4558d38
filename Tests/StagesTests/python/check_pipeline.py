"""Cross-checks ingest -> normalize -> consolidate against DuckDB running the
equivalent SQL on the same CSV files.

Usage: check_pipeline.py CSVS OURS
  CSVS  comma-separated input CSV files
  OURS  comma-separated consolidated chunks (every partition)

DuckDB reads the CSVs as text with the same null markers, types each column
with TRY_CAST and leaves out the rows where a present value does not cast
(ingest quarantines them), then applies the spec's normalize steps and the
dedupe (latest by day; the generator makes days unique per row, so no ties).

Prints one JSON object: {"ok": bool, "rows": n, "quarantined": n, "mismatches": [...]}.
"""
import json
import sys

import duckdb

csvs, ours = sys.argv[1].split(","), sys.argv[2].split(",")
con = duckdb.connect()


def lst(paths):
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


con.execute(f"""
CREATE TABLE raw AS SELECT * FROM read_csv({lst(csvs)}, header = true, all_varchar = true,
    nullstr = ['', 'NA', 'NULL'], allow_quoted_nulls = false, quote = '"', escape = '"', delim = ',')
""")
con.execute("""
CREATE TABLE typed AS SELECT
    TRY_CAST(id AS BIGINT) AS id, region, TRY_CAST(amount AS DECIMAL(12,2)) AS amount,
    TRY_CAST(qty AS BIGINT) AS qty, TRY_CAST(day AS DATE) AS day, note,
    (id IS NOT NULL AND TRY_CAST(id AS BIGINT) IS NULL)
    OR (amount IS NOT NULL AND TRY_CAST(amount AS DECIMAL(12,2)) IS NULL)
    OR (qty IS NOT NULL AND TRY_CAST(qty AS BIGINT) IS NULL)
    OR (day IS NOT NULL AND TRY_CAST(day AS DATE) IS NULL) AS bad
FROM raw
""")
quarantined = con.execute("SELECT count(*) FROM typed WHERE bad").fetchone()[0]
expected = con.execute("""
WITH normalized AS (
    SELECT id, upper(trim(region)) AS region, amount, qty, day, note,
           amount * qty AS total,
           CASE WHEN amount >= 500 THEN 'high' WHEN amount IS NULL THEN 'none' ELSE 'low' END AS tier
    FROM typed WHERE NOT bad AND (qty IS NULL OR qty > 0)
)
SELECT id, region, amount, qty, day, note, total, tier FROM normalized
QUALIFY row_number() OVER (PARTITION BY id ORDER BY day DESC NULLS LAST) = 1
ORDER BY id
""").fetchall()
got = con.execute(f"""
SELECT id, region, amount, qty, day, note, total, tier FROM read_parquet({lst(ours)}) ORDER BY id
""").fetchall()

mismatches = []
if len(got) != len(expected):
    mismatches.append(f"row count: ours {len(got)}, duckdb {len(expected)}")
for g, e in zip(got, expected):
    if g != e:
        mismatches.append(f"ours {g!r} != duckdb {e!r}")
        if len(mismatches) > 10:
            break
# Each partition's chunks must be sorted by id on their own, too.
for path in ours:
    ids = [r[0] for r in con.execute(f"SELECT id FROM read_parquet('{path}')").fetchall()]
    if ids != sorted(ids):
        mismatches.append(f"{path} is not sorted by id")
print(json.dumps({"ok": not mismatches, "rows": len(expected), "quarantined": quarantined, "mismatches": mismatches}))
