"""The transfer-zone builder, against real sources on loopback (tests/bundle/testbundle.py)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.island.installer.plugins.module_utils.island_bundle import verify_bundle
from ansible_collections.island.installer.plugins.module_utils.island_bundle_build import (
    DownloadError,
    SpecError,
    build,
    load_spec,
)
from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import (
    LOCK_NAME,
    SIGNATURE_NAME,
)
from testbundle import IMAGES, MULTI_ARCH, REGISTRY_BIN, Sources, ensure_signing_key, publish_git_repository

from tests.support import ROOT
from tests.support.playbook import ansible

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    with Sources(tmp_path_factory.mktemp("sources")) as running:
        yield running


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    base = tmp_path_factory.mktemp("signer")
    key, allowed = base / "signing_key", base / "allowed_signers"
    ensure_signing_key(key, allowed)
    return key, allowed


@pytest.fixture
def built(tmp_path, sources, signer):
    spec = sources.write_spec(tmp_path / "spec.yml")
    bundle, cache = tmp_path / "bundle", tmp_path / "cache"
    result = build(spec, bundle, signing_key=signer[0], cache_dir=cache)
    return spec, bundle, cache, result


def _skopeo_digest(sources, reference):
    repo = reference.split("/", 1)[1]
    raw = sources.registry.skopeo_raw(repo)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_a_built_bundle_verifies_and_carries_upstream_digests(built, sources, signer):
    _spec, bundle, _cache, result = built
    assert result["changed"]
    verification = verify_bundle(bundle, allowed_signers=signer[1])
    lock = verification.lock
    assert (bundle / "bin" / "registry").read_bytes() == REGISTRY_BIN.read_bytes()
    assert lock["components"]["registry"]["files"] == ["bin/registry"]
    digests = {image["reference"]: image["digest"] for image in lock["images"]}
    assert set(digests) == {*IMAGES, MULTI_ARCH}
    for reference, digest in digests.items():
        # skopeo, an independent client, reads the upstream manifest bytes: same digest.
        assert digest == _skopeo_digest(sources, reference), reference
    [repo] = lock["git"]
    heads = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/main", "refs/tags/v1.0"],
        cwd=sources.served / "git" / "island-config.git",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert repo["refs"] == dict(line.split() for line in heads if line)


def test_rebuilding_with_the_same_spec_downloads_nothing(built, sources, signer):
    spec, bundle, cache, _first = built
    lock_before = (bundle / LOCK_NAME).read_bytes()
    sig_before = (bundle / SIGNATURE_NAME).read_bytes()
    http_mark = len(sources.server.requests)
    registry_mark = sources.registry.log_mark()
    again = build(spec, bundle, signing_key=signer[0], cache_dir=cache)
    assert not again["changed"]
    assert again["downloaded"] == []
    # Asserted on the servers' own logs, not only on the builder's word. Refs are still resolved
    # (git's ref discovery, a tag's manifest), as a moved tag or branch must be seen; no content is.
    fetched = [
        path
        for path in sources.server.requests[http_mark:]
        if not (path.endswith(".git/HEAD") or "/info/refs" in path)
    ]
    assert fetched == []
    blob_gets = [r for r in sources.registry.requests(registry_mark) if r[0] == "GET" and "/blobs/" in r[1]]
    assert blob_gets == []
    assert (bundle / LOCK_NAME).read_bytes() == lock_before
    assert (bundle / SIGNATURE_NAME).read_bytes() == sig_before


def test_a_download_that_does_not_match_its_checksum_is_refused_and_nothing_is_kept(
    tmp_path, sources, signer
):
    data = sources.spec()
    wrong = "0" * 64
    data["files"][0]["sha256"] = wrong
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump(data))
    bundle = tmp_path / "bundle"
    with pytest.raises(DownloadError) as caught:
        build(spec, bundle, signing_key=signer[0], cache_dir=tmp_path / "cache")
    message = str(caught.value)
    assert data["files"][0]["url"] in message
    assert f"the spec expects {wrong}" in message
    assert "nothing of it was kept" in message
    files = [p for p in bundle.rglob("*") if p.is_file()]
    leftovers = [p for p in files if "minio-seed" in str(p) or p.name.endswith(".partial")]
    assert leftovers == []
    assert not (bundle / LOCK_NAME).exists()


def test_a_checksum_file_without_the_files_entry_is_a_clear_error(tmp_path, sources, signer):
    data = sources.spec()
    data["components"]["registry"]["files"][0]["checksum_name"] = "registry_9.9.9_linux_amd64.tar.gz"
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump(data))
    with pytest.raises(DownloadError, match=r"lists no checksum for registry_9\.9\.9_linux_amd64\.tar\.gz"):
        build(spec, tmp_path / "bundle", signing_key=signer[0], cache_dir=tmp_path / "cache")


def test_an_invalid_spec_is_refused_with_every_problem_named(tmp_path):
    spec = tmp_path / "spec.yml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "version": "1",
                "colour": "blue",
                "components": {"k3s": {"version": "v1", "files": [{"dest": "../k3s", "url": "ftp://x/k3s"}]}},
                "images": [{"reference": "UPPER/case:1"}],
                "git": [{"name": "cfg", "url": "https://example.invalid/cfg.git"}],
            }
        )
    )
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    problems = caught.value.problems
    assert any("unknown key 'colour'" in p for p in problems)
    assert any(p.startswith("components.k3s.files[0].dest") for p in problems)
    assert any("components.k3s.files[0].url: must be an https, http or file URL" in p for p in problems)
    assert any("exactly one of sha256 and checksum_url" in p for p in problems)
    assert any(p.startswith("images[0].reference") for p in problems)
    assert any(p.startswith("git[0].refs") for p in problems)


def test_a_file_the_spec_no_longer_names_is_removed_and_the_lock_resigned(built, signer):
    spec, bundle, cache, _first = built
    data = yaml.safe_load(spec.read_text())
    data["files"] = []
    spec.write_text(yaml.safe_dump(data))
    sig_before = (bundle / SIGNATURE_NAME).read_bytes()
    result = build(spec, bundle, signing_key=signer[0], cache_dir=cache)
    assert result["changed"]
    assert result["removed"] == ["files/minio-seed/welcome.txt"]
    assert not (bundle / "files").exists()
    assert (bundle / SIGNATURE_NAME).read_bytes() != sig_before
    verify_bundle(bundle, allowed_signers=signer[1])


def test_new_commits_upstream_reach_the_git_bundle(tmp_path, sources, signer):
    spec = sources.write_spec(tmp_path / "spec.yml")
    bundle, cache = tmp_path / "bundle", tmp_path / "cache"
    first = build(spec, bundle, signing_key=signer[0], cache_dir=cache)
    old = first["lock"]["git"][0]["refs"]["refs/heads/main"]
    repo = sources.git_repo
    (repo / "NEWS").write_text("second release\n")
    subprocess.run(["git", "add", "NEWS"], cwd=repo, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@island.internal", "commit", "-qm", "News"],
        cwd=repo,
        check=True,
    )
    publish_git_repository(repo, sources.served / "git" / "island-config.git")
    second = build(spec, bundle, signing_key=signer[0], cache_dir=cache)
    new = second["lock"]["git"][0]["refs"]["refs/heads/main"]
    assert new != old
    assert second["git_written"] == ["git/island-config.bundle"]
    listed = subprocess.run(
        ["git", "bundle", "list-heads", str(bundle / "git" / "island-config.bundle")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"{new} refs/heads/main" in listed


def test_bundle_playbook_builds_and_verify_playbook_accepts_it(tmp_path, sources, signer):
    spec = sources.write_spec(tmp_path / "spec.yml")
    bundle = tmp_path / "bundle"
    built = ansible(
        "ansible-playbook",
        str(ROOT / "playbooks" / "bundle.yml"),
        "-e",
        f"bundle_spec={spec}",
        "-e",
        f"island_bundle_dir={bundle}",
        "-e",
        f"bundle_signing_key={signer[0]}",
    )
    assert built.returncode == 0, built.stdout + built.stderr
    verified = ansible(
        "ansible-playbook",
        str(ROOT / "playbooks" / "verify.yml"),
        "-e",
        f"island_bundle_dir={bundle}",
        "-e",
        f"island_allowed_signers={signer[1]}",
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "bundle island-test 1.0.0" in verified.stdout
    assert "registry 2.8.2" in verified.stdout
    assert "coredns 1.14.3" in verified.stdout
    shutil.rmtree(bundle)


def _verify_playbook(bundle, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            str(ROOT / "playbooks" / "verify.yml"),
            "-e",
            f"island_bundle_dir={bundle}",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )


def test_verify_playbook_names_a_tampered_file_with_both_digests(built, signer):
    _spec, bundle, _cache, result = built
    binary = bundle / "bin" / "registry"
    data = bytearray(binary.read_bytes())
    data[1000] ^= 0xFF
    binary.write_bytes(bytes(data))
    expected = next(f["sha256"] for f in result["lock"]["files"] if f["path"] == "bin/registry")
    run = _verify_playbook(bundle, "-e", f"island_allowed_signers={signer[1]}")
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "bin/registry" in output
    assert expected in output
    assert hashlib.sha256(bytes(data)).hexdigest() in output


def test_verify_playbook_asks_for_the_allowed_signers_before_reading_the_bundle(built):
    run = _verify_playbook(built[1])
    assert run.returncode != 0
    assert "island_allowed_signers is not set" in run.stdout + run.stderr


def test_verify_playbook_reports_a_skipped_signature_loudly(built):
    run = _verify_playbook(built[1], "-e", "bundle_skip_signature=true")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SIGNATURE WAS NOT CHECKED" in run.stdout
