"""Drives headless Chromium through the dashboard's forms, as a person would:
types a token, clicks Sign in, Run now, Sign out, Approve. Uses the Chrome
DevTools Protocol over a minimal WebSocket client (standard library only; no
chromedriver needed). The pages themselves use no JavaScript: the script only
plays the user (sets a field, clicks a button) and reads what the page shows.

usage: dashboard_clicks.py CHROMIUM PROFILE_DIR BASE_URL PIPELINE OPERATOR_TOKEN APPROVER_TOKEN VIEWER_TOKEN
prints one JSON object with what it saw.
"""
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request


class CDP:
    def __init__(self, ws_url):
        rest = ws_url[len("ws://"):]
        hostport, path = rest.split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("DevTools closed the connection during the handshake")
            buf += chunk
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"DevTools refused the WebSocket: {head!r}")
        self.next_id = 0

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("DevTools closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self):
        payload = b""
        while True:
            b0, b1 = self._read(2)
            length = b1 & 0x7F
            if length == 126:
                length = struct.unpack(">H", self._read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self._read(8))[0]
            mask = self._read(4) if b1 & 0x80 else None
            data = self._read(length)
            if mask:
                data = bytes(c ^ mask[i % 4] for i, c in enumerate(data))
            payload += data
            if b0 & 0x80:
                return payload

    def call(self, method, **params):
        self.next_id += 1
        message = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        header = bytearray([0x81])
        if len(message) < 126:
            header.append(0x80 | len(message))
        elif len(message) < 65536:
            header.append(0x80 | 126)
            header += struct.pack(">H", len(message))
        else:
            header.append(0x80 | 127)
            header += struct.pack(">Q", len(message))
        mask = os.urandom(4)
        self.sock.sendall(bytes(header) + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(message)))
        while True:
            answer = json.loads(self._frame())
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def eval(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, predicate_js, timeout=30.0, what=""):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.eval(f"document.readyState === 'complete' && ({predicate_js})"):
                    return
            except RuntimeError:
                pass   # the page is navigating
            time.sleep(0.1)
        raise RuntimeError(f"timed out waiting for {what or predicate_js}; at {self.eval('location.href')}")

    def goto(self, url):
        self.call("Page.navigate", url=url)
        path = url.split("//", 1)[1].split("/", 1)[1]
        self.wait(f"location.pathname === '/{path}'", what=url)

    def buttons(self):
        return self.eval("[...document.querySelectorAll('form[method=post] button')].map(b => b.textContent)")

    def click(self, label):
        clicked = self.eval("(() => { const b = [...document.querySelectorAll('form[method=post] button')]"
                            f".find(b => b.textContent === {json.dumps(label)}); if (!b) return false; b.click(); return true; }})()")
        if not clicked:
            raise RuntimeError(f"no button '{label}' on {self.eval('location.href')}: {self.buttons()}")


def main():
    chromium, profile, base, pipeline, operator, approver, viewer = sys.argv[1:8]
    os.makedirs(profile, exist_ok=True)
    proc = subprocess.Popen([chromium, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-extensions",
                             f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = {}
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if time.time() > deadline:
                raise RuntimeError("chromium wrote no DevToolsActivePort")
            time.sleep(0.1)
        port = open(port_file).read().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t.get("type") == "page")
        cdp = CDP(page["webSocketDebuggerUrl"])
        cdp.call("Page.enable")

        def sign_in(token):
            cdp.goto(base + "/signin")
            cdp.eval(f"document.querySelector('input[name=token]').value = {json.dumps(token)}")
            cdp.click("Sign in")
            cdp.wait("location.pathname === '/'", what="the runs page after signing in")
            return cdp.eval("document.querySelector('.who').textContent")

        def sign_out():
            cdp.click("Sign out")
            cdp.wait("location.pathname === '/signin'", what="the sign-in page after signing out")

        seen["operator_header"] = sign_in(operator)
        cdp.goto(base + "/pipelines")
        seen["operator_pipeline_buttons"] = cdp.buttons()
        cdp.click("Run now")
        cdp.wait("location.pathname.startsWith('/runs/')", what="the new run's page")
        seen["run"] = cdp.eval("decodeURIComponent(location.pathname.slice('/runs/'.length))")
        sign_out()

        seen["approver_header"] = sign_in(approver)
        run_url = base + "/runs/" + seen["run"]
        deadline = time.time() + 90
        while True:
            cdp.goto(run_url)
            if "Approve" in cdp.buttons():
                break
            if time.time() > deadline:
                raise RuntimeError(f"the run never offered Approve: {cdp.eval('document.body.innerText')[:2000]}")
            time.sleep(0.5)
        seen["approver_run_buttons"] = cdp.buttons()
        cdp.click("Approve")
        cdp.wait(f"location.pathname === '/runs/{seen['run']}' && !document.querySelector('form[action$=\"/approve\"]')",
                 what="the run page after approving")
        seen["after_approve_state"] = cdp.eval("document.querySelector('.state').textContent")
        sign_out()

        seen["viewer_header"] = sign_in(viewer)
        cdp.goto(base + "/pipelines")
        seen["viewer_pipeline_buttons"] = cdp.buttons()
        seen["viewer_pipelines_text"] = cdp.eval("document.body.innerText")
        cdp.goto(run_url)
        seen["viewer_run_buttons"] = cdp.buttons()
    except Exception as error:   # report what happened, with what was seen so far
        seen["error"] = str(error)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
