"""What k3s's restore checks in an etcd snapshot file before it uses it, checked beforehand.

Note that this module util is PRIVATE to this repository; it can change at any time.

``k3s server --cluster-reset --cluster-reset-restore-path=FILE`` (k3s v1.36.3+k3s1
``pkg/etcd/etcd.go`` ``Reset``/``Restore``) refuses a path that does not exist or is a directory,
then MOVES the server's database to ``db/etcd-old-<time>`` and only then hands the file to etcd's
snapshot restore (etcd v3.6 ``etcdutl/snapshot``), which checks the sha256 an etcd snapshot carries
at its end: a snapshot is the database (bbolt pages, a multiple of 512 bytes) followed by the 32
bytes of the sha256 of what precedes them. A file without that sum, or with another one, is refused
there, after the database moved. :func:`check_snapshot` makes the same checks first, so that
``playbooks/restore.yml`` refuses such a file before any server is stopped.

Reads only. Runs on the controller.
"""

from __future__ import annotations

import hashlib
import os
import stat

HASH_SIZE = 32  # sha256
ALIGN = 512  # etcd: (size % 512) == sha256.Size means the snapshot carries its hash
CHUNK = 1 << 20


class EtcdSnapshotError(Exception):
    """The file is not an etcd snapshot k3s would restore."""


def check_snapshot(path):
    """``{path, size, sha256 (of the file), db_sha256 (the sum it carries)}``; ``EtcdSnapshotError``
    naming the file and what to do when k3s's restore would refuse it."""
    try:
        info = os.stat(path)
    except FileNotFoundError as exc:
        raise EtcdSnapshotError(f"the etcd snapshot {path} does not exist") from exc
    if stat.S_ISDIR(info.st_mode):
        raise EtcdSnapshotError(f"the etcd snapshot {path} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise EtcdSnapshotError(f"the etcd snapshot {path} is not a regular file")
    size = info.st_size
    if size <= HASH_SIZE or size % ALIGN != HASH_SIZE:
        raise EtcdSnapshotError(
            f"{path} is not an etcd snapshot: it does not end with the sha256 an etcd snapshot carries "
            f"(size {size} bytes; a snapshot is a multiple of {ALIGN} bytes plus {HASH_SIZE}). k3s would "
            "refuse it after moving the server's database aside (etcd: snapshot missing hash). Use a file "
            "`k3s etcd-snapshot save` wrote, whole (a truncated copy fails this too)"
        )
    body = hashlib.sha256()
    whole = hashlib.sha256()
    remaining = size - HASH_SIZE
    with open(path, "rb") as handle:
        while remaining:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                raise EtcdSnapshotError(f"{path} shrank while it was read: copy it again")
            body.update(chunk)
            whole.update(chunk)
            remaining -= len(chunk)
        carried = handle.read(HASH_SIZE)
    whole.update(carried)
    if body.digest() != carried:
        raise EtcdSnapshotError(
            f"{path} is damaged: the sha256 of its content is {body.hexdigest()}, the sum it carries "
            f"{carried.hex()}. k3s would refuse it after moving the server's database aside (etcd: "
            "expected sha256 ...). Use another snapshot, or the backup's copy"
        )
    return {"path": path, "size": size, "sha256": whole.hexdigest(), "db_sha256": carried.hex()}
