"""The one atomic write and the one sha256 of a file (module_utils/island_io)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat

import pytest
from ansible_collections.island.installer.plugins.module_utils import island_io
from ansible_collections.island.installer.plugins.module_utils.island_io import (
    atomic_open,
    atomic_write,
    sha256_file,
)


def _leftovers(directory, keep):
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


def test_atomic_write_replaces_the_file_and_fsyncs_the_file_and_its_directory(tmp_path, monkeypatch):
    target = tmp_path / "secret.pem"
    target.write_bytes(b"old")
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(island_io.os, "fsync", recording_fsync)
    atomic_write(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert synced == [False, True]  # the file's data first, then the directory's entry (the rename)
    assert _leftovers(tmp_path, {"secret.pem"}) == []


def test_atomic_write_gives_the_file_its_mode_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        atomic_write(tmp_path / "public.crt", b"cert", 0o644)
    finally:
        os.umask(old)
    atomic_write(tmp_path / "private.key", b"key")
    assert stat.S_IMODE((tmp_path / "public.crt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.key").stat().st_mode) == 0o600  # the default


def test_atomic_write_sets_the_owner_it_is_given(tmp_path):
    atomic_write(tmp_path / "mine", b"x", 0o600, uid=os.getuid(), gid=os.getgid())
    info = (tmp_path / "mine").stat()
    assert (info.st_uid, info.st_gid) == (os.getuid(), os.getgid())


def test_an_error_while_writing_leaves_the_old_file_and_no_partial_file(tmp_path):
    target = tmp_path / "index.json"
    target.write_bytes(b"the old index")
    with pytest.raises(RuntimeError, match="network gone"), atomic_open(target, 0o644) as handle:
        handle.write(b"half of the new ")
        raise RuntimeError("network gone")
    assert target.read_bytes() == b"the old index"
    assert _leftovers(tmp_path, {"index.json"}) == []


def test_a_new_file_that_fails_is_never_created(tmp_path):
    target = tmp_path / "blob"
    with pytest.raises(ValueError), atomic_open(target, suffix=".partial") as handle:
        handle.write(b"x" * 10)
        raise ValueError("digest mismatch")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_sha256_file_streams_the_file_through_a_small_buffer(tmp_path):
    data = os.urandom(100_000)
    path = tmp_path / "data"
    path.write_bytes(data)
    assert sha256_file(path, bytearray(4096)) == (len(data), hashlib.sha256(data).hexdigest())


def test_sha256_file_refuses_a_symbolic_link_unless_asked_to_follow_it(tmp_path):
    (tmp_path / "real").write_bytes(b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OSError):
        sha256_file(tmp_path / "link")
    assert sha256_file(tmp_path / "link", follow_symlinks=True)[1] == hashlib.sha256(b"abc").hexdigest()


def test_sha256_file_refuses_what_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        sha256_file(fifo)


def test_read_regular_reads_up_to_one_byte_past_its_limit(tmp_path):
    path = tmp_path / "lock"
    path.write_bytes(b"x" * 3 * island_io.BUFFER_SIZE)

    assert island_io.read_regular(path, 10) == b"x" * 11
    assert len(island_io.read_regular(path, 5 * island_io.BUFFER_SIZE)) == 3 * island_io.BUFFER_SIZE


def test_read_regular_refuses_a_fifo_at_once_and_a_symbolic_link_unless_followed(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # no writer: a blocking open would wait forever
    target = tmp_path / "target"
    target.write_bytes(b"signers")
    (tmp_path / "link").symlink_to(target)

    with pytest.raises(OSError, match="not a regular file"):
        island_io.read_regular(fifo, 100)
    with pytest.raises(OSError) as caught:
        island_io.read_regular(tmp_path / "link", 100)
    assert caught.value.errno == errno.ELOOP
    assert island_io.read_regular(tmp_path / "link", 100, follow_symlinks=True) == b"signers"
