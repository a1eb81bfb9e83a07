"""The island_backup module: its actions in-process, check mode, failures and its documentation."""

from __future__ import annotations

import json
import os
import subprocess

import pyrage
import pytest
from ansible_collections.island.installer.plugins.modules import island_backup

from tests.support.modules import ModuleFail, run_module
from tests.support.playbook import ansible_doc, run_json_play


@pytest.fixture
def island(tmp_path):
    """A controller state directory, an age key made by the stock age-keygen, and a backup medium."""
    key = tmp_path / "key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    os.chmod(key, 0o600)
    recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True)
    secrets = tmp_path / "state" / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "registry-pull-password").write_text("s3cret\n")
    (tmp_path / "state" / "island-receipt.json").write_text("{}\n")
    (tmp_path / "media").mkdir()
    return {
        "key": str(key),
        "recipient": recipient.stdout.strip(),
        "media": str(tmp_path / "media"),
        "parts": [
            {"name": "secrets", "path": str(secrets)},
            {"name": "receipt", "path": str(tmp_path / "state" / "island-receipt.json")},
        ],
    }


def _create(island, check_mode=False):
    args = {"action": "create", "directory": island["media"], "parts": island["parts"]}
    return run_module(island_backup, {**args, "recipients": [island["recipient"]]}, check_mode=check_mode)


def test_create_verify_extract_and_prune_through_the_module(tmp_path, island):
    created = _create(island)
    assert created["changed"] is True and created["parts"] == ["secrets", "receipt"]
    verified = run_module(
        island_backup, {"action": "verify", "archive": created["path"], "identity_file": island["key"]}
    )
    assert verified["changed"] is False and verified["sha256"] == created["sha256"]
    dest = tmp_path / "restore"
    extracted = run_module(
        island_backup,
        {"action": "extract", "archive": created["path"], "dest": str(dest), "identity_file": island["key"]},
    )
    assert extracted["changed"] is True
    assert (dest / "parts" / "secrets" / "registry-pull-password").read_text() == "s3cret\n"
    pruned = run_module(island_backup, {"action": "prune", "directory": island["media"], "keep": 1})
    assert pruned == {**pruned, "changed": False, "kept": [os.path.basename(created["path"])], "removed": []}


def test_the_identity_may_come_from_a_vault_and_is_never_logged(island):
    assert island_backup.ARGUMENT_SPEC["identity"]["no_log"] is True
    created = _create(island)
    with open(island["key"]) as handle:
        identity = handle.read()
    verified = run_module(
        island_backup, {"action": "verify", "archive": created["path"], "identity": identity}
    )
    assert identity.strip() not in json.dumps(verified)


def test_check_mode_writes_nothing(tmp_path, island):
    preview = _create(island, check_mode=True)
    assert preview["changed"] is True and os.listdir(island["media"]) == []
    created = _create(island)
    args = {
        "action": "extract",
        "archive": created["path"],
        "dest": str(tmp_path / "r"),
        "identity_file": island["key"],
    }
    assert run_module(island_backup, args, check_mode=True)["changed"] is True
    assert not (tmp_path / "r").exists()


def test_a_refused_archive_fails_with_its_problems_naming_the_part(island):
    created = _create(island)
    with open(island["key"]) as handle:
        identity = pyrage.x25519.Identity.from_str(handle.read().strip().splitlines()[-1])
    with open(created["path"], "rb") as handle:
        plaintext = pyrage.decrypt(handle.read(), [identity])
    with open(created["path"], "wb") as handle:
        handle.write(pyrage.encrypt(plaintext.replace(b"s3cret", b"s3cre7"), [identity.to_public()]))
    with pytest.raises(ModuleFail) as caught:
        run_module(
            island_backup, {"action": "verify", "archive": created["path"], "identity_file": island["key"]}
        )
    failure = caught.value.args[0]
    assert failure["error"] == "BackupIntegrityError"
    assert failure["problems"][0].startswith("part secrets: parts/secrets/registry-pull-password has sha256")


def test_missing_arguments_and_unreadable_identities_fail_before_anything_changes(island):
    with pytest.raises(ModuleFail) as caught:
        run_module(
            island_backup, {"action": "create", "directory": island["media"], "parts": island["parts"]}
        )
    assert "recipients" in caught.value.args[0]["msg"]
    with pytest.raises(ModuleFail) as caught:
        run_module(
            island_backup, {"action": "verify", "archive": "x.tar.age", "identity_file": island["key"] + "x"}
        )
    assert caught.value.args[0]["error"] == "BackupInputError"
    assert "cannot read identity file" in caught.value.args[0]["msg"]
    assert os.listdir(island["media"]) == []


def test_module_documentation_renders_with_ansible_doc():
    proc = ansible_doc("--json", "island_backup")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["island_backup"]
    assert doc["doc"]["attributes"]["check_mode"]["support"] == "full"
    assert set(doc["doc"]["options"]) == set(island_backup.ARGUMENT_SPEC)
    assert doc["examples"].strip() and doc["return"]


def test_through_ansible_playbook_the_identity_never_appears_in_the_output(tmp_path, island):
    with open(island["key"]) as handle:
        identity = handle.read()
    create = {"action": "create", "directory": island["media"], "parts": island["parts"]}
    tasks = [
        {
            "island.installer.island_backup": {**create, "recipients": [island["recipient"]]},
            "register": "made",
        },
        {
            "island.installer.island_backup": {
                "action": "verify",
                "archive": "{{ made.path }}",
                "identity": identity,
            }
        },
    ]
    (tmp_path / "play.yml").write_text(
        json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])
    )
    proc, results = run_json_play(tmp_path / "play.yml", "-v")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert results[0]["changed"] is True and results[1]["sha256"] == results[0]["sha256"]
    assert "AGE-SECRET-KEY-1" not in proc.stdout + proc.stderr
