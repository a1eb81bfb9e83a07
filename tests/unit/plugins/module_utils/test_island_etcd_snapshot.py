"""The checks k3s's cluster-reset makes on a snapshot file, made before any server is stopped."""

from __future__ import annotations

import hashlib
import os

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_etcd_snapshot import (
    EtcdSnapshotError,
    check_snapshot,
)


def snapshot(db: bytes) -> bytes:
    """An etcd snapshot's layout: the database, then the sha256 of it."""
    return db + hashlib.sha256(db).digest()


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "on-demand-server1-1796314989"
    path.write_bytes(snapshot(os.urandom(4096 * 3)))
    return path


def test_a_snapshot_with_its_sum_passes_and_names_both_sums(good):
    data = good.read_bytes()
    result = check_snapshot(str(good))
    assert result == {
        "path": str(good),
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "db_sha256": data[-32:].hex(),
    }


def test_one_changed_byte_is_refused_naming_both_sums(good):
    data = bytearray(good.read_bytes())
    data[100] ^= 1
    good.write_bytes(bytes(data))
    with pytest.raises(EtcdSnapshotError, match=r"is damaged: the sha256 of its content is [0-9a-f]{64}"):
        check_snapshot(str(good))


def test_a_truncated_copy_is_refused_as_a_file_without_the_sum(good):
    good.write_bytes(good.read_bytes()[:-1])
    with pytest.raises(EtcdSnapshotError, match="does not end with the sha256 an etcd snapshot carries"):
        check_snapshot(str(good))


def test_a_file_of_another_kind_is_refused(tmp_path):
    other = tmp_path / "island-backup.tar"
    other.write_bytes(b"x" * 10240)  # a tar: a multiple of 512 with no sum after it
    with pytest.raises(EtcdSnapshotError, match=r"size 10240 bytes"):
        check_snapshot(str(other))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(EtcdSnapshotError, match="not an etcd snapshot"):
        check_snapshot(str(empty))


def test_a_missing_path_or_a_directory_is_refused(tmp_path):
    with pytest.raises(EtcdSnapshotError, match="does not exist"):
        check_snapshot(str(tmp_path / "absent"))
    with pytest.raises(EtcdSnapshotError, match="is a directory, not a file"):
        check_snapshot(str(tmp_path))


def test_the_k3s_doubles_snapshots_have_the_same_layout(tmp_path):
    """The double writes its snapshots as etcd lays them out (tests/doubles/k3s/README.md)."""
    db = b'{"format": "k3s-double-etcd-snapshot"}'
    db += b" " * (-len(db) % 512)
    path = tmp_path / "double"
    path.write_bytes(snapshot(db))
    assert check_snapshot(str(path))["size"] == 512 + 32
