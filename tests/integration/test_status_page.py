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


def _task(receipt_path: Path, page: Path) -> list:
    return [
        {
            "name": "The status page is written from the receipt",
            "island_status_page": {"receipt_path": str(receipt_path), "path": str(page)},
            "register": "_page",
        },
        {"name": "The result is shown", "ansible.builtin.debug": {"msg": "CHANGED={{ _page.changed }}"}},
    ]


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
        self.sections, self.rows, self.badges = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "tr":
            self.rows += [(k, v) for k, v in attrs.items() if k.startswith("data-")]
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
    assert run_local_tasks(tmp_path, _task(source, page)).returncode == 0

    dom = _chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = Dom()
    parsed.feed(dom.stdout)
    sections = ["monitoring", "hosts", "components", "certificates", "images", "git", "snapshot"]
    assert parsed.sections == sections
    assert [v for k, v in parsed.rows if k == "data-host"] == ["infra1", "server1", "server2"]
    assert ("data-image", "docker.io/islandtest/app:1.0") in parsed.rows
    assert {"ok", "warn", "bad", "none"} <= set(parsed.badges)
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
