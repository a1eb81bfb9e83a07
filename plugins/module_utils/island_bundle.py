"""The island bundle: hashing its files, writing and signing its lock, and verifying it.

A bundle is a plain directory (see ``docs/bundle-format.md``)::

    island-bundle.yml        the lock: every file with its size and sha256, components, images, git
    island-bundle.yml.sig    detached OpenSSH signature (SSHSIG, namespace ``island-bundle``)
    bin/ k3s/ oci/ git/ files/

Transfer zone (the bundle builder)::

    lock = write_lock(bundle_dir, name="island", version="2026.11.0", components=..., images=...,
                      git=...)
    sign(bundle_dir, "/path/to/id_ed25519", passphrase=None)

Island (the ``island_bundle_verify`` module)::

    result = verify_bundle(bundle_dir, allowed_signers="/etc/island/allowed_signers")

The lock's schema and parsing live in ``island_bundle_lock``. Every error is a :class:`BundleError`
whose message names the thing at fault and what to do.
Hashing streams each file through one fixed-size buffer per worker thread, so memory stays flat
whatever the file sizes; files are hashed largest first on a thread pool (hashlib releases the GIL
while it hashes), so one huge file and many small ones keep every core busy.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import os
import stat
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.island.installer.plugins.module_utils import island_sshsig as sshsig
from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import (
    LOCK_NAME,
    MAX_LOCK_BYTES,
    NAMESPACE,
    SCHEMA_VERSION,
    SIGNATURE_NAME,
    BundleError,
    ContentError,
    FileProblem,
    LockError,
    SignatureError,
    SigningError,
    canonical_lock,
    dump_lock,
    escaped,
    load_lock,
    validate_lock,
)
from ansible_collections.island.installer.plugins.module_utils.island_io import (
    BUFFER_SIZE,
    atomic_write,
    read_regular,
)
from ansible_collections.island.installer.plugins.module_utils.island_io import sha256_file as hash_file

# --- walking and hashing -------------------------------------------------------------------------


@dataclass
class _Scan:
    files: dict[str, int] = field(default_factory=dict)  # relative path -> size
    odd: dict[str, str] = field(default_factory=dict)  # relative path -> what it is instead


def _describe_mode(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a special file (device, socket or FIFO)"


def scan_bundle(bundle_dir: Path) -> _Scan:
    """Every entry under ``bundle_dir`` without following symbolic links."""
    scan = _Scan()
    pending = [(bundle_dir, "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            scan.odd[prefix.rstrip("/") or "."] = f"an unreadable directory ({exc.strerror})"
            continue
        for entry in entries:
            rel = prefix + entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError as exc:
                scan.odd[rel] = f"unreadable ({exc.strerror})"
                continue
            if stat.S_ISDIR(info.st_mode):
                pending.append((Path(entry.path), rel + "/"))
            elif stat.S_ISREG(info.st_mode):
                scan.files[rel] = info.st_size
            else:
                scan.odd[rel] = _describe_mode(info.st_mode)
    return scan


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def hash_files(
    files: dict[str, int], root: Path, workers: int | None = None
) -> dict[str, tuple[int, str] | OSError]:
    """Hash ``files`` (relative path -> expected size) under ``root`` on a thread pool.

    Largest files go first: a single file can only be hashed sequentially, so starting the big
    ones early keeps the small ones to fill the other cores at the end. Each worker owns one
    buffer of ``BUFFER_SIZE`` bytes.
    """
    workers = max(1, workers or default_workers())
    queue = deque(sorted(files, key=lambda p: (-files[p], p)))
    results: dict[str, tuple[int, str] | OSError] = {}
    lock = threading.Lock()

    def work() -> None:
        buffer = bytearray(BUFFER_SIZE)
        while True:
            try:
                rel = queue.popleft()
            except IndexError:
                return
            try:
                outcome: tuple[int, str] | OSError = hash_file(root / rel, buffer)
            except OSError as exc:
                outcome = exc
            with lock:
                results[rel] = outcome

    workers = min(workers, len(queue)) or 1
    if workers == 1:
        work()
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="island-hash") as pool:
            for future in [pool.submit(work) for _ in range(workers)]:
                future.result()
    return results


# --- writing and signing (transfer zone) ---------------------------------------------------------


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _created_text(created: str | dt.datetime | None) -> str:
    if created is None:
        return _utc_now()
    if isinstance(created, dt.datetime):
        if created.tzinfo is None:
            raise ValueError("created must be timezone-aware (UTC)")
        return created.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    return created


def build_lock(
    bundle_dir: str | Path,
    *,
    name: str,
    version: str,
    components: dict[str, dict[str, Any]] | None = None,
    images: list[dict[str, Any]] | None = None,
    git: list[dict[str, Any]] | None = None,
    created: str | dt.datetime | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Hash every file of ``bundle_dir`` and return the validated lock (nothing is written)."""
    root = Path(bundle_dir)
    scan = scan_bundle(root)
    if scan.odd:
        raise LockError(
            str(root),
            [
                f"{escaped(path, 4096)} is {what}; a bundle holds regular files and directories only"
                for path, what in sorted(scan.odd.items())
            ],
        )
    sizes = {path: size for path, size in scan.files.items() if path not in (LOCK_NAME, SIGNATURE_NAME)}
    entries = []
    failures = []
    for path, outcome in sorted(hash_files(sizes, root, workers).items()):
        if isinstance(outcome, OSError):
            failures.append(f"{escaped(path, 4096)}: cannot read ({outcome.strerror})")
        else:
            entries.append({"path": path, "sha256": outcome[1], "size": outcome[0]})
    if failures:
        raise LockError(str(root), failures)
    lock = {
        "schema_version": SCHEMA_VERSION,
        "bundle": {"name": name, "version": version, "created": _created_text(created)},
        "files": entries,
        "components": components or {},
        "images": images or [],
        "git": git or [],
    }
    return validate_lock(canonical_lock(validate_lock(lock, "lock to write")), "lock to write")


