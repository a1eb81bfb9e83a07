"""The status page: what the receipt says, where an operator looks for it, and nothing fetched."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ansible_collections.island.installer.plugins.module_utils.island_status_page import (
    days_left,
    expiry_level,
    monitoring_from_prometheus,
    page_receipt_digest,
    receipt_digest,
    render,
)

from tests.support.status_receipt import receipt


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of the page."""

    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(page):
    parser = Elements()
    parser.feed(page)
    return parser


def row(page, attribute, value):
    """The HTML of the table row whose ``attribute`` is ``value``."""
    match = re.search(rf'<tr {attribute}="{re.escape(value)}">(.*?)</tr>', page, re.S)
    assert match, f"no row {attribute}={value}"
    return match.group(1)


def test_each_section_shows_what_the_receipt_says():
    page = render(receipt())
    assert "Island island.internal" in page
    assert "island 2026.11.0" in page
    assert 'datetime="2026-12-01T12:00:00Z"' in page
    # hosts: the one not reached says when it was last seen; its version is off the bundle's
    assert "not reached (last seen 2026-11-30T09:12:40Z)" in row(page, "data-host", "server2")
    server2 = row(page, "data-host", "server2")
    assert 'v1.35.4+k3s1</code> <span class="badge warn">bundle v1.36.3+k3s1' in server2
    assert 'class="badge ok">as bundle' in row(page, "data-host", "server1")
    assert 'class="badge warn">mixed versions' in row(page, "data-component", "k3s")
    # images: a digest other than the lock's is bad
    assert 'class="badge bad">different digest' in row(page, "data-image", "docker.io/islandtest/app:1.0")
    assert 'class="badge ok">as locked' in row(page, "data-image", "docker.io/library/alpine:3.20")
    assert 'class="badge ok">as locked' in row(page, "data-repository", "island/island-config")
    assert 'data-snapshot="island-install-server1-1796314989"' in page
    assert "s3://k3s-etcd-snapshots/island-install-server1-1796314989" in page
    assert 'data-monitoring="absent"' in page and "made from the receipt alone" in page


def test_certificates_are_counted_to_the_receipts_time_and_marked_before_they_expire():
    page = render(receipt(), warn_days=30)
    assert 'class="badge ok">355 days' in row(page, "data-certificate", "infra1/registry")
    assert 'class="badge warn">10 days' in row(page, "data-certificate", "infra1/gitea")
    assert 'class="badge bad">expired' in row(page, "data-certificate", "infra1/minio")
    assert 'class="badge ok">' in row(page, "data-certificate", "CA/root")
    # soonest first
    assert page.index('data-certificate="infra1/minio"') < page.index('data-certificate="infra1/gitea"')
    assert page.index('data-certificate="infra1/gitea"') < page.index('data-certificate="infra1/registry"')
    # a smaller window no longer marks the gitea certificate
    narrow = render(receipt(), warn_days=7)
    assert 'class="badge ok">10 days' in row(narrow, "data-certificate", "infra1/gitea")


def test_the_tiles_sum_up_what_needs_a_look():
    tags = parse(render(receipt())).tags
    tiles = {attrs["data-tile"]: attrs["class"] for _, attrs in tags if "data-tile" in attrs}
    assert tiles == {
        "components": "tile warn",
        "hosts": "tile none",
        "certificates": "tile warn",
        "images": "tile bad",
        "snapshot": "tile ok",
        "targets": "tile none",
    }


def test_the_same_receipt_gives_the_same_bytes():
    assert render(receipt()) == render(receipt())


def test_nothing_is_loaded_from_anywhere_and_no_script_runs():
    page = render(receipt())
    tags = parse(page).tags
    assert not [tag for tag, _ in tags if tag in ("script", "link", "img", "iframe", "object", "embed")]
    assert not [attrs for _, attrs in tags if {"src", "href"} & set(attrs)]
    assert "url(" not in page and "@import" not in page


