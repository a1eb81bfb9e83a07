"""The bundle's Debian packages for a host, and which ones it must still install."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.island.installer.plugins.filter.island_debs import (
    island_debs,
    island_debs_codenames,
    island_debs_files,
    island_debs_missing,
    island_debs_releases,
    island_os_codename,
)
from ansible_collections.island.installer.plugins.module_utils.island_debs import pending_debs

LOCK = [
    {"path": "bin/coredns", "sha256": "0" * 64},
    {"path": "debs/bookworm/systemd-journal-remote_252.39-1~deb12u2_amd64.deb", "sha256": "1" * 64},
    {"path": "debs/bookworm/libmicrohttpd12_0.9.75-6_amd64.deb", "sha256": "2" * 64},
    {"path": "debs/bookworm/libfoo_1%3a2.0-1_all.deb", "sha256": "3" * 64},
    {"path": "debs/trixie/libmicrohttpd12t64_1.0.1-1_amd64.deb", "sha256": "4" * 64},
]


def test_only_the_hosts_release_is_taken_with_names_and_versions_from_the_signed_file_names():
    debs = island_debs(LOCK, "bookworm", "/var/lib/island/debs/bookworm/")
    assert [(d["package"], d["version"], d["architecture"]) for d in debs] == [
        ("libfoo", "1:2.0-1", "all"),
        ("libmicrohttpd12", "0.9.75-6", "amd64"),
        ("systemd-journal-remote", "252.39-1~deb12u2", "amd64"),
    ]
    assert debs[1]["src"] == "debs/bookworm/libmicrohttpd12_0.9.75-6_amd64.deb"
    assert debs[1]["dest"] == "/var/lib/island/debs/bookworm/libmicrohttpd12_0.9.75-6_amd64.deb"
    assert island_debs(LOCK, "bullseye", "/x") == []
    assert island_debs_releases(LOCK) == ["bookworm", "trixie"]


def test_a_file_not_named_as_the_builder_names_packages_is_refused_naming_it():
    with pytest.raises(AnsibleFilterError, match=r"debs/bookworm/evil\.sh is not named"):
        island_debs([{"path": "debs/bookworm/evil.sh"}], "bookworm", "/x")


def test_pending_is_every_package_not_installed_at_the_bundles_version():
    debs = island_debs(LOCK, "bookworm", "/x")
    query = (
        "libfoo\t1:2.0-1\tii \n"
        "libmicrohttpd12\t0.9.75-5\tii \n"
        "systemd-journal-remote\t252.39-1~deb12u2\trc \n"
    )
    assert pending_debs(debs, query) == [
        "libmicrohttpd12 0.9.75-6 (installed: 0.9.75-5)",
        "systemd-journal-remote 252.39-1~deb12u2 (not installed)",
    ]
    everything = "".join(f"{d['package']}:amd64\t{d['version']}\tii \n" for d in debs)
    assert pending_debs(debs, everything) == []


def test_the_files_to_place_are_the_bundle_paths_owned_by_root_and_readable():
    (deb,) = island_debs(LOCK[:2], "bookworm", "/d")
    assert island_debs_files([deb]) == [
        {"src": deb["src"], "dest": deb["dest"], "owner": "root", "group": "root", "mode": "0644"}
    ]


def test_the_release_is_the_codename_of_os_release_or_nothing():
    text = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
    assert island_os_codename(text) == "bookworm"
    assert island_os_codename('VERSION_CODENAME="trixie"\n') == "trixie"
    assert island_os_codename("ID=debian\n") == ""
    assert island_os_codename(None) == ""


def test_every_host_whose_release_the_bundle_lacks_a_package_for_is_named_at_once():
    hosts = {"agent1": "bookworm", "agent2": "trixie", "old": "bullseye", "odd": ""}
    problems = island_debs_missing(hosts, LOCK, ["systemd-journal-remote", "libmicrohttpd12"])
    assert [p.split(":")[0] for p in problems] == ["journal on agent2", "journal on odd", "journal on old"]
    assert "no Debian packages systemd-journal-remote, libmicrohttpd12 for trixie" in problems[0]
    assert "carries packages for: bookworm, trixie" in problems[0]
    assert "no VERSION_CODENAME in /etc/os-release" in problems[1]
    assert island_debs_missing({"agent1": "bookworm"}, LOCK, ["libfoo"]) == []


def test_each_hosts_release_is_preflights_or_else_what_the_role_read():
    hostvars = {
        "a": {"ansible_facts": {"island_preflight": {"os_codename": "bookworm"}}},
        "b": {
            "ansible_facts": {},
            "_journal_os": {"read": {"/etc/os-release": "ID=debian\nVERSION_CODENAME=trixie\n"}},
        },
        "c": {"ansible_facts": {}, "_journal_os": {"skipped": True}},
    }
    assert island_debs_codenames(["a", "b", "c"], hostvars, "_journal_os") == {
        "a": "bookworm",
        "b": "trixie",
        "c": "",
    }