def write_lock(bundle_dir: str | Path, **fields: Any) -> dict[str, Any]:
    """Hash the bundle, write ``island-bundle.yml`` atomically, and return the lock.

    ``fields`` are :func:`build_lock`'s keyword arguments (name, version, components, images, git,
    created, workers). A signature left from an earlier lock is removed (it could only fail); call
    :func:`sign` next.
    """
    root = Path(bundle_dir)
    lock = build_lock(root, **fields)
    (root / SIGNATURE_NAME).unlink(missing_ok=True)
    atomic_write(root / LOCK_NAME, dump_lock(lock), 0o644)
    return lock


def sign(bundle_dir: str | Path, private_key: str | Path, passphrase: str | bytes | None = None) -> Path:
    """Sign ``bundle_dir/island-bundle.yml`` with an OpenSSH Ed25519 private key file.

    Writes ``island-bundle.yml.sig`` (SSHSIG, namespace ``island-bundle``) and returns its path.
    """
    root = Path(bundle_dir)
    lock_path = root / LOCK_NAME
    try:
        data = lock_path.read_bytes()
    except OSError as exc:
        raise SigningError(f"cannot read lock {lock_path} ({exc.strerror}); run write_lock first") from exc
    load_lock(data, str(lock_path))
    try:
        key = sshsig.load_signing_key(private_key, passphrase)
    except sshsig.SshsigError as exc:
        raise SigningError(str(exc)) from exc
    signature_path = root / SIGNATURE_NAME
    atomic_write(signature_path, sshsig.sign_bytes(data, key, NAMESPACE), 0o644)
    return signature_path


# --- verification (island) -----------------------------------------------------------------------


@dataclass
class Verification:
    """What :func:`verify_bundle` proved."""

    lock: dict[str, Any]
    signature: sshsig.VerifiedSignature | None
    files_verified: int
    bytes_verified: int
    seconds: float
    lock_sha256: str = ""  # of the very bytes whose signature was checked and that were parsed


def _read_limited(path: Path, limit: int, what: str, error: type[BundleError], hint: str) -> bytes:
    """The bytes of the lock or its signature: a regular file in the bundle, never followed through
    a symbolic link, never waited on (a FIFO is refused at once), at most ``limit`` bytes."""
    shown_path = escaped(str(path), 4096)
    try:
        data = read_regular(path, limit)
    except FileNotFoundError as exc:
        raise error(f"no {what} {shown_path}; {hint}") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            reason = "it is a symbolic link"
        elif exc.errno == errno.EINVAL:
            reason = "it is not a regular file (a FIFO, device, socket or directory)"
        else:
            reason = exc.strerror
        raise error(
            f"cannot read {what} {shown_path}: {reason}; a bundle holds regular files only,"
            " copy it again from the transfer medium"
        ) from exc
    if len(data) > limit:
        raise error(f"{what} {shown_path} is larger than {limit} bytes; it is not an island bundle {what}")
    return data


def check_signature(
    lock_bytes: bytes, bundle_dir: Path, allowed_signers: str | Path, now: float | None = None
) -> sshsig.VerifiedSignature:
    """Check the lock's detached signature against the island's allowed signers."""
    signers_path = Path(allowed_signers)
    try:
        inside = signers_path.resolve().is_relative_to(bundle_dir.resolve())
    except OSError:
        inside = False
    if inside:
        raise SignatureError(
            f"allowed signers file {signers_path} lies inside the bundle {bundle_dir}; the island"
            " must trust signers it configured itself, never ones the bundle brings"
        )
    signature_path = bundle_dir / SIGNATURE_NAME
    signature = _read_limited(
        signature_path,
        sshsig.MAX_SIGNATURE_BYTES,
        "signature file",
        SignatureError,
        "the bundle must be signed in the transfer zone; an unsigned bundle is refused unless"
        " skip_signature is set (which proves nothing about its origin)",
    )
    try:
        signers = sshsig.load_allowed_signers(signers_path)
        return sshsig.verify(
            lock_bytes,
            signature,
            signers,
            NAMESPACE,
            now=now,
            what=f"signature {signature_path}",
            source=str(signers_path),
        )
    except sshsig.SshsigError as exc:
        raise SignatureError(str(exc)) from exc


