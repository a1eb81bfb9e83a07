"""The status page through ansible-playbook (island_status_page), then opened in a real headless
browser (Debian's chromium): its rendered DOM is checked and a screenshot is kept in
.cache/screenshots/status-page.png. The browser is kept off every network: a proxy on the discard
port of loopback and a resolver that finds no name, so nothing but the file is loaded."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support.playbook import run_local_tasks
from tests.support.status_receipt import receipt

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".cache" / "screenshots"


def _task(receipt_path: Path, page: Path, prometheus: dict | None = None) -> list:
    args = {"receipt_path": str(receipt_path), "path": str(page)}
    if prometheus is not None:
        args["prometheus"] = prometheus
    return [
        {"name": "The page is written", "island_status_page": args, "register": "_page"},
        {
            "name": "The result is shown",
            "ansible.builtin.debug": {
                "msg": "CHANGED={{ _page.changed }} REWRITTEN={{ _page.rewritten }} "
                "MONITORING={{ _page.monitoring }}"
            },
        },
    ]


# Prometheus's answers as ansible.builtin.uri returns them (playbooks/tasks/status-monitoring.yml):
# /api/v1/targets and /api/v1/alerts in the API's envelope, with Prometheus's Date header.
def _answers(health="up", date="Fri, 04 Dec 2026 18:09:43 GMT") -> dict:
    def target(job, instance, host):
        return {"labels": {"job": job, "instance": instance, "host": host}, "health": health, "lastError": ""}

    targets = [
        target("node", "10.77.0.10:9100", "infra1"),
        target("node", "10.77.0.11:9100", "server1"),
        target("prometheus", "10.77.0.10:9090", "infra1"),
    ]
    alerts = [
        {
            "labels": {
                "alertname": "IslandEgressAttempt",
                "instance": "10.77.0.10:9153",
                "severity": "critical",
            },
            "annotations": {"summary": "an island host asked the island DNS for a name outside the island"},
            "state": "firing",
            "activeAt": "2026-12-04T18:01:00Z",
        }
    ]

    def ok(data):
        return {"status": 200, "msg": "OK", "date": date, "json": {"status": "success", "data": data}}

    return {
        "url": "https://10.77.0.10:9090",
        "secret": "/secrets/monitoring-prometheus-password",
        "targets": ok({"activeTargets": targets, "droppedTargets": []}),
        "alerts": ok({"alerts": alerts}),
    }


def test_the_page_is_written_once_and_a_rerun_or_a_check_writes_nothing(tmp_path):
    source, page = tmp_path / "island-receipt.json", tmp_path / "island-status.html"
    source.write_text(json.dumps(receipt()))
    first = run_local_tasks(tmp_path, _task(source, page))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "CHANGED=True" in first.stdout
    assert page.stat().st_mode & 0o777 == 0o644
    written = page.read_bytes()

    again = run_local_tasks(tmp_path, _task(source, page))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "CHANGED=False" in again.stdout and page.read_bytes() == written

    moved = receipt()
    moved["bundle"]["version"] = "2026.12.0"
    source.write_text(json.dumps(moved))
    check = run_local_tasks(tmp_path, _task(source, page), "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "CHANGED=True" in check.stdout and page.read_bytes() == written


def test_live_monitoring_data_rewrites_the_page_without_counting_as_a_change(tmp_path):
    source, page = tmp_path / "island-receipt.json", tmp_path / "island-status.html"
    source.write_text(json.dumps(receipt()))
    first = run_local_tasks(tmp_path, _task(source, page, _answers()))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "CHANGED=True REWRITTEN=True MONITORING=present" in first.stdout
    assert 'data-target="node/10.77.0.11:9100"' in page.read_text()

    # Prometheus answers later, with another time and a target down: the file is rewritten, and the
    # task reports no change, since the receipt (what the island runs) did not change.
    later = run_local_tasks(tmp_path, _task(source, page, _answers("down", "Fri, 04 Dec 2026 18:19:43 GMT")))
    assert later.returncode == 0, later.stdout + later.stderr
    assert "CHANGED=False REWRITTEN=True MONITORING=present" in later.stdout
    assert 'datetime="2026-12-04T18:19:43Z"' in page.read_text()

    same = run_local_tasks(tmp_path, _task(source, page, _answers("down", "Fri, 04 Dec 2026 18:19:43 GMT")))
    assert "CHANGED=False REWRITTEN=False" in same.stdout

    # Check mode writes nothing, whatever monitoring says.
    written = page.read_bytes()
    check = run_local_tasks(tmp_path, _task(source, page, _answers()), "--check")
    assert check.returncode == 0 and "CHANGED=False REWRITTEN=False" in check.stdout
    assert page.read_bytes() == written


def test_an_unreachable_prometheus_warns_and_the_page_is_made_from_the_receipt_alone(tmp_path):
    source, page = tmp_path / "island-receipt.json", tmp_path / "island-status.html"
    source.write_text(json.dumps(receipt()))
    refused = {"status": -1, "msg": "Request failed: <urlopen error [Errno 111] Connection refused>"}
    answers = {"url": "https://10.77.0.10:9090", "targets": refused, "alerts": refused}
    result = run_local_tasks(tmp_path, _task(source, page, answers))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, output
    assert "the island's Prometheus https://10.77.0.10:9090 could not be asked" in output
    assert "CHANGED=True REWRITTEN=True MONITORING=unreachable" in output
    text = page.read_text()
    assert 'data-monitoring="unreachable"' in text and 'data-host="infra1"' in text


def test_a_missing_or_broken_receipt_is_named_and_nothing_is_written(tmp_path):
    page = tmp_path / "island-status.html"
    missing = run_local_tasks(tmp_path, _task(tmp_path / "absent.json", page))
    output = " ".join((missing.stdout + missing.stderr).split())
    assert missing.returncode != 0
    assert "absent.json does not exist yet; run playbooks/site.yml or playbooks/receipt.yml first" in output
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = run_local_tasks(tmp_path, _task(broken, page))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0 and "cannot be read as JSON" in output
    assert not page.exists()


class Dom(HTMLParser):
    """Sections, rows with their data- attribute, and badges, as the browser serialised them."""

    def __init__(self):
        super().__init__()
        self.sections, self.rows, self.badges, self.monitoring = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "tr":
            self.rows += [(k, v) for k, v in attrs.items() if k.startswith("data-")]
        if "data-monitoring" in attrs:
            self.monitoring.append(attrs["data-monitoring"])
        if tag == "span" and "badge" in (attrs.get("class") or ""):
            self.badges.append(attrs["class"].split()[1])


def _chromium(*args: str) -> subprocess.CompletedProcess:
    browser = shutil.which("chromium")
    assert browser, "chromium is not installed: tools/test.sh installs it (tools/lib/setup.sh)"
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--proxy-server=http://127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_the_page_renders_in_a_real_browser_and_a_screenshot_is_kept(tmp_path):
    source, page = tmp_path / "island-receipt.json", tmp_path / "island-status.html"
    source.write_text(json.dumps(receipt()))
    assert run_local_tasks(tmp_path, _task(source, page, _answers())).returncode == 0

    dom = _chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = Dom()
    parsed.feed(dom.stdout)
    sections = ["monitoring", "hosts", "components", "certificates", "images", "git", "snapshot"]
    assert parsed.sections == sections
    assert [v for k, v in parsed.rows if k == "data-host"] == ["infra1", "server1", "server2"]
    assert ("data-image", "docker.io/islandtest/app:1.0") in parsed.rows
    assert {"ok", "warn", "bad", "none"} <= set(parsed.badges)
    # the monitoring section: Prometheus's targets, up, and the alert firing, with when it answered
    assert parsed.monitoring == ["present"]
    assert [v for k, v in parsed.rows if k == "data-target"] == [
        "node/10.77.0.10:9100",
        "node/10.77.0.11:9100",
        "prometheus/10.77.0.10:9090",
    ]
    assert ("data-alert", "IslandEgressAttempt") in parsed.rows
    assert 'datetime="2026-12-04T18:09:43Z"' in dom.stdout
    assert "Island island.internal" in dom.stdout

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "status-page.png"
    shot.unlink(missing_ok=True)
    taken = _chromium("--window-size=1400,2000", f"--screenshot={shot}", page.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 2000)
