"""The status page: what the receipt says, where an operator looks for it, and nothing fetched."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from ansible_collections.island.installer.plugins.module_utils.island_status_page import (
    days_left,
    expiry_level,
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