def _listed_file_problem(path: str, entry: dict[str, Any], scan: _Scan) -> FileProblem | None:
    """The cheap checks of one listed file: present, regular, right size."""
    size, sha = entry["size"], entry["sha256"]
    name = escaped(path, 4096)
    if path in scan.odd:
        return FileProblem(path, "not_regular", f"{name}: is {scan.odd[path]}, expected a regular file", size)
    if path not in scan.files:
        return FileProblem(
            path, "missing", f"{name}: missing (expected {size} bytes, sha256 {sha})", size, None, sha
        )
    actual = scan.files[path]
    if actual != size:
        state = "truncated" if actual < size else "too large"
        return FileProblem(
            path, "size", f"{name}: {state}: expected {size} bytes, found {actual} bytes", size, actual, sha
        )
    return None


def _hash_problem(path: str, entry: dict[str, Any], outcome: tuple[int, str] | OSError) -> FileProblem | None:
    name = escaped(path, 4096)
    if isinstance(outcome, OSError):
        return FileProblem(path, "unreadable", f"{name}: cannot read ({outcome.strerror})")
    size, sha = outcome
    if size != entry["size"]:
        message = f"{name}: changed while read: expected {entry['size']} bytes, read {size}"
        return FileProblem(path, "size", message, entry["size"], size, entry["sha256"])
    if sha != entry["sha256"]:
        return FileProblem(
            path,
            "sha256",
            f"{name}: corrupt: expected sha256 {entry['sha256']}, found {sha} ({size} bytes)",
            entry["size"],
            size,
            entry["sha256"],
            sha,
        )
    return None


def check_files(bundle_dir: Path, lock: dict[str, Any], workers: int | None = None) -> tuple[int, int]:
    """Check every listed file (size first, then sha256) and refuse unlisted ones.

    Returns (files, bytes) verified; raises :class:`ContentError` naming every bad file.
    """
    scan = scan_bundle(bundle_dir)
    expected = {entry["path"]: entry for entry in lock["files"]}
    problems: list[FileProblem] = []
    to_hash: dict[str, int] = {}
    for path, entry in expected.items():
        problem = _listed_file_problem(path, entry, scan)
        if problem:
            problems.append(problem)
        else:
            to_hash[path] = entry["size"]
    for path in sorted((set(scan.files) | set(scan.odd)) - set(expected) - {LOCK_NAME, SIGNATURE_NAME}):
        actual = scan.files.get(path)
        what = f"{actual} bytes" if actual is not None else scan.odd[path]
        problems.append(
            FileProblem(
                path,
                "extra",
                f"{escaped(path, 4096)}: not listed in the lock ({what}); remove it",
                None,
                actual,
            )
        )
    verified_bytes = 0
    for path, outcome in hash_files(to_hash, bundle_dir, workers).items():
        problem = _hash_problem(path, expected[path], outcome)
        if problem:
            problems.append(problem)
        else:
            verified_bytes += expected[path]["size"]
    if problems:
        raise ContentError(bundle_dir, problems)
    return len(expected), verified_bytes


def verify_bundle(
    bundle_dir: str | Path,
    *,
    allowed_signers: str | Path | None = None,
    skip_signature: bool = False,
    workers: int | None = None,
    now: float | None = None,
) -> Verification:
    """Verify a bundle: signature, then lock schema, then every file. Changes nothing.

    The lock is parsed from the very bytes whose signature was checked.
    """
    started = time.monotonic()
    root = Path(bundle_dir)
    if not root.is_dir():
        raise BundleError(f"bundle directory {escaped(str(root), 4096)} does not exist or is not a directory")
    lock_path = root / LOCK_NAME
    lock_bytes = _read_limited(
        lock_path, MAX_LOCK_BYTES, "lock file", BundleError, "is this a bundle directory?"
    )
    signature = None
    if not skip_signature:
        if allowed_signers is None:
            raise SignatureError(
                "allowed_signers is required to check the bundle signature (or set skip_signature,"
                " which proves nothing about the bundle's origin)"
            )
        signature = check_signature(lock_bytes, root, allowed_signers, now)
    lock = load_lock(lock_bytes, str(lock_path))
    files, size = check_files(root, lock, workers)
    lock_sha256 = hashlib.sha256(lock_bytes).hexdigest()
    return Verification(lock, signature, files, size, time.monotonic() - started, lock_sha256)
