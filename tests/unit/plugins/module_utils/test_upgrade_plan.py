"""The upgrade plan: versions ordered per component scheme, actions per host, and the guards."""

from __future__ import annotations

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_upgrade import (
    VersionError,
    host_components,
    parse_version,
    plan,
)

SHA_OLD = "a" * 64
SHA_NEW = "b" * 64


def lock(**versions):
    """A lock with one binary per component, each at the given version (sha SHA_NEW)."""
    return {
        "files": [{"path": f"bin/{name}", "sha256": SHA_NEW, "size": 1} for name in versions],
        "components": {
            name: {"version": version, "files": [f"bin/{name}"]} for name, version in versions.items()
        },
    }


def host(*components, **records):
    return {
        "components": list(components),
        "records": {
            name: {"component": name, "version": version, "sha256": SHA_OLD}
            for name, version in records.items()
        },
    }


# component, an older version, a newer one (in the component's own version scheme)
ORDERED_VERSIONS = """
k3s       v1.36.3+k3s1                  v1.36.3+k3s2
k3s       v1.36.3+k3s1                  v1.36.10+k3s1
k3s       v1.36.9+k3s3                  v1.37.1+k3s1
k3s       v1.37.0-rc1+k3s1              v1.37.0+k3s1
minio     RELEASE.2025-09-07T16-13-09Z  RELEASE.2025-10-15T17-29-55Z
minio     RELEASE.2025-09-07T16-13-09Z  RELEASE.2025-09-07T16-13-10Z
gitea     1.26.2                        1.26.10
gitea     1.26.0-rc1                    1.26.0
gitea     1.26.0-rc.2                   1.26.0-rc.10
registry  v2.8.2                        2.8.3
coredns   1.9.4                         1.14.2
"""


@pytest.mark.parametrize(
    ("component", "older", "newer"), [tuple(line.split()) for line in ORDERED_VERSIONS.strip().splitlines()]
)
def test_versions_are_ordered_by_their_component_scheme(component, older, newer):
    assert parse_version(component, older) < parse_version(component, newer)
    assert parse_version(component, newer) > parse_version(component, older)


@pytest.mark.parametrize(
    ("component", "version"),
    [
        ("k3s", "1.36.3"),
        ("k3s", "v1.36+k3s1"),
        ("minio", "2025-09-07"),
        ("gitea", "latest"),
        ("coredns", "1.14"),
    ],
)
def test_a_version_off_its_scheme_is_an_error_naming_it(component, version):
    with pytest.raises(VersionError, match=component) as err:
        parse_version(component, version)
    assert version in str(err.value)


def test_components_follow_the_hosts_groups():
    groups = {
        "island_dns": ["infra1"],
        "island_registry": ["infra1"],
        "k3s_servers": ["s1"],
        "k3s_agents": ["a1"],
    }
    # node_exporter runs on every island host (issue 17).
    assert host_components(groups, "infra1") == ["coredns", "node_exporter", "registry"]
    assert host_components(groups, "s1") == ["k3s", "node_exporter"]
    assert host_components(groups, "a1") == ["k3s", "node_exporter"]
    assert host_components(groups, "elsewhere") == []


def test_a_new_bundle_is_planned_per_host_and_component():
    result = plan(
        lock(coredns="1.14.3", k3s="v1.37.1+k3s1", gitea="1.26.2"),
        {
            "infra1": host("coredns", "gitea", coredns="1.14.2", gitea="1.26.2"),
            "s1": host("k3s", k3s="v1.36.3+k3s1"),
            "s2": host("k3s"),
        },
    )
    assert result["refused"] == []
    assert result["hosts"]["infra1"]["coredns"] == {
        "running": "1.14.2",
        "bundle": "1.14.3",
        "action": "upgrade",
    }
    assert result["hosts"]["s1"]["k3s"]["action"] == "upgrade"
    assert result["hosts"]["s2"]["k3s"] == {"running": None, "bundle": "v1.37.1+k3s1", "action": "install"}
    # Same version, but the bundle's binary differs from the recorded one: replaced, and said so.
    assert result["hosts"]["infra1"]["gitea"]["action"] == "replace"
    assert result["components"]["k3s"] == {
        "bundle": "v1.37.1+k3s1",
        "running": ["v1.36.3+k3s1"],
        "hosts_to_change": ["s1", "s2"],
    }
    assert "s1: k3s v1.36.3+k3s1 -> v1.37.1+k3s1 (upgrade)" in result["lines"]


