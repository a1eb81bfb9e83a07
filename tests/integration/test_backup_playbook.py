"""playbooks/backup.yml on a controller whose island has no k3s server (the island scenario runs it
with one, where the backup also carries a fresh etcd snapshot): what it refuses before taking
anything, what a backup holds, `verify`, a tampered part refused, and retention.

The keys come from the stock age-keygen and the archive is opened with the stock age tool, as an
operator would by hand (tools/lib/setup.sh installs Debian's `age`)."""

from __future__ import annotations

import io
import json
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pyrage
import pytest
import yaml

from tests.support import ROOT
from tests.support.playbook import TEST_ISLAND, ansible_env, local_inventory, refused, run_playbook

PLAYBOOK = ROOT / "playbooks" / "backup.yml"


@pytest.fixture
def island(tmp_path: Path) -> dict:
    """A controller's state (CA, secrets, receipt, bundle record) and its inventory directory, with
    a backup directory and an age key beside them."""
    state = tmp_path / "state"
    (state / "pki").mkdir(parents=True)
    (state / "pki" / "root.key").write_text("encrypted CA key\n")
    (state / "secrets").mkdir(mode=0o700)
    (state / "secrets" / "k3s-token").write_text("K10secret\n")
    (state / "secrets" / "k3s-token").chmod(0o600)
    (state / "island-receipt.json").write_text('{"receipt": 1}\n')
    (state / "island-bundle-applied.json").write_text('{"version": "1.0.0"}\n')
    inventory_dir = tmp_path / "inventory"
    inventory_dir.mkdir()
    hosts = inventory_dir / "hosts.yml"
    variables = {
        **TEST_ISLAND,
        "island_pki_dir": str(state / "pki"),
        "island_secrets_dir": str(state / "secrets"),
    }
    hosts.write_text(yaml.safe_dump(local_inventory({"island_dns": ["infra1"]}, {"infra1": {}}, **variables)))
    backups = tmp_path / "media"
    backups.mkdir(mode=0o700)
    key = tmp_path / "backup-key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True)
    return {"hosts": hosts, "backups": backups, "key": key, "recipient": recipient.stdout.strip()}


def backup(island: dict, *args: str):
    return run_playbook(PLAYBOOK, *args, inventory=island["hosts"])


def create_args(island: dict, *extra: str) -> list[str]:
    recipients = json.dumps({"backup_recipients": [island["recipient"]]})
    return ["-e", f"backup_dir={island['backups']}", "-e", recipients, *extra]


def archives(island: dict) -> list[Path]:
    return sorted(island["backups"].glob("island-backup-*.tar.age"))


def test_a_backup_without_a_directory_or_a_recipient_is_refused_before_anything_is_taken(island):
    output = refused(backup(island, "-e", f"backup_dir={island['backups']}"))
    assert "a backup needs backup_dir" in output and "backup_recipients" in output
    assert "Nothing was taken" in output
    output = refused(backup(island, *create_args(island)[2:], "-e", f"backup_dir={island['backups']}/absent"))
    assert f"the backup directory {island['backups']}/absent does not exist" in output
    output = refused(backup(island, *create_args(island), "-e", f"island_pki_dir={island['backups']}/no-ca"))
    assert f"nothing to back up at {island['backups']}/no-ca" in output
    output = refused(backup(island, *create_args(island), "--check"))
    assert "backup.yml has no check mode" in output
    assert archives(island) == []


@pytest.mark.skipif(Path("/usr/local/bin/k3s").exists(), reason="a k3s here would take the snapshot")
def test_a_part_that_cannot_be_taken_stops_the_backup_and_leaves_no_staging_directory(island, tmp_path):
    # server1 is this machine, over the local connection, with no k3s: the snapshot cannot be saved
    inventory = yaml.safe_load(island["hosts"].read_text())
    inventory["all"]["hosts"]["server1"] = {}
    inventory["all"]["children"]["k3s_servers"] = {"hosts": {"server1": {}}}
    island["hosts"].write_text(yaml.safe_dump(inventory))
    staging_parent = tmp_path / "controller-tmp"
    staging_parent.mkdir()
    env = ansible_env(TMPDIR=str(staging_parent))
    result = run_playbook(PLAYBOOK, *create_args(island), "-v", inventory=island["hosts"], env=env)
    output = refused(result)
    assert "the backup's part etcd-snapshot could not be taken from server1" in output
    assert f"nothing was written to {island['backups']}" in output
    # the staging directory was made under TMPDIR (the run names it, -v) and is gone; no archive
    assert str(staging_parent / "island-backup.") in output
    assert list(staging_parent.iterdir()) == []
    assert archives(island) == []