def test_text_from_the_receipt_is_escaped():
    doc = receipt()
    doc["hosts"]["<script>alert(1)</script>"] = doc["hosts"].pop("infra1")
    doc["certificates"][0]["subject"] = 'CN="><img src=x>'
    page = render(doc)
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_monitoring_shows_targets_and_firing_alerts_when_given():
    page = render(
        receipt(),
        monitoring={
            "targets": [
                {"job": "coredns", "instance": "10.77.0.10:9153", "health": "up"},
                {"job": "registry", "instance": "10.77.0.10:5001", "health": "down"},
            ],
            "alerts": [
                {"name": "TargetDown", "summary": "registry is down", "since": "2026-12-01T11:58:00Z"}
            ],
        },
    )
    assert 'class="badge ok">up' in row(page, "data-target", "coredns/10.77.0.10:9153")
    assert 'class="badge bad">down' in row(page, "data-target", "registry/10.77.0.10:5001")
    assert "registry is down" in row(page, "data-alert", "TargetDown")
    assert 'data-monitoring="absent"' not in page


def test_a_receipt_without_a_snapshot_or_a_time_still_renders():
    doc = receipt()
    doc["etcd_snapshot"] = {"state": "none"}
    del doc["written_at"]
    page = render(doc)
    assert 'class="badge warn">none</span> no snapshot yet' in page
    assert 'class="badge none">' in row(page, "data-certificate", "infra1/registry")


def test_days_and_levels():
    assert expiry_level(None, 30) == "none"
    assert expiry_level(-1, 30) == "bad"
    assert expiry_level(29, 30) == "warn"
    assert expiry_level(30, 30) == "ok"
    assert days_left(None, None) is None


# Prometheus's answers as ansible.builtin.uri returns them: /api/v1/targets and /api/v1/alerts in the
# API's envelope (docs/querying/api.md, Prometheus 2.42 and 3.14), Go's Date header.
URL = "https://10.77.8.10:9090"
DATE = "Fri, 04 Dec 2026 18:09:43 GMT"


def _target(job, instance, health, host="infra1", error=""):
    return {
        "labels": {"job": job, "instance": instance, "host": host},
        "scrapeUrl": f"https://{instance}/metrics",
        "health": health,
        "lastError": error,
        "lastScrape": "2026-12-04T18:09:40.1Z",
    }


def _answer(data, status=200, date=DATE):
    envelope = {"status": "success", "data": data}
    return {"status": status, "msg": "OK (unknown bytes)", "date": date, "json": envelope}


def _prometheus(targets, alerts=()):
    return monitoring_from_prometheus(
        URL,
        _answer({"activeTargets": list(targets), "droppedTargets": []}),
        _answer({"alerts": list(alerts)}),
        password_file="monitoring-prometheus-password",
    )


def _alert(name, state, instance="10.77.8.10:5443"):
    return {
        "labels": {"alertname": name, "instance": instance, "severity": "critical"},
        "annotations": {"summary": f"{name} on {instance}"},
        "state": state,
        "activeAt": "2026-12-04T18:01:00Z",
        "value": "1e+00",
    }


def test_prometheus_targets_and_firing_alerts_are_shown_with_the_time_prometheus_answered():
    monitoring = _prometheus(
        [
            _target("node", "10.77.8.10:9100", "up"),
            _target("minio", "10.77.8.10:9443", "down", error="server returned HTTP status 403 Forbidden"),
            _target("coredns", "10.77.8.10:9153", "unknown"),
        ],
        [_alert("IslandTargetDown", "firing"), _alert("IslandDiskSpaceLow", "pending")],
    )
    assert monitoring["state"] == "present" and monitoring["taken_at"] == "2026-12-04T18:09:43Z"
    assert [a["name"] for a in monitoring["alerts"]] == ["IslandTargetDown"]  # pending is not firing
    page = render(receipt(), monitoring=monitoring)
    assert 'data-monitoring="present"' in page and 'datetime="2026-12-04T18:09:43Z"' in page
    assert URL in page
    assert 'class="badge ok">up' in row(page, "data-target", "node/10.77.8.10:9100")
    minio = row(page, "data-target", "minio/10.77.8.10:9443")
    assert 'class="badge bad">down' in minio and "HTTP status 403 Forbidden" in minio
    assert 'class="badge bad">unknown' in row(page, "data-target", "coredns/10.77.8.10:9153")
    assert "IslandTargetDown on 10.77.8.10:5443" in row(page, "data-alert", "IslandTargetDown")
    assert 'data-alert="IslandDiskSpaceLow"' not in page
    tiles = {a["data-tile"]: (a["class"]) for _, a in parse(page).tags if "data-tile" in a}
    assert tiles["targets"] == "tile bad" and tiles["alerts"] == "tile bad"
    assert "<b>1/3</b>targets up" in page


