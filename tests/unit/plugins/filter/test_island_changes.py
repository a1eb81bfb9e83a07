"""The change report of a run: components, moved image tags, moved git refs."""

from __future__ import annotations

from ansible_collections.island.installer.plugins.filter.island_changes import island_change_report

OLD, NEW = "sha256:" + "1" * 64, "sha256:" + "2" * 64
APP_MOVED = {
    "image": "docker.io/x/app:1.0",
    "old_digest": OLD,
    "digest": NEW,
    "action": "update",
    "changed": True,
}


def test_the_report_lists_what_moves_once_each_and_nothing_unchanged():
    hostvars = {
        "infra1": {
            "upgrade_plan": {"lines": ["infra1: coredns 1.14.2 -> 1.14.3 (upgrade)"]},
            "registry_seeded": {
                "images": [
                    APP_MOVED,
                    {
                        "image": "docker.io/x/new:1.0",
                        "old_digest": None,
                        "digest": NEW,
                        "action": "create",
                        "changed": True,
                    },
                    {
                        "image": "docker.io/x/base:1.0",
                        "old_digest": OLD,
                        "digest": OLD,
                        "action": "unchanged",
                        "changed": False,
                    },
                ]
            },
            "gitea_seeded": {
                "results": [
                    {
                        "repository": "island/config",
                        "refs": [
                            {
                                "ref": "refs/heads/main",
                                "old": "a" * 40,
                                "new": "b" * 40,
                                "action": "fast-forward",
                            },
                            {
                                "ref": "refs/tags/v1.0",
                                "old": "c" * 40,
                                "new": "c" * 40,
                                "action": "unchanged",
                            },
                            {"ref": "refs/tags/v1.1", "old": None, "new": "d" * 40, "action": "create"},
                        ],
                    }
                ]
            },
        },
        # A second registry replica seeding the same shared storage reports the same move once.
        "infra2": {
            "upgrade_plan": {"lines": ["infra1: coredns 1.14.2 -> 1.14.3 (upgrade)"]},
            "registry_seeded": {"images": [APP_MOVED]},
        },
    }
    assert island_change_report(hostvars, ["infra2", "infra1"]) == [
        "Components (running -> bundle):",
        "  infra1: coredns 1.14.2 -> 1.14.3 (upgrade)",
        "Image tags (old digest -> new digest):",
        f"  docker.io/x/app:1.0: {OLD} -> {NEW} (update)",
        f"  docker.io/x/new:1.0: (absent) -> {NEW} (create)",
        "Git refs (old commit -> new commit):",
        f"  island/config refs/heads/main: {'a' * 40} -> {'b' * 40} (fast-forward)",
        f"  island/config refs/tags/v1.1: (absent) -> {'d' * 40} (create)",
    ]


def test_a_run_that_moves_nothing_says_so():
    assert island_change_report({"h": {}}, ["h"]) == [
        "Components (running -> bundle):",
        "  (no plan in this run)",
        "Image tags (old digest -> new digest):",
        "  none move",
        "Git refs (old commit -> new commit):",
        "  none move",
    ]
