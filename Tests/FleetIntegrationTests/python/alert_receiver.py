"""A webhook receiver for the alert tests: records every POST, answers 500
to the first N requests of each path named in --fail (PATH=N), 200 after.

Usage: alert_receiver.py PORT_FILE LOG_FILE [--fail /flaky=3 ...]
Writes the port it listens on (127.0.0.1, chosen by the OS) to PORT_FILE,
then one JSON line per request to LOG_FILE: path, status answered, headers
(lower-case names), body as text.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, log_file = sys.argv[1], sys.argv[2]
fail = {}
args = sys.argv[3:]
while args:
    if args[0] == "--fail":
        path, n = args[1].split("=")
        fail[path] = int(n)
        args = args[2:]
    else:
        sys.exit("unknown argument " + args[0])

lock = threading.Lock()
seen = {}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode("utf-8", "replace")
        with lock:
            seen[self.path] = seen.get(self.path, 0) + 1
            status = 500 if seen[self.path] <= fail.get(self.path, 0) else 200
            with open(log_file, "a") as f:
                f.write(json.dumps({"path": self.path, "status": status,
                                    "headers": {k.lower(): v for k, v in self.headers.items()},
                                    "body": body}) + "\n")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *a):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.replace(port_file + ".tmp", port_file)
server.serve_forever()