def test_all_targets_up_and_no_alert_make_green_tiles():
    page = render(receipt(), monitoring=_prometheus([_target("node", "10.77.8.10:9100", "up")]))
    tiles = {a["data-tile"]: (a["class"]) for _, a in parse(page).tags if "data-tile" in a}
    assert tiles["targets"] == "tile ok" and tiles["alerts"] == "tile ok"
    assert "<b>1/1</b>targets up" in page


def test_an_unreachable_prometheus_is_named_and_the_page_is_made_from_the_receipt_alone():
    refused = {"status": -1, "msg": "Request failed: <urlopen error [Errno 111] Connection refused>"}
    monitoring = monitoring_from_prometheus(URL, refused, refused, now=None)
    assert monitoring["state"] == "unreachable"
    assert "Connection refused" in monitoring["error"]
    page = render(receipt(), monitoring=monitoring)
    assert 'data-monitoring="unreachable"' in page and "made from the receipt alone" in page
    assert "Connection refused" in page
    assert 'data-host="infra1"' in page  # the rest of the page is there
    tiles = {a["data-tile"]: (a["class"]) for _, a in parse(page).tags if "data-tile" in a}
    assert tiles["targets"] == "tile warn" and "alerts" not in tiles


def test_a_refused_account_or_an_unreached_host_says_what_to_check():
    refused = monitoring_from_prometheus(
        URL,
        {"status": 401, "msg": "HTTP Error 401: Unauthorized"},
        None,
        password_file="monitoring-prometheus-password",
    )
    assert refused["error"] == (
        "/api/v1/targets answered 401: the account was refused "
        "(check the password in monitoring-prometheus-password)"
    )
    unreached = monitoring_from_prometheus(URL, {"unreachable": True, "msg": "ssh: connect timed out"}, None)
    assert "monitoring host was not reached (ssh: connect timed out)" in unreached["error"]
    broken = monitoring_from_prometheus(URL, {"status": 200, "json": {"status": "error", "error": "x"}}, None)
    assert broken["state"] == "unreachable" and "answered 200: x" in broken["error"]


def test_alerts_that_cannot_be_read_are_marked_while_the_targets_are_shown():
    monitoring = monitoring_from_prometheus(
        URL,
        _answer({"activeTargets": [_target("node", "10.77.8.10:9100", "up")]}),
        {"status": 503, "msg": "x"},
    )
    page = render(receipt(), monitoring=monitoring)
    assert 'class="badge ok">up' in row(page, "data-target", "node/10.77.8.10:9100")
    assert 'data-alerts="unknown"' in page and "/api/v1/alerts answered 503" in page


def test_without_a_date_header_the_time_is_the_callers_clock():
    import datetime

    now = datetime.datetime(2026, 12, 4, 18, 0, 0, tzinfo=datetime.UTC)
    monitoring = monitoring_from_prometheus(URL, _answer({"activeTargets": []}, date=None), None, now=now)
    assert monitoring["taken_at"] == "2026-12-04T18:00:00Z"


def test_live_monitoring_data_changes_the_bytes_but_not_the_receipts_digest():
    digest = receipt_digest(receipt())
    plain = render(receipt())
    live = render(receipt(), monitoring=_prometheus([_target("node", "10.77.8.10:9100", "up")]))
    down = render(receipt(), monitoring=_prometheus([_target("node", "10.77.8.10:9100", "down")]))
    assert len({plain, live, down}) == 3
    assert page_receipt_digest(plain) == page_receipt_digest(live) == digest
    assert page_receipt_digest(down.encode()) == digest
    moved = receipt()
    moved["bundle"]["version"] = "2026.12.0"
    assert receipt_digest(moved) != digest
    assert receipt_digest(receipt(), warn_days=7) != digest
    assert page_receipt_digest("<html>an older page</html>") is None
