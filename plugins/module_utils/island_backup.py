"""Island backups: ONE age-encrypted tar archive of named parts, checked against its manifest.

Note that this module util is PRIVATE to this repository; it can change at any time.

The archive ``island-backup-<YYYYmmddTHHMMSSZ>.tar.age`` is one POSIX tar stream (pax format)
encrypted as a whole to one or more age recipients, so the stock ``age`` tool opens it by hand
(``age -d -i key.txt island-backup-....tar.age | tar -x``). Its members, in this order:

    manifest.json            format, format_version, created, island, every part with its sha256
    manifest.json.sha256     "<sha256 of manifest.json>  manifest.json" (what ``sha256sum -c`` reads)
    parts/<name>             a file part; or a directory part and its tree below parts/<name>/

age (format age-encryption.org/v1, C2SP ``age.md``) authenticates every 64 KiB chunk of the payload
and the last chunk's flag with ChaCha20-Poly1305, so a changed or truncated ciphertext fails to
decrypt. It does not authenticate the writer: anyone holding a recipient (a public key) can make a
new archive. The manifest's sha256s catch a part changed in the plaintext and re-encrypted, and
damage; the archive's own sha256, returned by :func:`create` and :func:`verify`, is what an
operator compares against a recorded value to know the file is the one written.

Runs on the controller only, with ``pyrage`` (requirements.txt), the Python binding of the Rust age
implementation. The plaintext never touches a disk: tar and age run on the two ends of a pipe.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile

from ansible_collections.island.installer.plugins.module_utils.island_backup_age import (
    BackupError,
    BackupInputError,
    BackupIntegrityError,
    HashingStream,
    decrypt,
    encrypt,
    load_identities,
    parse_recipients,
)
from ansible_collections.island.installer.plugins.module_utils.island_io import (
    BUFFER_SIZE,
    atomic_open,
    fsync_directory,
    open_regular,
    sha256_file,
)

__all__ = ["BackupError", "create", "extract", "load_identities", "prune", "restore", "verify"]

FORMAT = "island-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.json.sha256"
PARTS = "parts"
ARCHIVE_RE = re.compile(r"^island-backup-(\d{8}T\d{6}Z)\.tar\.age$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
MODE_RE = re.compile(r"^0[0-7]{3}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MANIFEST_LIMIT = 64 * 1024 * 1024


def archive_name(created):
    """The file name of the archive created at ``created`` (an aware UTC datetime)."""
    return f"island-backup-{created:%Y%m%dT%H%M%SZ}.tar.age"


def render_manifest(manifest):
    """The manifest's bytes as written in the archive (sorted keys, so a rewrite is identical)."""
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def manifest_sum_line(manifest_bytes):
    """The content of ``manifest.json.sha256``, in the format ``sha256sum -c`` reads."""
    return f"{hashlib.sha256(manifest_bytes).hexdigest()}  {MANIFEST}\n".encode()


def tree_sha256(entries):
    """The sha256 of a directory part: over one line per entry, sorted by path (docs/backup.md)."""
    digest = hashlib.sha256()
    for entry in sorted(entries, key=lambda e: e["path"]):
        size, sha256 = entry.get("size", 0), entry.get("sha256", "-")
        digest.update(f"{entry['type']} {entry['mode']} {size} {sha256} {entry['path']}\n".encode())
    return digest.hexdigest()


def unsafe_path(path):
    """Why ``path`` may not name a member or a manifest entry, or None when it is a plain relative path."""
    if not isinstance(path, str) or not path:
        return "an empty name"
    if path.startswith("/"):
        return "an absolute path"
    if any(ord(char) < 0x20 or char in "\x7f\\" for char in path):
        return "a control character or backslash in the name"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "a path that leaves its directory or is not normalised (empty, . or .. component)"
    return None


# --- the parts on the controller -----------------------------------------------------------------


def _mode(st):
    return f"{stat.S_IMODE(st.st_mode) & 0o777:04o}"


