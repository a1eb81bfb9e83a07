"""playbooks/restore.yml for a lost cluster (restore_parts=etcd-snapshot): what it refuses before
anything changes, without k3s hosts (the island scenario's verify_cluster_restore.yml runs the whole
procedure on the converged island).

The inventories' hosts use the local connection, and every case here is refused before the play
would touch a host; each test also shows that the controller keeps no extracted snapshot behind."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from ansible_collections.island.installer.plugins.module_utils.island_backup import create

from tests.support import ROOT
from tests.support.playbook import TEST_ISLAND, local_inventory, refused, run_playbook

RESTORE = ROOT / "playbooks" / "restore.yml"


def etcd_snapshot(db: bytes) -> bytes:
    """An etcd snapshot's layout: the database (a multiple of 512 bytes), then its sha256."""
    return db + hashlib.sha256(db).digest()


@pytest.fixture
def controller(tmp_path: Path) -> dict:
    state = tmp_path / "state"
    (state / "secrets").mkdir(parents=True, mode=0o700)
    (state / "secrets" / "k3s-token").write_text("island-token\n")
    (state / "secrets" / "k3s-token").chmod(0o600)
    key = tmp_path / "backup-key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True)
    media = tmp_path / "media"
    media.mkdir()
    return {
        "state": state,
        "key": key,
        "recipient": recipient.stdout.strip(),
        "media": media,
        "tmp": tmp_path,
    }


def archive(controller: dict, snapshot: bytes | None) -> Path:
    """A backup of the controller's secrets and, unless None, of an etcd snapshot with these bytes."""
    parts = [{"name": "secrets", "path": str(controller["state"] / "secrets")}]
    if snapshot is not None:
        path = controller["tmp"] / "staged-etcd-snapshot"
        path.write_bytes(snapshot)
        parts.append({"name": "etcd-snapshot", "path": str(path)})
    directory = controller["media"] / ("with" if snapshot is not None else "without")
    directory.mkdir()
    return Path(create(str(directory), parts, [controller["recipient"]])["path"])


def inventory(controller: dict, groups: dict) -> Path:
    hosts = {host: {} for members in groups.values() for host in members}
    path = controller["tmp"] / "hosts.yml"
    data = local_inventory(
        groups, hosts, **TEST_ISLAND, island_secrets_dir=str(controller["state"] / "secrets")
    )
    path.write_text(yaml.safe_dump(data))
    return path


def restore(controller: dict, archive_path: Path, hosts: Path | str, *extra: str):
    return run_playbook(
        RESTORE,
        "-e", f"restore_archive={archive_path}", "-e", f"restore_identity_file={controller['key']}",
        "-e", "restore_parts=etcd-snapshot", *extra,
        inventory=hosts,
    )  # fmt: skip


def leftovers() -> list[Path]:
    """Temporary directories of restore.yml left on the controller (there must be none)."""
    return list(Path(tempfile.gettempdir()).glob("island-restore.*"))


def test_a_cluster_restore_without_a_k3s_server_in_the_inventory_is_refused(controller):
    before = leftovers()
    good = archive(controller, etcd_snapshot(b"\0" * 4096))
    output = refused(restore(controller, good, "localhost,"))
    assert "restore_parts names etcd-snapshot, which goes back onto the island's k3s_servers hosts" in output
    assert "Nothing was restored" in output
    output = refused(restore(controller, good, inventory(controller, {"island_dns": ["infra1"]})))
    assert "restore_parts names etcd-snapshot, which goes back onto the island's k3s_servers hosts" in output
    assert leftovers() == before


def test_a_backup_without_a_snapshot_is_refused(controller):
    before = leftovers()
    output = refused(
        restore(controller, archive(controller, None), inventory(controller, {"k3s_servers": ["s1"]}))
    )
    assert "the backup does not hold etcd-snapshot" in output
    assert leftovers() == before


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "truncated",
            etcd_snapshot(b"\0" * 4096)[:-1],
            "does not end with the sha256 an etcd snapshot carries",
        ),
        ("damaged", b"\1" + etcd_snapshot(b"\0" * 4096)[1:], "is damaged: the sha256 of its content is"),
    ],
)
def test_a_snapshot_k3s_would_refuse_is_refused_before_any_server_stops(controller, name, content, message):
    before = leftovers()
    hosts = inventory(controller, {"k3s_servers": ["s1"]})
    output = refused(restore(controller, archive(controller, content), hosts))
    assert message in output, name
    # refused on the controller: the play never reached the server's checks
    assert "is not a converged k3s server" not in output
    assert leftovers() == before
    # and in --check the same
    assert message in refused(
        restore(controller, sorted(controller["media"].glob("*/*.age"))[0], hosts, "--check")
    )


def test_a_server_that_is_not_converged_is_refused_naming_what_is_missing(controller):
    if Path("/usr/local/bin/k3s").exists():
        pytest.skip("this machine has a k3s: the refusal needs a host without one")
    before = leftovers()
    hosts = inventory(controller, {"k3s_servers": ["s1"]})
    output = refused(restore(controller, archive(controller, etcd_snapshot(b"\0" * 4096)), hosts))
    assert "s1 is not a converged k3s server (/usr/local/bin/k3s, /etc/rancher/k3s/config.yaml" in output
    assert "run playbooks/site.yml with this inventory first" in output
    assert "Nothing was changed" in output
    assert leftovers() == before
