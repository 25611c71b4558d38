"""A tiny delivery endpoint for the deliver tests (stdlib only).

Usage: deliver_server.py RECORD_FILE

Listens on 127.0.0.1 on a free port and prints the port on the first line of
stdout. Every POST is appended to RECORD_FILE as one JSON line: path, the
Idempotency-Key, Authorization and Content-Type headers, the body, and the
status it answered. Answers:
  /redirect    307 to /receipts (the client must not follow it with the token)
  /fail        500 with a long body that echoes the Authorization header
               (so the test can check the token is masked in errors)
  otherwise    201 for a new Idempotency-Key, 409 for one seen before
"""
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

record_file = sys.argv[1]
seen = set()
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        key = self.headers.get("Idempotency-Key")
        auth = self.headers.get("Authorization")
        with lock:
            if self.path == "/redirect":
                status = 307
                answer = "moved"
            elif self.path == "/fail":
                status = 500
                answer = "database is down; request carried " + str(auth) + " " + "x" * 4000
            elif key in seen:
                status = 409
                answer = '{"error": "already delivered"}'
            else:
                seen.add(key)
                status = 201
                answer = '{"ok": true}'
            with open(record_file, "a") as f:
                f.write(json.dumps({
                    "path": self.path,
                    "idempotency_key": key,
                    "authorization": auth,
                    "content_type": self.headers.get("Content-Type"),
                    "body": body,
                    "status": status,
                }) + "\n")
        data = answer.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        if status == 307:
            self.send_header("Location", "/receipts")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


# A child of the test process may inherit SIGTERM blocked; let it stop us.
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
signal.signal(signal.SIGTERM, signal.SIG_DFL)
server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
