"""The part `gitea` in playbooks/backup.yml and restore.yml, on this machine: what both refuse before
anything is taken or changed. The part is a real `gitea dump` of the Gitea double; the archive is
made by island_backup as backup.yml makes it. (The dump and the documented restore themselves are
proven in tests/doubles/gitea/test_gitea_dump.py.)"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pyrage
import pytest
import yaml
from ansible_collections.island.installer.plugins.module_utils.island_backup import create, load_identities

from tests.support import ROOT
from tests.support.doubles import run_double
from tests.support.doubles.gitea import Gitea, make_pki, needs_gitea_double
from tests.support.playbook import TEST_ISLAND, ansible_env, local_inventory, refused, run_playbook

pytestmark = needs_gitea_double()

BACKUP = ROOT / "playbooks" / "backup.yml"
RESTORE = ROOT / "playbooks" / "restore.yml"


@pytest.fixture(scope="module")
def gitea_part(tmp_path_factory, gitea_pki_module):
    """The part `gitea` as roles/gitea/tasks/backup.yml writes it, from a real dump of the double."""
    base = tmp_path_factory.mktemp("gitea")
    server = Gitea(base / "server", pki=gitea_pki_module).bootstrap_admin()
    part = base / "part"
    (part / "secrets").mkdir(parents=True)
    dumped = server.cli(
        "dump", "--file", str(part / "gitea-dump.tar.gz"), "--type", "tar.gz", "--tempdir", str(base)
    )
    assert dumped.returncode == 0
    (part / "gitea-version").write_text(run_double("gitea", ["--version"]).stdout)
    for name in ("secret_key", "internal_token", "jwt_secret"):
        (part / "secrets" / name).write_text(f"{name} value\n")
    return part


@pytest.fixture(scope="module")
def gitea_pki_module(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def island(tmp_path, gitea_part):
    """A controller's state, an age key, an archive with the parts ca and gitea, and an inventory
    whose Gitea host is this machine (which has no Gitea converged)."""
    state = tmp_path / "state"
    (state / "pki").mkdir(parents=True)
    (state / "pki" / "root.key").write_text("encrypted CA key\n")
    key = tmp_path / "key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    key.chmod(0o600)
    recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True)
    media = tmp_path / "media"
    media.mkdir()
    made = create(
        str(media),
        [{"name": "ca", "path": str(state / "pki")}, {"name": "gitea", "path": str(gitea_part)}],
        [recipient.stdout.strip()],
    )
    inventory = tmp_path / "inventory" / "hosts.yml"
    inventory.parent.mkdir()
    variables = {
        **TEST_ISLAND,
        "island_pki_dir": str(state / "pki"),
        "island_secrets_dir": str(state / "secrets"),
    }
    hosts = {"gitea1": {"island_address": "127.0.0.1"}}
    inventory.write_text(yaml.safe_dump(local_inventory({"island_gitea": ["gitea1"]}, hosts, **variables)))
    temp = tmp_path / "tmp"
    temp.mkdir()
    return {
        "state": state,
        "key": key,
        "recipient": recipient.stdout.strip(),
        "archive": Path(made["path"]),
        "inventory": inventory,
        "media": media,
        "env": ansible_env(TMPDIR=str(temp)),
        "tmp": temp,
    }


def _restore(island, *extra, inventory=None):
    args = ["-e", f"restore_archive={island['archive']}", "-e", f"restore_identity_file={island['key']}"]
    return run_playbook(RESTORE, *args, *extra, inventory=inventory or island["inventory"], env=island["env"])


def test_the_gitea_part_needs_a_gitea_host_in_the_inventory(island):
    shutil.rmtree(island["state"])
    output = refused(_restore(island, "-e", "restore_parts=ca,gitea", inventory="localhost,"))
    assert (
        "restore_parts names gitea, which goes back onto the island's island_gitea hosts: give the" in output
    )
    assert not island["state"].exists()  # not even the controller's part


def test_a_default_restore_leaves_gitea_alone_and_gives_the_controller_its_parts(island):
    shutil.rmtree(island["state"])
    result = _restore(island)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (island["state"] / "pki" / "root.key").read_text() == "encrypted CA key\n"
    assert "Gitea comes back" in result.stdout and "island-restore-gitea" not in result.stdout
    assert not list(island["tmp"].iterdir())


def test_a_host_without_gitea_converged_is_refused_and_nothing_is_left_behind(island):
    output = refused(_restore(island, "-e", "restore_parts=gitea"))
    assert "gitea: nothing was changed on gitea1" in output
    assert "Gitea is not converged on gitea1" in output
    assert "run site.yml on it first" in output
    # the part was extracted into a private directory on the controller, removed again
    assert not list(island["tmp"].iterdir())


def test_a_tampered_gitea_part_is_refused_before_anything_changes(island):
    identities = load_identities(str(island["key"]))
    plaintext = pyrage.decrypt(island["archive"].read_bytes(), identities)
    changed = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(plaintext)) as src, tarfile.open(fileobj=changed, mode="w") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name == "parts/gitea/gitea-dump.tar.gz":
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    recipient = pyrage.x25519.Recipient.from_str(island["recipient"])
    island["archive"].write_bytes(pyrage.encrypt(changed.getvalue(), [recipient]))
    shutil.rmtree(island["state"])
    output = refused(_restore(island, "-e", "restore_parts=ca,gitea"))
    assert "part gitea" in output and "gitea-dump.tar.gz" in output
    assert not island["state"].exists()
    assert not list(island["tmp"].iterdir())


def test_a_backup_without_the_gitea_part_is_refused_when_gitea_is_named(island, tmp_path):
    only_ca = tmp_path / "only-ca"
    only_ca.mkdir()
    made = create(str(only_ca), [{"name": "ca", "path": str(island["state"] / "pki")}], [island["recipient"]])
    island["archive"] = Path(made["path"])
    output = refused(_restore(island, "-e", "restore_parts=gitea"))
    assert "the backup does not hold gitea" in output and "(it holds ca)" in output


def test_a_backup_of_a_gitea_on_postgresql_is_refused_before_anything_is_taken(island):
    inventory = yaml.safe_load(island["inventory"].read_text())
    inventory["all"]["hosts"]["gitea1"]["gitea_database"] = "postgres"
    island["inventory"].write_text(yaml.safe_dump(inventory))
    (island["state"] / "secrets").mkdir()
    backups = island["media"] / "new"
    backups.mkdir()
    output = refused(
        run_playbook(
            BACKUP,
            "-e",
            f"backup_dir={backups}",
            "-e",
            '{"backup_recipients": ["' + island["recipient"] + '"]}',
            inventory=island["inventory"],
            env=island["env"],
        )
    )
    assert "gitea1 keeps Gitea's database in PostgreSQL" in output and "Nothing was taken" in output
    assert not list(backups.iterdir())
    assert not list(island["tmp"].iterdir())
