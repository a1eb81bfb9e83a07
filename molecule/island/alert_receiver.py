#!/usr/bin/python3
"""TEST EQUIPMENT (island scenario, verify_alerts.yml): an HTTP receiver for Alertmanager's webhook.

    alert_receiver.py serve <address> <port> <record file>
    alert_receiver.py find <record file> <label>=<value>...

serve: each POST's body, which must be JSON (Alertmanager's webhook payload, version 4), is appended
to the record file as one line; the answer is 200. Anything else is refused (405, or 400 for a body
that is not JSON), so a misdirected sender shows in the record's absence.

find: prints the first firing alert recorded whose labels have every <label>=<value>, with the
receiver and status of the notification that carried it, and exits 0; exits 1 when there is none.
Standard library only.
"""

import http.server
import json
import sys


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(body)
        except ValueError:
            self.send_error(400, "not JSON")
            return
        with open(self.server.record, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"path": self.path, "payload": payload}, sort_keys=True) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        self.send_error(405, "POST only")


def serve(address, port, record):
    server = http.server.ThreadingHTTPServer((address, int(port)), Receiver)
    server.record = record
    server.serve_forever()


def find(record, *wanted):
    labels = dict(item.split("=", 1) for item in wanted)
    try:
        with open(record, encoding="utf-8") as handle:
            lines = handle.readlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        entry = json.loads(line)
        payload = entry["payload"]
        for alert in payload.get("alerts", []):
            if alert.get("status") == "firing" and all(
                alert["labels"].get(k) == v for k, v in labels.items()
            ):
                found = {
                    "receiver": payload.get("receiver"),
                    "notification": payload.get("status"),
                    "alert": alert,
                }
                print(json.dumps(found | {"path": entry["path"]}, sort_keys=True))
                return 0
    print(f"no firing alert with {labels} among {len(lines)} notifications")
    return 1


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(*sys.argv[2:5])
    sys.exit(find(*sys.argv[2:]))
