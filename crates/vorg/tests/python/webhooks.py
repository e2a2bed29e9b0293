"""A webhook receiver and sender built on the Standard Webhooks library (`standardwebhooks`
from PyPI, which nobody on the vorg team wrote).

receive SECRET_FILE LOG
    Serves HTTP on 127.0.0.1 (the port is printed on the first line). Every request is
    verified with `standardwebhooks.Webhook(secret).verify(body, headers)`, the secret read
    from SECRET_FILE at each request (it is known once the subscription exists), and appended to
    LOG as one JSON line: {path, msg_id, verified, error, type, n} where n counts the
    requests with that msg_id on that path. The path says how to answer:
      /ok          204
      /fail/K      500 (with Retry-After: 0) for the first K requests of a message, then 204
      /gone        410
      /slow/S      waits S seconds, then 204
send URL SECRET BODY
    POSTs BODY to URL signed with the library (a new msg id), prints the status and body.
"""

import json
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


def receive(secret_file: str, log_path: str) -> None:
    lock = threading.Lock()
    counts: dict = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified, error, kind = False, None, None
            try:
                with open(secret_file) as f:
                    hook = Webhook(f.read().strip())
                payload = hook.verify(body, headers)
                verified = True
                kind = payload.get("type") if isinstance(payload, dict) else None
            except Exception as e:  # the library's verification error
                error = f"{type(e).__name__}: {e}"
            msg_id = headers.get("webhook-id")
            with lock:
                key = (self.path, msg_id)
                counts[key] = counts.get(key, 0) + 1
                n = counts[key]
                with open(log_path, "a") as f:
                    f.write(json.dumps({"path": self.path, "msg_id": msg_id, "verified": verified,
                                        "error": error, "type": kind, "n": n,
                                        "body": body.decode("utf-8", "replace")}) + "\n")
            parts = self.path.strip("/").split("/")
            status, extra = 204, {}
            if parts[0] == "fail" and n <= int(parts[1]):
                status, extra = 500, {"Retry-After": "0"}
            elif parts[0] == "gone":
                status = 410
            elif parts[0] == "slow":
                time.sleep(float(parts[1]))
            self.send_response(status)
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def send(url: str, secret: str, body: str) -> None:
    hook = Webhook(secret)
    msg_id = "msg_" + str(time.time_ns())
    now = datetime.now(tz=timezone.utc)
    signature = hook.sign(msg_id, now, body)
    req = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    })
    try:
        with urllib.request.urlopen(req) as resp:
            print(resp.status, resp.read().decode())
    except urllib.error.HTTPError as e:
        print(e.code, e.read().decode())


if __name__ == "__main__":
    if sys.argv[1] == "receive":
        receive(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
