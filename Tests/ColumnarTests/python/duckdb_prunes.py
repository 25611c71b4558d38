"""Proves DuckDB skips row groups by our statistics: damages every column
chunk of row group 0, checks that a full scan now fails, then checks that a
query whose filter excludes row group 0 still succeeds with the right sum.

usage: duckdb_prunes.py FILE.parquet COLUMN LOW EXPECTED_COUNT EXPECTED_SUM
"""
import shutil
import sys

import duckdb
import pyarrow.parquet as pq

path, column, low, want_count, want_sum = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
damaged = path + ".damaged.parquet"
shutil.copy(path, damaged)
meta = pq.ParquetFile(path).metadata
rg = meta.row_group(0)
with open(damaged, "r+b") as f:
    for j in range(rg.num_columns):
        c = rg.column(j)
        start = c.dictionary_page_offset or c.data_page_offset
        f.seek(start)
        f.write(b"\xff" * c.total_compressed_size)

con = duckdb.connect()
try:
    con.execute(f'SELECT sum("{column}") FROM read_parquet(?)', [damaged]).fetchall()
    print("control failed: a full scan of the damaged file succeeded")
    sys.exit(1)
except duckdb.Error:
    pass
count, total = con.execute(
    f'SELECT count(*), sum("{column}") FROM read_parquet(?) WHERE "{column}" >= ?', [damaged, low]
).fetchone()
if (count, total) != (want_count, want_sum):
    print(f"filtered scan returned {(count, total)}, expected {(want_count, want_sum)}")
    sys.exit(1)
print("ok")
