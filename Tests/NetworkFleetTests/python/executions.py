"""Lists a task's executions from the coordinator's lineage store (read-only).

    executions.py DB RUN STAGE INDEX

Prints a JSON list of {"id", "pid", "host", "state", "winner"} (winner: the
task's committed execution is this one), oldest first.
"""
import json
import sqlite3
import sys


def main():
    db, run, stage, index = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    rows = con.execute(
        """SELECT x.id, x.pid, x.host, x.state, t.winner = x.id
           FROM executions x JOIN tasks t ON t.id = x.task
           WHERE t.run = ? AND t.stage = ? AND t.idx = ? ORDER BY x.started_at, x.id""",
        (run, stage, index)).fetchall()
    print(json.dumps([{"id": r[0], "pid": r[1], "host": r[2], "state": r[3], "winner": bool(r[4])} for r in rows]))


if __name__ == "__main__":
    main()
