"""File helpers written once: the atomic write, reading a regular file, the sha256 of a file, and the
owner, group and mode a file is to have.

Note that this module util is PRIVATE to this repository; it can change at any time.

Every module util that writes a file the island depends on (keys, certificates, the bundle's lock and
signature, OCI layout files, downloads, the receipt) writes it through :func:`atomic_open` or
:func:`atomic_write`, and every file hash goes through :func:`sha256_file`. It is shipped to hosts
with the host-side modules, so it runs on the hosts' system Python (3.9+).
"""

from __future__ import annotations

import contextlib
import errno
import grp
import hashlib
import os
import pwd
import re
import stat
import tempfile

BUFFER_SIZE = 1024 * 1024


class FileAttributeError(ValueError):
    """An owner, group or mode that cannot apply on this host; the message names it and what to do.
    Every module that sets them catches it in its run_module."""


def resolve_owner(owner=None, group=None, what=None):
    """User and group names (or numeric ids) -> ``(uid, gid)``; None or "" stays None. ``what`` (a
    path, say) starts the message of an error."""
    uid = _resolve_id(owner, "user", lambda name: pwd.getpwnam(name).pw_uid, what)
    gid = _resolve_id(group, "group", lambda name: grp.getgrnam(name).gr_gid, what)
    return uid, gid


def _resolve_id(value, kind, lookup, what):
    if value in (None, ""):
        return None
    try:
        return int(value) if str(value).isdigit() else lookup(value)
    except KeyError:
        prefix = f"{what}: " if what else ""
        raise FileAttributeError(
            f"{prefix}{kind} {value!r} does not exist on this host; create the service {kind} first"
        ) from None


def parse_mode(mode, default=None, what=None):
    """A mode as "0640", "640" or the number YAML makes of an unquoted 0640 -> int; None or "" is
    ``default``. Anything else (symbolic modes, 8s and 9s, out of range) is refused."""
    if mode in (None, ""):
        return default
    if isinstance(mode, int) and not isinstance(mode, bool) and 0 <= mode <= 0o7777:
        return mode  # an unquoted YAML 0600 arrives as the number 384
    text = str(mode).strip()
    if isinstance(mode, bool) or not re.match(r"^0?[0-7]{3,4}$", text):
        prefix = f"{what}: " if what else ""
        raise FileAttributeError(f"{prefix}mode {mode!r} must be octal, such as '0600'")
    return int(text, 8)


@contextlib.contextmanager
def atomic_open(path, mode=0o600, uid=None, gid=None, suffix=".tmp"):
    """A binary file handle whose content replaces ``path`` only if the ``with`` block succeeds.

    The handle writes to a temp file in the same directory (created 0600). On success the temp file
    is flushed and fsynced, gets its final ``mode`` (and ``uid``/``gid`` when given) and is renamed
    over ``path``; then the directory is fsynced, so the rename survives a power loss. On any error
    the temp file is removed and ``path`` is left as it was: never partly written, never visible
    with looser permissions. ``suffix`` names the temp file (``.partial`` for downloads).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
            if uid is not None or gid is not None:
                os.fchown(handle.fileno(), -1 if uid is None else uid, -1 if gid is None else gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_directory(directory)


def atomic_write(path, data, mode=0o600, uid=None, gid=None):
    """Replace ``path`` with the bytes ``data`` atomically and durably (see :func:`atomic_open`)."""
    with atomic_open(path, mode, uid, gid) as handle:
        handle.write(data)


def fsync_directory(directory):
    """Make the entries of ``directory`` (a rename into it) durable."""
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def open_regular(path, follow_symlinks=False):
    """A read-only descriptor of ``path``, which must be a regular file.

    Opened with ``O_NONBLOCK`` (a FIFO opens at once instead of waiting for a writer) and, unless
    ``follow_symlinks``, ``O_NOFOLLOW`` (a final symbolic link fails with ELOOP); then ``fstat`` on
    the descriptor decides, so nothing swapped in between a check and the open is read. Anything
    but a regular file raises ``OSError(EINVAL, "not a regular file")``.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path, limit, follow_symlinks=False):
    """At most ``limit + 1`` bytes of the regular file ``path`` (so a caller can tell "too large").

    Never blocks on a FIFO or reads a device; a symbolic link is refused unless ``follow_symlinks``
    (ELOOP), anything but a regular file raises ``OSError(EINVAL, "not a regular file")``.
    """
    fd = open_regular(path, follow_symlinks)
    with open(fd, "rb", buffering=0) as handle:
        chunks = []
        left = limit + 1
        while left > 0:
            chunk = handle.read(min(left, BUFFER_SIZE))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    return b"".join(chunks)


def sha256_file(path, buffer=None, follow_symlinks=False):
    """``(bytes read, sha256 hex)`` of one regular file, streamed through ``buffer``.

    Memory stays flat whatever the size: the file is read into one fixed buffer (pass a
    ``bytearray`` to reuse one per thread). The file is opened without following a final symbolic
    link (unless ``follow_symlinks``) and without blocking on a FIFO swapped in after a directory
    was scanned; anything but a regular file raises ``OSError(EINVAL)``.
    """
    buffer = bytearray(BUFFER_SIZE) if buffer is None else buffer
    view = memoryview(buffer)
    digest = hashlib.sha256()
    size = 0
    fd = open_regular(path, follow_symlinks)
    with open(fd, "rb", buffering=0) as handle:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            size += count
    return size, digest.hexdigest()
