"""Computes validate's rules in SQL with DuckDB over the input chunk and
compares the passing rows with ours.

Usage: check_validate_rules.py INPUT VALIDATED
  INPUT      the consolidated chunk (columns id int64, amount decimal(12,2), flag string)
  VALIDATED  comma-separated validated chunks written by our validate

The rules (the Swift test uses the same):
  not_null id; range amount [0, 5.00); allowed flag in (A, B);
  regex flag full-matches [A-C]; expression amount * 2 > 1; unique id
  (the first row of an id in file order passes). Nulls pass every rule
  but not_null.

Prints one JSON object: {"counts": {rule: failing rows}, "passed": n,
"failed": n, "same_rows": bool}.
"""
import json
import sys

import duckdb

src, validated = sys.argv[1], sys.argv[2].split(",") if sys.argv[2] else []
con = duckdb.connect()
con.execute("create table t as select *, file_row_number as rn from read_parquet(?, file_row_number=true)", [src])
con.execute("""
create table f as select rn,
  id is null as not_null_id,
  amount is not null and not (amount >= 0 and amount < 5.00) as range_amount,
  flag is not null and flag not in ('A', 'B') as allowed_flag,
  flag is not null and not regexp_full_match(flag, '[A-C]') as regex_flag,
  coalesce(not (amount * 2 > 1), false) as positive,
  id is not null and row_number() over (partition by id order by rn) > 1 as unique_id
from t
""")
rules = ["not_null_id", "range_amount", "allowed_flag", "regex_flag", "positive", "unique_id"]
counts = {r: con.execute(f"select count(*) from f where {r}").fetchone()[0] for r in rules}
any_fail = " or ".join(rules)
failed = con.execute(f"select count(*) from f where {any_fail}").fetchone()[0]
expected = con.execute(
    f"select id, amount, flag from t join f using (rn) where not ({any_fail}) order by rn").fetchall()
ours = con.execute("select id, amount, flag from read_parquet(?)", [validated]).fetchall() if validated else []
print(json.dumps({"counts": counts, "passed": len(expected), "failed": failed, "same_rows": expected == ours}))
