"""The bundle's Debian packages for a host, and which ones it must still install."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.island.installer.plugins.filter.island_debs import (
    island_debs,
    island_debs_files,
    island_debs_pending,
    island_debs_releases,
    island_os_codename,
)

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
    assert island_debs_pending(debs, query) == [
        "libmicrohttpd12 0.9.75-6 (installed: 0.9.75-5)",
        "systemd-journal-remote 252.39-1~deb12u2 (not installed)",
    ]
    everything = "".join(f"{d['package']}:amd64\t{d['version']}\tii \n" for d in debs)
    assert island_debs_pending(debs, everything) == []


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
