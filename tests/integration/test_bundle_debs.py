"""The builder's debs section, resolved by this machine's apt against its Debian 12 sources.

One small package (libmicrohttpd12, which journal-remote needs and a minimal Debian 12 lacks) keeps
the download to one file of about 120 kB.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

import pytest
import yaml
from ansible_collections.island.installer.plugins.module_utils.island_bundle import verify_bundle
from ansible_collections.island.installer.plugins.module_utils.island_bundle_build import (
    SpecError,
    build,
    load_spec,
)
from ansible_collections.island.installer.plugins.module_utils.island_bundle_debs import DebError
from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import LOCK_NAME
from testbundle import ensure_signing_key

pytestmark = pytest.mark.slow

RELEASE = "bookworm"


def _apt_reads(release: str) -> bool:
    if not shutil.which("apt-get"):
        return False
    policy = subprocess.run(["apt-cache", "policy"], capture_output=True, text=True, check=False).stdout
    return f"n={release}," in policy


needs_apt = pytest.mark.skipif(not _apt_reads(RELEASE), reason=f"this machine's apt has no {RELEASE} source")


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    base = tmp_path_factory.mktemp("signer")
    key, allowed = base / "signing_key", base / "allowed_signers"
    ensure_signing_key(key, allowed)
    return key, allowed


def _spec(path, debs):
    path.write_text(yaml.safe_dump({"name": "debs-test", "version": "1.0.0", "debs": debs}), encoding="utf-8")
    return path


def _field(deb, name):
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


@needs_apt
def test_a_package_and_only_what_the_baseline_lacks_are_locked_under_debs(tmp_path, signer):
    spec = _spec(tmp_path / "spec.yml", {"release": RELEASE, "packages": ["libmicrohttpd12"]})
    bundle = tmp_path / "bundle"
    result = build(spec, bundle, signing_key=signer[0], cache_dir=tmp_path / "cache")

    debs = sorted((bundle / "debs" / RELEASE).iterdir())
    # libmicrohttpd12's dependencies (libc6, libgnutls30) are in the baseline (apt needs libgnutls30).
    assert [deb.name.split("_")[0] for deb in debs] == ["libmicrohttpd12"]
    deb = debs[0]
    assert _field(deb, "Package") == "libmicrohttpd12"
    assert result["debs"] == [
        {
            "package": "libmicrohttpd12",
            "version": _field(deb, "Version"),
            "architecture": _field(deb, "Architecture"),
            "file": deb.name,
        }
    ]
    # The lock's sha256 is the file's, and the file is the one apt's signed index names.
    listed = {entry["path"]: entry["sha256"] for entry in result["lock"]["files"]}
    digest = hashlib.sha256(deb.read_bytes()).hexdigest()
    assert listed == {f"debs/{RELEASE}/{deb.name}": digest}
    shown = subprocess.run(
        ["apt-cache", "show", f"libmicrohttpd12={_field(deb, 'Version')}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"SHA256: {digest}" in shown
    verify_bundle(bundle, allowed_signers=signer[1])

    again = build(spec, bundle, signing_key=signer[0], cache_dir=tmp_path / "cache")
    assert again["changed"] is False
    assert again["downloaded"] == []


@needs_apt
def test_a_deb_changed_in_the_bundle_is_downloaded_again_and_a_dropped_one_removed(tmp_path, signer):
    spec = _spec(tmp_path / "spec.yml", {"release": RELEASE, "packages": ["libmicrohttpd12"]})
    bundle = tmp_path / "bundle"
    build(spec, bundle, signing_key=signer[0], cache_dir=tmp_path / "cache")
    (deb,) = (bundle / "debs" / RELEASE).iterdir()
    deb.write_bytes(b"not a package")
    again = build(spec, bundle, signing_key=signer[0], cache_dir=tmp_path / "cache")
    assert len(again["downloaded"]) == 1
    verify_bundle(bundle, allowed_signers=signer[1])

    _spec(spec, None)
    dropped = build(spec, bundle, signing_key=signer[0], cache_dir=tmp_path / "cache")
    assert dropped["removed"] == [f"debs/{RELEASE}/{deb.name}"]
    assert not [entry for entry in dropped["lock"]["files"] if entry["path"].startswith("debs/")]
    assert not (bundle / "debs").exists()


@needs_apt
def test_a_package_apt_does_not_know_is_refused_by_name_and_nothing_is_signed(tmp_path, signer):
    spec = _spec(tmp_path / "spec.yml", {"release": RELEASE, "packages": ["no-such-package-island"]})
    with pytest.raises(DebError, match="no-such-package-island"):
        build(spec, tmp_path / "bundle", signing_key=signer[0], cache_dir=tmp_path / "cache")
    assert not (tmp_path / "bundle" / LOCK_NAME).exists()


@needs_apt
def test_a_release_this_machines_apt_does_not_read_is_refused_naming_it(tmp_path, signer):
    spec = _spec(tmp_path / "spec.yml", {"release": "woody", "packages": ["libmicrohttpd12"]})
    with pytest.raises(DebError, match=r"no source for woody \(it reads: .*bookworm"):
        build(spec, tmp_path / "bundle", signing_key=signer[0], cache_dir=tmp_path / "cache")
    assert not (tmp_path / "bundle" / "debs").exists()


def test_the_debs_section_is_checked_with_every_problem_named(tmp_path):
    spec = _spec(
        tmp_path / "spec.yml",
        {"release": "Bookworm!", "packages": ["ok-name", "Bad_Name"], "baseline": "systemd", "mirror": "x"},
    )
    with pytest.raises(SpecError) as raised:
        load_spec(spec)
    problems = raised.value.problems
    assert "debs: unknown key 'mirror' (known: baseline, packages, release)" in problems
    assert "debs.release: the Debian release's codename, such as bookworm" in problems
    assert any("'Bad_Name' is not a Debian package name" in p for p in problems)
    assert "debs.baseline: a list of Debian package names" in problems


def test_a_file_entry_cannot_write_under_debs(tmp_path):
    spec = tmp_path / "spec.yml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "version": "1",
                "files": [
                    {"dest": "debs/bookworm/evil.deb", "url": "https://example.invalid/e", "sha256": "0" * 64}
                ],
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(SpecError, match="reserved for the builder's own output"):
        load_spec(spec)
