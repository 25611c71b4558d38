"""Reads our ingest chunk with pyarrow and the same CSV with pyarrow.csv and
DuckDB's read_csv, all with the same column types, and checks the three
tables are equal; then checks our provenance columns: `_source_file` is
INPUT.csv as given and `_source_line` the line each record starts on, as
Python's csv module counts them.   ingest_crosscheck.py INPUT.csv OURS.parquet
Prints 'ok ROWS' or the first difference; exits 1 on a difference."""
import csv
import sys
import warnings

warnings.simplefilter("ignore")

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

src, ours_path = sys.argv[1], sys.argv[2]
schema = pa.schema([
    ("id", pa.int64()), ("qty", pa.decimal128(15, 2)), ("name", pa.string()), ("day", pa.date32()),
    ("at", pa.timestamp("us", tz="UTC")), ("flag", pa.bool_()), ("ratio", pa.float64()), ("small", pa.int32()),
])
nulls = ["", "NA", "NULL"]

provenance = [pa.field("_source_file", pa.string(), nullable=False), pa.field("_source_line", pa.int64(), nullable=False)]
ours = pq.read_table(ours_path)
if ours.schema != pa.schema(list(schema) + provenance):
    print(f"schema differs:\n{ours.schema}\nexpected\n{schema} and {provenance}")
    sys.exit(1)

arrow = pacsv.read_csv(
    src,
    parse_options=pacsv.ParseOptions(newlines_in_values=True),
    convert_options=pacsv.ConvertOptions(
        column_types=schema, null_values=nulls, strings_can_be_null=True,
        quoted_strings_can_be_null=False, true_values=["true"], false_values=["false"]),
).select(schema.names).cast(schema)

con = duckdb.connect()
con.execute("SET threads = 1")
con.execute("SET TimeZone = 'UTC'")
types = {"id": "BIGINT", "qty": "DECIMAL(15,2)", "name": "VARCHAR", "day": "DATE", "at": "TIMESTAMPTZ",
         "flag": "BOOLEAN", "ratio": "DOUBLE", "small": "INTEGER"}
cols = ", ".join(f"'{k}': '{v}'" for k, v in types.items())
duck = con.execute(
    f"SELECT * FROM read_csv(?, header = true, delim = ',', quote = '\"', escape = '\"', "
    f"columns = {{{cols}}}, nullstr = ['', 'NA', 'NULL'], allow_quoted_nulls = false)",
    [src]).to_arrow_table()
duck = (duck.read_all() if hasattr(duck, "read_all") else duck).cast(schema)

for name, other in (("pyarrow.csv", arrow), ("duckdb", duck)):
    if other.num_rows != ours.num_rows:
        print(f"{name} has {other.num_rows} rows, ours {ours.num_rows}")
        sys.exit(1)
    for col in schema.names:
        a, b = ours.column(col).to_pylist(), other.column(col).to_pylist()
        if a != b:
            i = next(i for i in range(len(a)) if a[i] != b[i])
            print(f"{name} differs in column {col} row {i}: ours {a[i]!r}, theirs {b[i]!r}")
            sys.exit(1)
starts = []
with open(src, newline="", encoding="utf-8-sig") as f:
    reader = csv.reader(f)
    start = 1
    for rec in reader:
        line, start = start, reader.line_num + 1
        if rec:
            starts.append(line)
starts = starts[1:]  # the header
if ours.column("_source_line").to_pylist() != starts:
    a = ours.column("_source_line").to_pylist()
    i = next((i for i in range(min(len(a), len(starts))) if a[i] != starts[i]), min(len(a), len(starts)))
    print(f"_source_line differs at row {i}: ours {a[i:i + 3]}, csv module {starts[i:i + 3]}")
    sys.exit(1)
if set(ours.column("_source_file").to_pylist()) != {src}:
    print(f"_source_file is {set(ours.column('_source_file').to_pylist())}, not {src}")
    sys.exit(1)
print(f"ok {ours.num_rows}")
