"""The test bundle's two releases (tests/bundle/testbundle.py), as the upgrade scenarios need them:
release 2 brings new versions of every doubled component and of the registry binary, a new image,
a moved tag and new commits, and keeps everything else of release 1 exactly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import testbundle
import yaml
from ansible_collections.island.installer.plugins.module_utils.island_bundle import verify_bundle
from testbundle import (
    AIRGAP_ARCHIVE,
    EXTRA_IMAGE,
    MOVED_TAG,
    PROMETHEUS_FAMILY,
    REGISTRY_BIN,
    RELEASES,
    build_test_bundle,
    debian_version,
    double_binary,
    ensure_signing_key,
)

from tests.support import ROOT
from tests.support.doubles.build import build_double
from tests.support.doubles.k3s import cli_env
from tests.support.net import free_port

PYTHON = "/usr/bin/python3"  # the interpreter the doubles run under on a node
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """Both releases built one after the other, into two directories, with one signing key."""
    base = tmp_path_factory.mktemp("releases")
    key, allowed = base / "signing_key", base / "allowed_signers"
    ensure_signing_key(key, allowed)
    built = {}
    for number in (1, 2):
        out = base / f"bundle-{number}"
        build_test_bundle(out, key, release=number)
        built[number] = (out, verify_bundle(out, allowed_signers=allowed).lock)
    return built


def _digests(lock: dict) -> dict[str, str]:
    return {image["reference"]: image["digest"] for image in lock["images"]}


def _sha(lock: dict, path: str) -> str:
    return next(f["sha256"] for f in lock["files"] if f["path"] == path)


def test_release_2_is_bundle_2_0_0_with_every_component_one_release_up(releases):
    _out, lock = releases[2]
    assert (lock["bundle"]["name"], lock["bundle"]["version"]) == ("island-test", "2.0.0")
    versions = {name: component["version"] for name, component in lock["components"].items()}
    assert versions == {
        "coredns": "1.14.4",
        "gitea": "1.26.3",
        "minio": "RELEASE.2025-10-15T17-29-55Z",
        "k3s": "v1.37.1+k3s1",
        "registry": "2.8.3",
        # The Prometheus family: Debian 12's programs, the same in both releases.
        **{name: debian_version(package) for name, (package, _) in PROMETHEUS_FAMILY.items()},
    }
    _out1, lock1 = releases[1]
    assert (lock1["bundle"]["name"], lock1["bundle"]["version"]) == ("island-test", "1.0.0")
    assert {n: c["version"] for n, c in lock1["components"].items()} == RELEASES[1].components
    for name in ("bin/coredns", "bin/gitea", "bin/minio", "bin/k3s", "bin/registry"):
        assert _sha(lock, name) != _sha(lock1, name), f"{name} is the same file in both releases"


def test_the_moved_tag_gets_a_new_digest_and_the_other_images_keep_theirs(releases):
    one, two = _digests(releases[1][1]), _digests(releases[2][1])
    assert set(two) == {*one, EXTRA_IMAGE}
    assert two[MOVED_TAG] != one[MOVED_TAG]
    for reference in (
        "docker.io/islandtest/base:1.0",
        "docker.io/islandtest/tool:2.0",
        "ghcr.io/islandtest/multi:1.0",
    ):
        assert two[reference] == one[reference], reference


def test_the_new_image_shares_the_base_layer(releases):
    out, lock = releases[2]
    digests = _digests(lock)

    def layers(reference):
        blob = out / "oci" / "blobs" / "sha256" / digests[reference].split(":", 1)[1]
        return [layer["digest"] for layer in json.loads(blob.read_bytes())["layers"]]

    base = layers("docker.io/islandtest/base:1.0")
    assert layers(EXTRA_IMAGE)[: len(base)] == base
    assert len(layers(EXTRA_IMAGE)) == len(base) + 1


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_git_main_fast_forwards_release_1s_main_and_v1_1_is_new(releases, tmp_path):
    refs1 = releases[1][1]["git"][0]["refs"]
    out2, lock2 = releases[2]
    refs2 = lock2["git"][0]["refs"]
    assert set(refs2) == {"refs/heads/main", "refs/tags/v1.0", "refs/tags/v1.1"}
    assert refs2["refs/tags/v1.0"] == refs1["refs/tags/v1.0"]
    assert refs2["refs/heads/main"] != refs1["refs/heads/main"]
    # git itself, on release 2's git bundle, shows release 1's main in the new main's history
    repo = tmp_path / "repo.git"
    _git("init", "--quiet", "--bare", str(repo), cwd=tmp_path)
    _git("fetch", "--quiet", str(out2 / "git" / "island-config.bundle"), "refs/*:refs/*", cwd=repo)
    assert _git("rev-parse", "refs/heads/main", cwd=repo) == refs2["refs/heads/main"]
    ancestor = subprocess.run(
        ["git", "merge-base", "--is-ancestor", refs1["refs/heads/main"], refs2["refs/heads/main"]],
        cwd=repo,
        check=False,
    )
    assert ancestor.returncode == 0, "release 2's main is not a fast-forward of release 1's"
    assert _git("rev-parse", "refs/tags/v1.1^{commit}", cwd=repo) == refs2["refs/heads/main"]


def _run(binary: Path, *args: str) -> str:
    # `k3s kubectl` stages the kubectl the double carries into the data dir of K3S_CONFIG_FILE
    result = subprocess.run(
        [PYTHON, str(binary), *args], capture_output=True, text=True, timeout=30, check=True, env=cli_env()
    )
    return result.stdout + result.stderr


def test_release_2_doubles_report_their_new_versions(releases):
    out, _lock = releases[2]
    assert _run(out / "bin" / "k3s", "--version").startswith("k3s version v1.37.1+k3s1 ")
    assert _run(out / "bin" / "coredns", "-version").startswith("CoreDNS-1.14.4\n")
    assert _run(out / "bin" / "gitea", "--version").startswith("Gitea version 1.26.3 ")
    assert _run(out / "bin" / "minio", "--version").startswith("minio version RELEASE.2025-10-15T17-29-55Z ")


def test_release_2_k3s_registers_its_node_with_the_new_kubelet_version(releases, tmp_path):
    out, _lock = releases[2]

    port = free_port()
    kubeconfig = tmp_path / "k3s.yaml"
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "node-name": "upgraded",
                "node-ip": "127.0.0.1",
                "bind-address": "127.0.0.1",
                "https-listen-port": port,
                "write-kubeconfig": str(kubeconfig),
                "private-registry": str(tmp_path / "absent-registries.yaml"),
            }
        )
    )
    with (tmp_path / "k3s.log").open("w") as log:
        server = subprocess.Popen(
            [
                PYTHON,
                str(out / "bin" / "k3s"),
                "server",
                "--config",
                str(config),
                "--data-dir",
                str(tmp_path / "d"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while not kubeconfig.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert kubeconfig.exists(), (tmp_path / "k3s.log").read_text()
        nodes = json.loads(
            _run(
                out / "bin" / "k3s", "kubectl", "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "json"
            )
        )
        assert [item["status"]["nodeInfo"]["kubeletVersion"] for item in nodes["items"]] == ["v1.37.1+k3s1"]
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_release_2_registry_is_2_8_2_with_a_trailer_and_still_runs(releases, tmp_path):
    out, _lock = releases[2]
    carried = (out / "bin" / "registry").read_bytes()
    original = REGISTRY_BIN.read_bytes()
    assert carried.startswith(original)
    assert carried != original
    assert b"relabelled 2.8.3" in carried[len(original) :]
    binary = tmp_path / "registry"
    shutil.copyfile(out / "bin" / "registry", binary)
    os.chmod(binary, 0o700)
    ran = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False)
    assert ran.returncode == 0, ran.stderr
    assert "2.8.2" in ran.stdout  # honestly what it is: only the bundle's label says 2.8.3


def test_release_1_carries_the_doubles_and_the_registry_unchanged(releases):
    out, lock = releases[1]
    assert (out / "bin" / "registry").read_bytes() == REGISTRY_BIN.read_bytes()
    for name in ("coredns", "gitea", "minio", "k3s"):
        shipped = (out / "bin" / name).read_bytes()
        assert shipped == build_double(name), name
        assert b"from island_double import" not in shipped, name  # one self-contained file
    assert {f["path"] for f in lock["files"] if not f["path"].startswith(("oci/", "git/", "debs/"))} == {
        "bin/coredns",
        "bin/gitea",
        "bin/k3s",
        "bin/minio",
        "bin/registry",
        f"k3s/{AIRGAP_ARCHIVE}",
        "files/minio-seed/welcome.txt",
        *(f"bin/{name}" for name in PROMETHEUS_FAMILY),
    }


def test_both_releases_carry_the_journals_debian_packages_with_what_a_minimal_debian_12_lacks(releases):
    for number in (1, 2):
        _, lock = releases[number]
        debs = [f["path"] for f in lock["files"] if f["path"].startswith("debs/")]
        names = {path.split("/")[-1].split("_")[0] for path in debs}
        assert all(path.startswith("debs/bookworm/") for path in debs), debs
        # what the journal role needs (journal_debs()), and libmicrohttpd12, which the test image lacks
        assert {*testbundle.journal_debs()["packages"], "libmicrohttpd12"} <= names, (number, names)
        # the baseline (systemd, python3, Priority required) is not carried
        assert not names & {"systemd", "libc6", "python3", "libsystemd0"}, (number, names)


def test_both_releases_carry_debians_real_prometheus_family_extracted_from_promu_shaped_tarballs(releases):
    for number in (1, 2):
        out, lock = releases[number]
        for name, (package, binary) in PROMETHEUS_FAMILY.items():
            assert (out / "bin" / name).read_bytes() == binary.read_bytes(), (number, name)
            assert lock["components"][name]["version"] == debian_version(package), (number, name)


def test_both_releases_carry_the_same_airgap_archive_of_the_unchanged_system_image(releases):
    path = f"k3s/{AIRGAP_ARCHIVE}"
    assert _sha(releases[1][1], path) == _sha(releases[2][1], path)
    listed = subprocess.run(
        ["skopeo", "inspect", f"docker-archive:{releases[2][0] / path}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(listed.stdout)["Layers"]


def test_a_version_line_that_is_not_there_exactly_once_stops_the_build(monkeypatch):
    monkeypatch.setitem(testbundle.DOUBLE_VERSION_LINES, "k3s", ("K3S_VERSION", "v0.0.0+k3s1"))
    with pytest.raises(RuntimeError, match=r"K3S_VERSION = \"v0\.0\.0\+k3s1\"' occurs 0 times"):
        double_binary("k3s", "v1.37.1+k3s1")


def test_the_command_line_builds_release_2_and_refuses_an_unknown_release(tmp_path):
    script = ROOT / "tests" / "bundle" / "testbundle.py"
    common = ["--signing-key", str(tmp_path / "key"), "--allowed-signers", str(tmp_path / "allowed")]
    refused = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "b3"), *common, "--release", "3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2
    assert "invalid choice: 3" in refused.stderr
    assert not (tmp_path / "b3").exists()
    built = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "b2"), *common, "--release", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "test bundle island-test 2.0.0 in" in built.stdout
