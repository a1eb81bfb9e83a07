"""A receipt (docs/receipt.md, schema version 1) with something to show in every section of the
status page: a component in mixed versions, a host not reached, certificates fine, expiring soon and
expired, an image served under another digest, a repository as locked, and a snapshot."""

from __future__ import annotations

import copy

RECEIPT = {
    "schema_version": 1,
    "island_domain": "island.internal",
    "written_at": "2026-12-01T12:00:00Z",
    "bundle": {"name": "island", "version": "2026.11.0"},
    "hosts": {
        "infra1": {
            "address": "10.77.0.10",
            "groups": ["island_dns", "island_registry"],
            "reached": True,
            "components": {
                "coredns": {"state": "recorded", "version": "1.14.2", "sha256": "2e8a", "expected": True},
                "registry": {"state": "recorded", "version": "2.8.2", "sha256": "77aa", "expected": True},
            },
        },
        "server1": {
            "address": "10.77.0.11",
            "groups": ["k3s_servers"],
            "reached": True,
            "components": {
                "k3s": {"state": "recorded", "version": "v1.36.3+k3s1", "sha256": "aa", "expected": True}
            },
        },
        "server2": {
            "address": "10.77.0.12",
            "groups": ["k3s_servers"],
            "reached": False,
            "last_seen": "2026-11-30T09:12:40Z",
            "components": {
                "k3s": {"state": "recorded", "version": "v1.35.4+k3s1", "sha256": "bb", "expected": True}
            },
        },
    },
    "components": {
        "coredns": {"bundle_version": "1.14.2", "running": {"1.14.2": ["infra1"]}, "state": "as bundle"},
        "registry": {"bundle_version": "2.8.2", "running": {"2.8.2": ["infra1"]}, "state": "as bundle"},
        "k3s": {
            "bundle_version": "v1.36.3+k3s1",
            "running": {"v1.35.4+k3s1": ["server2"], "v1.36.3+k3s1": ["server1"]},
            "state": "mixed versions",
        },
    },
    "images": [
        {
            "reference": "docker.io/library/alpine:3.20",
            "digest_in_lock": "sha256:" + "1" * 64,
            "served": {"infra1": {"digest": "sha256:" + "1" * 64, "state": "as locked"}},
        },
        {
            "reference": "docker.io/islandtest/app:1.0",
            "digest_in_lock": "sha256:" + "2" * 64,
            "served": {"infra1": {"digest": "sha256:" + "3" * 64, "state": "different digest"}},
        },
    ],
    "git": [
        {
            "name": "island-config",
            "repository": "island/island-config",
            "refs_in_lock": {"refs/heads/main": "e0c4" * 10},
            "served": {"infra1": {"refs": {"refs/heads/main": "e0c4" * 10}, "state": "as locked"}},
        }
    ],
    "certificates": [
        {
            "host": "infra1",
            "service": "registry",
            "state": "present",
            "subject": "CN=registry.island.internal",
            "not_after": "2027-11-21T16:02:38Z",
        },
        {
            "host": "infra1",
            "service": "gitea",
            "state": "present",
            "subject": "CN=git.island.internal",
            "not_after": "2026-12-11T12:00:00Z",
        },
        {
            "host": "infra1",
            "service": "minio",
            "state": "present",
            "subject": "CN=s3.island.internal",
            "not_after": "2026-11-30T12:00:00Z",
        },
    ],
    "ca": {
        "roots": [{"subject": "CN=Island Root CA R1,O=Island", "not_after": "2036-11-29T18:49:32Z"}],
        "intermediates": [
            {"subject": "CN=Island Intermediate CA R1-I1,O=Island", "not_after": "2029-12-01T18:49:32Z"}
        ],
    },
    "etcd_snapshot": {
        "server": "server1",
        "state": "present",
        "count": 3,
        "newest": {
            "name": "island-install-server1-1796314989",
            "created": "2026-12-01T11:00:00Z",
            "size": 1899,
            "locations": [
                "file:///var/lib/rancher/k3s/server/db/snapshots/island-install-server1-1796314989",
                "s3://k3s-etcd-snapshots/island-install-server1-1796314989",
            ],
        },
    },
}


def receipt() -> dict:
    """A fresh copy of RECEIPT."""
    return copy.deepcopy(RECEIPT)