def test_an_unchanged_component_is_left_alone():
    bundle = lock(coredns="1.14.2")
    record = {"component": "coredns", "version": "1.14.2", "sha256": SHA_NEW}
    result = plan(bundle, {"infra1": {"components": ["coredns"], "records": {"coredns": record}}})
    assert result["hosts"]["infra1"]["coredns"]["action"] == "unchanged"
    assert result["components"]["coredns"]["hosts_to_change"] == []
    assert result["lines"] == ["infra1: coredns 1.14.2 (unchanged)"]


def test_a_downgrade_is_refused_naming_host_component_and_versions():
    result = plan(
        lock(minio="RELEASE.2025-09-07T16-13-09Z"),
        {"m1": host("minio", minio="RELEASE.2025-10-15T17-29-55Z")},
    )
    assert result["hosts"]["m1"]["minio"]["action"] == "downgrade"
    [message] = result["refused"]
    assert "minio on m1" in message
    assert "RELEASE.2025-09-07T16-13-09Z" in message and "RELEASE.2025-10-15T17-29-55Z" in message
    assert "upgrade_allow_downgrade: [minio]" in message


def test_a_downgrade_allowed_for_its_component_passes_and_others_stay_refused():
    bundle = lock(minio="RELEASE.2025-09-07T16-13-09Z", gitea="1.26.1")
    hosts = {"m1": host("minio", "gitea", minio="RELEASE.2025-10-15T17-29-55Z", gitea="1.26.2")}
    result = plan(bundle, hosts, allow_downgrade=["minio"])
    assert len(result["refused"]) == 1
    assert result["refused"][0].startswith("gitea on m1")


def test_a_skipped_kubernetes_minor_is_refused_naming_the_versions():
    result = plan(
        lock(k3s="v1.37.1+k3s1"),
        {"s1": host("k3s", k3s="v1.36.3+k3s1"), "s2": host("k3s", k3s="v1.35.4+k3s1")},
    )
    [message] = result["refused"]
    assert "v1.35.4+k3s1 runs on s2" in message
    assert "v1.35 -> v1.37 skips v1.36" in message
    assert "k3s v1.36 first" in message


def test_one_minor_at_a_time_passes_and_the_skip_can_be_allowed():
    assert plan(lock(k3s="v1.37.1+k3s1"), {"s1": host("k3s", k3s="v1.36.3+k3s1")})["refused"] == []
    skipping = {"s1": host("k3s", k3s="v1.34.1+k3s1")}
    assert plan(lock(k3s="v1.37.1+k3s1"), skipping)["refused"]
    assert plan(lock(k3s="v1.37.1+k3s1"), skipping, allow_minor_skip=True)["refused"] == []


def test_a_component_missing_from_the_bundle_is_refused():
    result = plan(lock(coredns="1.14.2"), {"g1": host("gitea")})
    assert result["refused"] == [
        "gitea on g1: the bundle's lock has no component gitea; build the bundle with it (bundle-spec.yml), "
        "or take g1 out of the group that carries it"
    ]


def test_a_recorded_version_off_its_scheme_is_refused_not_guessed():
    result = plan(lock(gitea="1.26.2"), {"g1": host("gitea", gitea="main-nightly")})
    assert any("gitea on g1" in message and "main-nightly" in message for message in result["refused"])
