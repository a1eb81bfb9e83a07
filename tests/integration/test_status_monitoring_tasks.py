"""playbooks/tasks/status-monitoring.yml as receipt.yml and status.yml run it, against a stand-in for
the island's Prometheus: Python's HTTPS server with a throwaway CA's certificate, Prometheus's basic
auth and its API envelope (/api/v1/targets, /api/v1/alerts). The task file asks it once with the
model's account and the password file, over TLS verified against the CA, and island_status_page
shows what it answered; a refused password or a Prometheus that is down is a warning, not a failure."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import threading

import pytest

from tests.support import ROOT
from tests.support.net import free_port
from tests.support.pki import server_pki
from tests.support.playbook import run_local_tasks
from tests.support.status_receipt import receipt

USER, PASSWORD = "island-monitor", "p-secret-123"


class FakePrometheus:
    """/api/v1/targets answers `unknown` health for the first ``unknown_first`` requests, then `up`."""

    def __init__(self, pki, unknown_first=1):
        self.requests, self.unknown_first = [], unknown_first
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="Prometheus"')
                    self.end_headers()
                    return
                fake.requests.append(self.path)
                if self.path == "/api/v1/targets":
                    seen = sum(p == self.path for p in fake.requests)
                    health = "unknown" if seen <= fake.unknown_first else "up"
                    target = {"labels": {"job": "node", "instance": "10.77.0.10:9100", "host": "infra1"}}
                    data = {"activeTargets": [{**target, "health": health, "lastError": ""}]}
                elif self.path == "/api/v1/alerts":
                    data = {"alerts": []}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                body = json.dumps({"status": "success", "data": data}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.port = free_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki["cert"], pki["key"])
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _play(tmp_path, port, ca, page):
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    source = tmp_path / "island-receipt.json"
    source.write_text(json.dumps(receipt()))
    island = {
        "pki": {"trust_bundle": str(ca)},
        "scrape": [
            {
                "job": "prometheus",
                "component": "prometheus",
                "auth": {"kind": "basic", "user": USER, "secret": "monitoring-prometheus-password"},
                "targets": [
                    {"host": "localhost", "address": "127.0.0.1", "port": port, "target": f"127.0.0.1:{port}"}
                ],
            }
        ],
    }
    return [
        {
            "name": "The model and the secrets directory",
            "ansible.builtin.set_fact": {"island": island, "island_secrets_dir": str(secrets)},
        },
        {
            "name": "The task file under test",
            "ansible.builtin.import_tasks": str(ROOT / "playbooks" / "tasks" / "status-monitoring.yml"),
        },
        {
            "name": "The page is written",
            "island_status_page": {
                "receipt_path": str(source),
                "path": str(page),
                "prometheus": "{{ _status_monitoring if _status_monitoring else omit }}",
            },
            "register": "_page",
        },
        {"name": "Shown", "ansible.builtin.debug": {"msg": "MONITORING={{ _page.monitoring }}"}},
    ]


@pytest.fixture
def pki(tmp_path):
    return server_pki(tmp_path / "pki", "prometheus.island.internal", ["127.0.0.1"])


def test_prometheus_is_asked_with_the_account_over_verified_tls_until_every_target_was_scraped(tmp_path, pki):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "monitoring-prometheus-password").write_text(PASSWORD)
    prometheus = FakePrometheus(pki, unknown_first=1)
    page = tmp_path / "island-status.html"
    try:
        result = run_local_tasks(tmp_path, _play(tmp_path, prometheus.port, pki["ca"], page))
    finally:
        prometheus.stop()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert PASSWORD not in output
    assert "MONITORING=present" in output
    # asked again while the target was still `unknown`, then the alerts once
    assert prometheus.requests == ["/api/v1/targets", "/api/v1/targets", "/api/v1/alerts"]
    text = page.read_text()
    assert '<tr data-target="node/10.77.0.10:9100">' in text and 'class="badge ok">up' in text


def test_a_refused_password_or_a_prometheus_that_is_down_warns_and_the_run_goes_on(tmp_path, pki):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "monitoring-prometheus-password").write_text("not-the-password")
    prometheus = FakePrometheus(pki)
    page = tmp_path / "island-status.html"
    try:
        refused = run_local_tasks(tmp_path, _play(tmp_path, prometheus.port, pki["ca"], page))
    finally:
        prometheus.stop()
    output = " ".join((refused.stdout + refused.stderr).split())
    assert refused.returncode == 0, output
    assert "answered 401: the account was refused" in output and "MONITORING=unreachable" in output
    assert 'data-monitoring="unreachable"' in page.read_text()

    down = run_local_tasks(tmp_path, _play(tmp_path, free_port(), pki["ca"], page))
    output = " ".join((down.stdout + down.stderr).split())
    assert down.returncode == 0, output
    assert "could not be asked" in output and "MONITORING=unreachable" in output


def test_an_island_without_monitoring_asks_nothing(tmp_path, pki):
    page = tmp_path / "island-status.html"
    tasks = _play(tmp_path, free_port(), pki["ca"], page)
    tasks[0]["ansible.builtin.set_fact"]["island"]["scrape"] = []
    result = run_local_tasks(tmp_path, tasks)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MONITORING=absent" in result.stdout
    assert 'data-monitoring="absent"' in page.read_text()
