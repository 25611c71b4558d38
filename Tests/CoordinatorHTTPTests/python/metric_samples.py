"""Parses the coordinator's /metrics text with prometheus_client's own parser
and prints what it read, for the Swift test to assert on.

Usage: metric_samples.py METRICS.txt
Prints {"types": {family: type}, "samples": [[sample name, {label: value}, value], ...]}
as JSON; exits 1 naming the problem when the text does not parse.
"""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1], encoding="utf-8").read()
try:
    families = list(text_string_to_metric_families(text))
except Exception as e:  # the parser raises ValueError and friends
    sys.exit(f"prometheus_client cannot parse /metrics: {e}")
print(json.dumps({
    "types": {f.name: f.type for f in families},
    "samples": [[s.name, s.labels, s.value] for f in families for s in f.samples],
}))