def _hash_file(name, path, follow_symlinks=False):
    try:
        return sha256_file(path, follow_symlinks=follow_symlinks)
    except OSError as exc:
        raise BackupInputError(f"part {name}: cannot read {path} ({exc.strerror})") from None


def _walk(name, root, rel, entries):
    directory = os.path.join(root, rel) if rel else root
    try:
        with os.scandir(directory) as listing:
            children = sorted(listing, key=lambda entry: entry.name)
    except OSError as exc:
        raise BackupInputError(f"part {name}: cannot list {directory} ({exc.strerror})") from None
    for child in children:
        child_rel = f"{rel}/{child.name}" if rel else child.name
        if unsafe_path(child_rel):
            raise BackupInputError(f"part {name}: {child.path!r} has {unsafe_path(child_rel)}; rename it")
        st = child.stat(follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            entries.append({"path": child_rel, "type": "directory", "mode": _mode(st)})
            _walk(name, root, child_rel, entries)
        elif stat.S_ISREG(st.st_mode):
            size, digest = _hash_file(name, child.path)
            entries.append(
                {"path": child_rel, "type": "file", "mode": _mode(st), "size": size, "sha256": digest}
            )
        else:
            kind = "symbolic link" if stat.S_ISLNK(st.st_mode) else "special file"
            raise BackupInputError(
                f"part {name}: {child.path} is a {kind}; a backup holds regular files and directories "
                f"only: replace it by what it points to, or move it out of {root}"
            )


def scan_part(name, path):
    """The manifest entry of one part: the file or the directory tree at ``path``, hashed.

    ``path`` itself may be a symbolic link (the operator named it); nothing below it may be.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise BackupInputError(f"part {name}: cannot read {path} ({exc.strerror})") from None
    part = {"name": name, "source": os.path.abspath(path), "mode": _mode(st)}
    if stat.S_ISREG(st.st_mode):
        size, digest = _hash_file(name, path, follow_symlinks=True)
        return {**part, "kind": "file", "size": size, "sha256": digest}
    if not stat.S_ISDIR(st.st_mode):
        raise BackupInputError(f"part {name}: {path} is neither a regular file nor a directory")
    entries = []
    _walk(name, path, "", entries)
    size = sum(entry.get("size", 0) for entry in entries)
    return {**part, "kind": "directory", "size": size, "sha256": tree_sha256(entries), "entries": entries}


def build_manifest(parts, created, island_name=None, island_domain=None):
    """The manifest of ``parts`` (``[{name, path}]``), every problem with the parts reported at once."""
    problems, names, scanned = [], set(), []
    for part in parts:
        name = part.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(f"part name {name!r} is not valid: use lowercase letters, digits, . _ -")
        elif name in names:
            problems.append(f"part name {name} is given twice")
        names.add(name)
    if not parts:
        problems.append("no part to back up: give parts, each {name, path}")
    if problems:
        raise BackupInputError("; ".join(problems))
    for part in parts:
        try:
            scanned.append(scan_part(part["name"], part["path"]))
        except BackupInputError as exc:
            problems.append(str(exc))
    if problems:
        raise BackupInputError("; ".join(problems))
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": f"{created:%Y-%m-%dT%H:%M:%SZ}",
    }
    island = {key: value for key, value in (("name", island_name), ("domain", island_domain)) if value}
    if island:
        manifest["island"] = island
    manifest["parts"] = scanned
    return manifest


def members(manifest):
    """``(archive path, entry, part name, source path)`` of every part member, in archive order."""
    for part in manifest["parts"]:
        base = f"{PARTS}/{part['name']}"
        if part["kind"] == "file":
            yield base, part | {"type": "file"}, part["name"], part.get("source")
            continue
        yield base, {"type": "directory", "mode": part["mode"]}, part["name"], part.get("source")
        for entry in part["entries"]:
            source = os.path.join(part["source"], entry["path"]) if part.get("source") else None
            yield f"{base}/{entry['path']}", entry, part["name"], source


# --- tar and age on the two ends of a pipe -------------------------------------------------------


def _tarinfo(name, entry, mtime):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if entry["type"] == "directory" else tarfile.REGTYPE
    info.mode, info.size, info.mtime = int(entry["mode"], 8), entry.get("size", 0), mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _write_tar(manifest, manifest_bytes, mtime, out):
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, content in ((MANIFEST, manifest_bytes), (MANIFEST_SUM, manifest_sum_line(manifest_bytes))):
            info = _tarinfo(name, {"type": "file", "mode": "0600", "size": len(content)}, mtime)
            tar.addfile(info, io.BytesIO(content))
        for name, entry, part, source in members(manifest):
            info = _tarinfo(name, entry, mtime)
            if entry["type"] == "directory":
                tar.addfile(info)
                continue
            changed = (
                f"part {part}: {source} changed while the backup was written; back up when nothing writes it"
            )
            try:
                fd = open_regular(source, follow_symlinks=name == f"{PARTS}/{part}")
                with open(fd, "rb") as handle:
                    hashing = HashingStream(handle)
                    tar.addfile(info, hashing)
                    if handle.read(1) or hashing.digest.hexdigest() != entry["sha256"]:
                        raise BackupInputError(changed)
            except OSError as exc:
                raise BackupInputError(f"{changed} ({exc})") from None


# --- create ---------------------------------------------------------------------------------------


def create(directory, parts, recipients, *, island_name=None, island_domain=None, now=None, check_mode=False):
    """Write ONE encrypted archive of ``parts`` into ``directory``; the result says what it holds."""
    age_recipients = parse_recipients(recipients)
    if not os.path.isdir(directory):
        raise BackupInputError(
            f"backup directory {directory} does not exist; mount the backup medium or create it"
        )
    if not os.access(directory, os.W_OK | os.X_OK):
        raise BackupInputError(f"backup directory {directory} is not writable by this user")
    created = (now or datetime.datetime.now(datetime.UTC)).replace(microsecond=0)
    manifest = build_manifest(parts, created, island_name, island_domain)
    real = os.path.realpath(directory)
    for part in manifest["parts"]:
        source = os.path.realpath(part["source"])
        if part["kind"] == "directory" and (real == source or real.startswith(source + os.sep)):
            raise BackupInputError(
                f"backup directory {directory} lies inside part {part['name']} ({part['source']}); "
                "write backups outside what is backed up"
            )
    path = os.path.join(directory, archive_name(created))
    if os.path.lexists(path):
        raise BackupInputError(
            f"{path} exists already; a backup is never overwritten, wait a second and rerun"
        )
    manifest_bytes = render_manifest(manifest)
    result = {
        "changed": True,
        "path": path,
        "manifest": manifest,
        "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(),
        "parts": [part["name"] for part in manifest["parts"]],
    }
    total = sum(part["size"] for part in manifest["parts"])
    result["msg"] = f"backup {path}: {len(manifest['parts'])} part(s), {total} bytes of content"
    if check_mode:
        result["msg"] += " would be written"
        return result
    mtime = int(created.timestamp())
    with atomic_open(path, mode=0o600) as handle:
        size, digest = encrypt(
            lambda out: _write_tar(manifest, manifest_bytes, mtime, out), handle, age_recipients, path
        )
    result["size"], result["sha256"] = size, digest
    result["msg"] += f" written, sha256 {result['sha256']}"
    return result


# --- verify and extract ---------------------------------------------------------------------------


def manifest_problems(manifest):
    """What makes ``manifest`` unusable: its shape, names, paths, and each part's sha256 over its entries."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return [f"{MANIFEST} is not an island backup manifest"]
    if manifest.get("format_version") != FORMAT_VERSION:
        return [f"{MANIFEST} has format_version {manifest.get('format_version')!r}; this installer reads 1"]
    parts = manifest.get("parts")
    if not isinstance(parts, list):
        return [f"{MANIFEST} has no list of parts"]
    problems, names = [], set()
    for part in parts:
        name = part.get("name") if isinstance(part, dict) else None
        if not isinstance(name, str) or not NAME_RE.match(name) or name in names:
            problems.append(f"{MANIFEST}: part name {name!r} is not valid or is repeated")
            continue
        names.add(name)
        entries = part.get("entries") if part.get("kind") == "directory" else [part | {"type": "file"}]
        if part.get("kind") not in ("file", "directory") or not isinstance(entries, list):
            problems.append(f"part {name}: kind {part.get('kind')!r} is neither file nor directory")
            continue
        if not MODE_RE.match(str(part.get("mode"))) or not isinstance(part.get("source", ""), str):
            problems.append(f"part {name}: {MANIFEST} gives it a bad mode or source")
            continue
        paths = set()
        for entry in entries:
            bad = _entry_problem(entry, paths, part["kind"] == "file")
            if bad:
                problems.append(f"part {name}: {MANIFEST} entry {bad}")
        if problems or part["kind"] == "file":
            continue
        if part.get("sha256") != tree_sha256(entries) or part.get("size") != sum(
            e.get("size", 0) for e in entries
        ):
            problems.append(
                f"part {name}: the sha256 or size {MANIFEST} gives for the part does not match its entries"
            )
    return problems


def _entry_problem(entry, paths, file_part):
    if not isinstance(entry, dict):
        return "is not a mapping"
    path = entry.get("path", "") if not file_part else "x"
    if unsafe_path(path) or path in paths:
        return f"{path!r}: {unsafe_path(path) or 'listed twice'}"
    paths.add(path)
    if entry.get("type") not in ("file", "directory") or not MODE_RE.match(str(entry.get("mode"))):
        return f"{path!r}: bad type or mode"
    if entry["type"] == "file":
        size, digest = entry.get("size"), entry.get("sha256")
        if not isinstance(size, int) or size < 0 or not SHA256_RE.match(str(digest)):
            return f"{path!r}: bad size or sha256"
    return None


def _read_small(tar, expected_name, archive):
    member = tar.next()
    if member is None or member.name != expected_name or not member.isreg() or member.size > MANIFEST_LIMIT:
        found = "nothing" if member is None else member.name
        raise BackupIntegrityError(
            archive, [f"{expected_name} is not where it belongs (found {found}): not an island backup"]
        )
    return member, tar.extractfile(member).read()


def _part_label(name, parts):
    pieces = name.split("/")
    if len(pieces) >= 2 and pieces[0] == PARTS:
        return f"part {pieces[1]}" if pieces[1] in parts else f"extra part {pieces[1]}"
    return "archive"


class _Reader:
    """Reads the decrypted tar stream, checks each member against the manifest and stages it if asked."""

    def __init__(self, archive, stage=None):
        self.archive, self.stage = archive, stage
        self.problems, self.manifest, self.manifest_sha256, self.dir_modes = [], None, None, []

    def __call__(self, stream):
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                self._read(tar)
        except tarfile.TarError as exc:
            self.problems.append(f"the tar stream is damaged ({exc})")
        while chunk := stream.read(BUFFER_SIZE):
            if chunk.strip(b"\0") and "data after the end of the tar archive" not in self.problems:
                self.problems.append("data after the end of the tar archive")

    def _read(self, tar):
        member, manifest_bytes = _read_small(tar, MANIFEST, self.archive)
        self._stage_bytes(member.name, manifest_bytes)
        member, sum_bytes = _read_small(tar, MANIFEST_SUM, self.archive)
        self._stage_bytes(member.name, sum_bytes)
        if sum_bytes != manifest_sum_line(manifest_bytes):
            raise BackupIntegrityError(
                self.archive,
                [f"{MANIFEST} does not match {MANIFEST_SUM}: the manifest was altered or damaged"],
            )
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError as exc:
            raise BackupIntegrityError(self.archive, [f"{MANIFEST} is not JSON ({exc})"]) from None
        problems = manifest_problems(manifest)
        if problems:
            raise BackupIntegrityError(self.archive, problems)
        self.manifest, self.manifest_sha256 = manifest, hashlib.sha256(manifest_bytes).hexdigest()
        expected = {name: (entry, part) for name, entry, part, _ in members(manifest)}
        parts = {part["name"] for part in manifest["parts"]}
        seen = set()
        # tar.next(), not iteration: iterating a stream-mode TarFile starts again at its first member
        while (member := tar.next()) is not None:
            self._member(tar, member, expected, parts, seen)
        missing = {}
        for name in expected.keys() - seen:
            missing.setdefault(expected[name][1], []).append(name)
        for part, names in sorted(missing.items()):
            if f"{PARTS}/{part}" in names:
                self.problems.append(f"part {part} is missing from the archive")
            else:
                self.problems.append(f"part {part}: {len(names)} member(s) missing, {sorted(names)[0]} first")

    def _member(self, tar, member, expected, parts, seen):
        name, label = member.name, _part_label(member.name, parts)
        bad = unsafe_path(name)
        if bad:
            self.problems.append(f"{label}: member {name!r} has {bad}; refused")
            return
        if not (member.isdir() or (member.isreg() and not member.sparse)):
            self.problems.append(f"{label}: {name} is a link, device or other special member; refused")
            return
        if name not in expected or name in seen:
            self.problems.append(
                f"{label}: {name} is {'listed twice' if name in seen else 'not in the manifest'}"
            )
            return
        seen.add(name)
        entry, part = expected[name]
        kind = "directory" if member.isdir() else "file"
        mode = f"{member.mode & 0o7777:04o}"
        if kind != entry["type"] or mode != entry["mode"]:
            self.problems.append(
                f"part {part}: {name} is a {kind} of mode {mode}; manifest: {entry['type']} {entry['mode']}"
            )
            return
        if kind == "directory":
            if self.stage:
                os.makedirs(os.path.join(self.stage, name), mode=0o700, exist_ok=True)
                self.dir_modes.append((name, int(mode, 8)))
            return
        if member.size != entry["size"]:
            self.problems.append(
                f"part {part}: {name} has {member.size} bytes, the manifest says {entry['size']}"
            )
            return
        digest = self._copy(tar.extractfile(member), name, int(mode, 8))
        if digest != entry["sha256"]:
            self.problems.append(
                f"part {part}: {name} has sha256 {digest}, manifest {entry['sha256']} (altered or damaged)"
            )

    def _copy(self, source, name, mode):
        digest = hashlib.sha256()
        target = None
        if self.stage and not self.problems:
            path = os.path.join(self.stage, name)
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            target = os.fdopen(os.open(path, flags, 0o600), "wb")
        with target or contextlib.nullcontext():
            while chunk := source.read(BUFFER_SIZE):
                digest.update(chunk)
                if target:
                    target.write(chunk)
            if target:
                os.fchmod(target.fileno(), mode)
        return digest.hexdigest()

    def _stage_bytes(self, name, data):
        if self.stage:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with os.fdopen(os.open(os.path.join(self.stage, name), flags, 0o600), "wb") as handle:
                handle.write(data)

    def finish_stage(self):
        """Give the staged directories their modes, deepest first (a read-only one last)."""
        for name, mode in sorted(self.dir_modes, key=lambda item: item[0].count("/"), reverse=True):
            os.chmod(os.path.join(self.stage, name), mode)


def _read_archive(archive, identities, stage=None):
    """Decrypt ``archive`` and check it member by member; the reader, the archive's size and sha256."""
    reader = _Reader(archive, stage)
    size, digest = decrypt(archive, identities, reader)
    if reader.problems:
        raise BackupIntegrityError(archive, reader.problems)
    return reader, size, digest


def verify(archive, identities):
    """Check every part of ``archive`` against its manifest without writing anything."""
    reader, size, digest = _read_archive(archive, identities)
    names = [part["name"] for part in reader.manifest["parts"]]
    return {
        "changed": False,
        "path": archive,
        "size": size,
        "sha256": digest,
        "manifest": reader.manifest,
        "manifest_sha256": reader.manifest_sha256,
        "parts": names,
        "msg": f"backup {archive} verified: {len(names)} part(s) match the manifest ({', '.join(names)})",
    }


def _stage_verified(archive, identities, parent, manifest_sha256, purpose):
    """Decrypt ``archive`` again into a new staging directory in ``parent``, checking every member
    as it is written, and return the directory; it must be the archive verified just before (its
    manifest's sha256). On any failure nothing is left behind."""
    stage = tempfile.mkdtemp(prefix=f".island-backup-{purpose}.", dir=parent)
    try:
        reader, _, _ = _read_archive(archive, identities, stage)
        if reader.manifest_sha256 != manifest_sha256:
            raise BackupIntegrityError(
                archive, [f"the archive changed between its verification and its {purpose}"]
            )
        reader.finish_stage()
    except OSError as exc:  # the staging directory's disk, not the archive
        shutil.rmtree(stage, ignore_errors=True)
        raise BackupInputError(f"cannot {purpose} {archive} in {parent} ({exc})") from None
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return stage


def extract(archive, dest, identities, check_mode=False):
    """Verify ``archive``, then extract it to ``dest`` (absent or empty), all or nothing."""
    dest = os.path.abspath(dest)
    parent = os.path.dirname(dest)
    if not os.path.isdir(parent):
        raise BackupInputError(f"extract destination {dest}: its directory {parent} does not exist")
    if os.path.islink(dest) or (os.path.lexists(dest) and (not os.path.isdir(dest) or os.listdir(dest))):
        raise BackupInputError(
            f"extract destination {dest} exists and is not an empty directory; name a new one"
        )
    result = verify(archive, identities)
    result.update(changed=True, dest=dest)
    if check_mode:
        result["msg"] = f"backup {archive} verified; would be extracted to {dest}"
        return result
    stage = _stage_verified(archive, identities, parent, result["manifest_sha256"], "extract")
    try:
        os.rename(stage, dest)
    except OSError as exc:  # the staging directory's disk, not the archive
        shutil.rmtree(stage, ignore_errors=True)
        raise BackupInputError(f"cannot extract {archive} to {dest} ({exc})") from None
    fsync_directory(parent)
    result["msg"] = f"backup {archive} verified and extracted to {dest}"
    return result


# Parts restored onto hosts by their own plays of restore.yml (the etcd snapshot, Gitea's dump, the
# buckets, the pushed images), never onto the controller by default: their ``source`` is the
# staging directory they were taken through.
HOST_PARTS = ("etcd-snapshot", "gitea", "oci-images")


def is_host_part(name):
    return name in HOST_PARTS or name.startswith("minio-")


def _restore_targets(manifest, parts, paths):
    """``{part: absolute target}`` for the parts to restore, and every problem with them at once."""
    available = {part["name"]: part for part in manifest["parts"]}
    names = list(parts) if parts else [name for name in available if not is_host_part(name)]
    problems, targets = [], {}
    for name in names:
        if name not in available:
            problems.append(f"part {name} is not in this backup (it holds {', '.join(available)})")
            continue
        target = (paths or {}).get(name) or available[name].get("source")
        if not target:
            problems.append(f"part {name}: the backup records no path for it; give one in paths")
            continue
        target = os.path.abspath(target)
        if os.path.islink(target) or (
            os.path.lexists(target) and (not os.path.isdir(target) or os.listdir(target))
        ):
            problems.append(
                f"part {name}: {target} exists; a restore never overwrites state: move it away, or leave"
                " the part out (restore_parts) or give it another path (restore_paths)"
            )
            continue
        if available[name]["kind"] == "file" and os.path.isdir(target):
            problems.append(f"part {name} is a file and {target} is a directory: give the file's path")
            continue
        targets[name] = target
    for name in set(paths or {}) - set(names):
        problems.append(f"a path is given for part {name}, which is not restored")
    return targets, problems


def restore(archive, identities, *, parts=(), paths=None, check_mode=False):
    """Verify ``archive`` and put its ``parts`` back where they were taken from, all or nothing.

    ``parts``: the part names to restore (default: every part but the host parts of HOST_PARTS and
    ``minio-*``, which restore.yml's own plays put back onto their hosts); ``paths``:
    ``{part: path}`` for a part that goes elsewhere than the ``source`` its manifest records. A
    target that exists (other than an empty directory) is refused before anything is written: a
    restore never overwrites state. The archive is extracted (checked member by member) into a
    staging directory beside the first target, then each part is moved into place with its modes,
    and the staging directory is removed.
    """
    verified = verify(archive, identities)
    targets, problems = _restore_targets(verified["manifest"], parts, paths)
    if problems:
        raise BackupInputError(f"nothing was restored from {archive}: " + "; ".join(problems))
    restored = [{"part": name, "path": path} for name, path in targets.items()]
    result = {
        "changed": bool(restored),
        "path": archive,
        "sha256": verified["sha256"],
        "parts": list(targets),
        "restored": restored,
    }
    if check_mode:
        result["msg"] = f"backup {archive} verified; would restore " + ", ".join(
            f"{name} to {path}" for name, path in targets.items()
        )
        return result
    first_parent = os.path.dirname(next(iter(targets.values())))
    os.makedirs(first_parent, mode=0o700, exist_ok=True)
    stage = _stage_verified(archive, identities, first_parent, verified["manifest_sha256"], "restore")
    try:
        for name, target in targets.items():
            parent = os.path.dirname(target)
            os.makedirs(parent, mode=0o700, exist_ok=True)
            if os.path.isdir(target):
                os.rmdir(target)  # empty (checked above)
            shutil.move(os.path.join(stage, PARTS, name), target)
            fsync_directory(parent)
    except OSError as exc:
        raise BackupInputError(
            f"cannot restore {archive} ({exc}); check which of {sorted(targets.values())} are in place"
        ) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    result["msg"] = f"backup {archive} verified; restored " + ", ".join(
        f"{name} to {path}" for name, path in targets.items()
    )
    return result


# --- retention ------------------------------------------------------------------------------------


def prune(directory, keep, check_mode=False):
    """Keep the ``keep`` newest archives of ``directory`` (by the time in their names), remove the rest.

    Only regular files named ``island-backup-<YYYYmmddTHHMMSSZ>.tar.age`` count; anything else in
    the directory is left alone.
    """
    if not isinstance(keep, int) or keep < 1:
        raise BackupInputError(f"keep is {keep!r}; keep at least 1 backup")
    try:
        with os.scandir(directory) as listing:
            found = sorted(
                (
                    entry.name
                    for entry in listing
                    if ARCHIVE_RE.match(entry.name) and entry.is_file(follow_symlinks=False)
                ),
                reverse=True,
            )
    except OSError as exc:
        raise BackupInputError(f"cannot list backup directory {directory} ({exc.strerror})") from None
    kept, removed = found[:keep], found[keep:]
    if removed and not check_mode:
        for name in removed:
            os.unlink(os.path.join(directory, name))
        fsync_directory(directory)
    verb = "would remove" if check_mode else "removed"
    return {
        "changed": bool(removed),
        "kept": kept,
        "removed": removed,
        "msg": f"{directory}: kept {len(kept)} backup(s), {verb} {len(removed)}"
        + (f": {', '.join(removed)}" if removed else ""),
    }
