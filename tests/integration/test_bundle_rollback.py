"""A validly signed older bundle verifies, and the plan refuses it until the operator names its
version (issue 15, item 9). Both bundles are real signed bundles; the bundle and upgrade roles run
as site.yml and upgrade.yml run them, on a host over the local connection, in check mode (the
plan runs in check mode too, as the preview; nothing is written on this machine). The controller's
record is the one the upgrade role writes for the newer bundle."""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml
from ansible_collections.island.installer.plugins.module_utils.island_bundle import (
    sign,
    verify_bundle,
    write_lock,
)
from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import LOCK_NAME

from tests.support import ROOT
from tests.support.bundle import default_content, make_key, write_allowed_signers, write_files
from tests.support.playbook import TEST_ISLAND, ansible_env, local_inventory, run_playbook

OLDER, NEWER = "2026.11.0", "2026.12.0"
ROLES = ["bundle", "upgrade"]  # as site.yml and upgrade.yml run them, before any other role


def _signed_bundle(root, key, version, created):
    files, sections = default_content()
    write_files(root, files)
    write_lock(root, name="island", version=version, created=created, **sections)
    sign(root, key.private_path)
    data = (root / LOCK_NAME).read_bytes()
    return {
        "name": "island",
        "version": version,
        "created": created,
        "lock_sha256": hashlib.sha256(data).hexdigest(),
    }


@pytest.fixture
def island(tmp_path):
    key = make_key(tmp_path / "keys", "release")
    signers = write_allowed_signers(
        tmp_path / "allowed_signers", ("release@island.example", key, 'namespaces="island-bundle"')
    )
    older = _signed_bundle(tmp_path / "bundle-older", key, OLDER, "2026-11-21T12:00:00Z")
    newer = _signed_bundle(tmp_path / "bundle-newer", key, NEWER, "2026-12-21T12:00:00Z")
    state = tmp_path / "state"
    (state / "secrets").mkdir(parents=True)
    # What the upgrade role wrote when the island took the newer bundle.
    (state / "island-bundle-applied.json").write_text(json.dumps(newer, indent=2) + "\n")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump(
            local_inventory(
                {},
                {"island-host": {"island_address": "10.98.0.10"}},
                **TEST_ISLAND,
                island_allowed_signers=str(signers),
                island_secrets_dir=str(state / "secrets"),
                island_pki_dir=str(state / "pki"),
            )
        )
    )
    play = tmp_path / "plan.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Verify and plan",
                    "hosts": "all",
                    "gather_facts": False,
                    "roles": ["bundle", "upgrade"],
                }
            ]
        )
    )
    return {
        "tmp": tmp_path,
        "signers": signers,
        "older": older,
        "newer": newer,
        "inventory": inventory,
        "play": play,
    }


def _plan(island, bundle, *extra):
    return run_playbook(
        island["play"],
        "--check",
        "-e",
        f"island_bundle_dir={island['tmp'] / bundle}",
        *extra,
        inventory=island["inventory"],
        env=ansible_env(ANSIBLE_ROLES_PATH=str(ROOT / "roles")),
    )


def test_a_signed_older_bundle_verifies(island):
    result = verify_bundle(island["tmp"] / "bundle-older", allowed_signers=island["signers"])

    assert result.lock["bundle"]["version"] == OLDER
    assert result.lock_sha256 == island["older"]["lock_sha256"]


def test_the_older_bundle_is_refused_without_the_variable_naming_both_versions(island):
    result = _plan(island, "bundle-older")

    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert "Bundle is signed by an allowed signer and every file matches its lock" in output
    assert f"the bundle island {OLDER}" in output
    assert f"is older than island {NEWER}" in output
    assert f"-e upgrade_rollback_to={OLDER}" in output
    assert "The controller records the bundle the island takes" not in output


def test_the_older_bundle_is_accepted_when_its_version_is_named(island):
    result = _plan(island, "bundle-older", "-e", f"upgrade_rollback_to={OLDER}")

    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, output
    assert f"bundle: island {NEWER}" in output and f"-> island {OLDER}" in output and "(rollback)" in output


def test_naming_another_version_is_refused(island):
    result = _plan(island, "bundle-older", "-e", "upgrade_rollback_to=2026.10.0")

    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert f"upgrade_rollback_to is '2026.10.0' but the bundle to apply is island {OLDER}" in output


def test_the_newer_bundle_itself_passes_unchanged(island):
    result = _plan(island, "bundle-newer")

    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 0, output
    assert f"bundle: island {NEWER}" in output and "(unchanged)" in output