def test_a_backup_holds_the_controllers_state_opens_with_age_verifies_and_refuses_a_changed_part(island):
    result = backup(island, *create_args(island))
    assert result.returncode == 0, result.stdout + result.stderr
    [archive] = archives(island)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert "parts: ca, secrets, inventory, receipt, bundle-record" in result.stdout

    # the stock age tool opens it, and the parts are the controller's files
    plaintext = subprocess.run(
        ["age", "-d", "-i", str(island["key"]), str(archive)], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(plaintext)) as tar:
        names = tar.getnames()
        assert tar.extractfile("parts/secrets/k3s-token").read() == b"K10secret\n"
        assert tar.extractfile("parts/inventory/hosts.yml").read() == island["hosts"].read_bytes()
    assert names[:2] == ["manifest.json", "manifest.json.sha256"]
    assert "parts/etcd-snapshot" not in names  # no k3s server in this island

    verify = ["-e", "backup_action=verify", "-e", f"backup_archive={archive}"]
    verify += ["-e", f"backup_identity_file={island['key']}"]
    result = backup(island, *verify)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "parts: ca, secrets, inventory, receipt, bundle-record" in result.stdout

    # one changed byte in a part, encrypted again to the same (public) recipient
    changed = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(plaintext)) as src, tarfile.open(fileobj=changed, mode="w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name == "parts/secrets/k3s-token":
                data = b"K10secreT\n"
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    recipient = pyrage.x25519.Recipient.from_str(island["recipient"])
    archive.write_bytes(pyrage.encrypt(changed.getvalue(), [recipient]))
    output = refused(backup(island, *verify))
    assert "secrets" in output and "k3s-token" in output
    # restore.yml refuses it too, before anything is written
    elsewhere = archive.parent / "restored-secrets"
    restore = ["-e", f"restore_archive={archive}", "-e", f"restore_identity_file={island['key']}"]
    restore += [
        "-e",
        "restore_parts=secrets",
        "-e",
        json.dumps({"restore_paths": {"secrets": str(elsewhere)}}),
    ]
    output = refused(run_playbook(RESTORE, *restore))
    assert "k3s-token" in output
    assert not elsewhere.exists()
    assert not list(archive.parent.glob(".island-backup-restore.*"))


def test_only_the_newest_archives_are_kept(island):
    for _ in range(2):
        result = backup(island, *create_args(island, "-e", "backup_keep=1"))
        assert result.returncode == 0, result.stdout + result.stderr
    assert len(archives(island)) == 1
    assert "removed as older than the 1 newest: ['" in result.stdout


RESTORE = ROOT / "playbooks" / "restore.yml"


def _tree(root: Path) -> dict:
    """Every path under ``root`` with its mode and, for a file, its bytes."""
    return {
        str(path.relative_to(root)): (
            stat.S_IMODE(path.stat().st_mode),
            path.read_bytes() if path.is_file() else None,
        )
        for path in sorted(root.rglob("*"))
    }


def test_a_new_controller_gets_back_the_same_state_and_a_restore_never_overwrites(island, tmp_path):
    assert backup(island, *create_args(island)).returncode == 0
    [archive] = archives(island)
    state, inventory = tmp_path / "state", tmp_path / "inventory"
    before = {"state": _tree(state), "inventory": _tree(inventory)}
    restore = ["-e", f"restore_archive={archive}", "-e", f"restore_identity_file={island['key']}"]

    # the controller's disk is lost
    shutil.rmtree(state)
    shutil.rmtree(inventory)
    preview = run_playbook(RESTORE, *restore, "--check")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert f"would restore ca to {state}/pki" in preview.stdout
    assert not state.exists() and not inventory.exists()

    result = run_playbook(RESTORE, *restore)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"state": _tree(state), "inventory": _tree(inventory)} == before
    assert not list(state.glob(".island-backup-restore.*"))

    # a second restore refuses, naming what exists, and changes nothing
    (state / "secrets" / "k3s-token").write_text("K10newer\n")
    output = refused(run_playbook(RESTORE, *restore))
    assert f"{state}/secrets exists; a restore never overwrites state" in output
    assert "Nothing was restored" in output or "nothing was restored" in output
    assert (state / "secrets" / "k3s-token").read_text() == "K10newer\n"

    # one part, elsewhere
    elsewhere = tmp_path / "elsewhere" / "secrets"
    one = [
        *restore,
        "-e",
        "restore_parts=secrets",
        "-e",
        json.dumps({"restore_paths": {"secrets": str(elsewhere)}}),
    ]
    result = run_playbook(RESTORE, *one)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (elsewhere / "k3s-token").read_text() == "K10secret\n"
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o700


def test_a_restore_without_its_inputs_or_with_another_identity_is_refused(island, tmp_path):
    assert backup(island, *create_args(island)).returncode == 0
    [archive] = archives(island)
    output = refused(run_playbook(RESTORE, "-e", f"restore_archive={archive}"))
    assert "restore.yml needs restore_archive" in output and "restore_identity_file" in output
    other = tmp_path / "other-key.txt"
    subprocess.run(["age-keygen", "-o", str(other)], check=True, capture_output=True)
    shutil.rmtree(tmp_path / "state")
    output = refused(
        run_playbook(RESTORE, "-e", f"restore_archive={archive}", "-e", f"restore_identity_file={other}")
    )
    assert str(archive) in output
    assert not (tmp_path / "state").exists()
    output = refused(
        run_playbook(
            RESTORE,
            "-e",
            f"restore_archive={archive}",
            "-e",
            f"restore_identity_file={island['key']}",
            "-e",
            "restore_parts=ca,nosuch",
        )
    )
    assert "part nosuch is not in this backup" in output
    assert not (tmp_path / "state").exists()
