"""Files put in place on a host in one module call: bundle files checked against the lock, rendered
files, their directories, and records read back.

Note that this module util is PRIVATE to this repository; it can change at any time.

The host side of the ``island_install`` action (plugins/action/island_install.py). One call reads
everything the caller decides on and changes what it can without a transfer: it creates the
directories, writes rendered content, fixes owners and modes, and reads the requested files. A
bundle file whose sha256 on the host is not the lock's is reported back (``transfer``); the action
copies it to the host's temporary directory and calls again with its ``staged`` path, and this side
copies it beside its live path while hashing it, and renames it into place only when the hash is
the lock's (atomic_open: same directory, fsync, rename(2), directory fsync). A copy that does not
match is removed and the run fails with the live file untouched. A zero-change rerun is one round
trip per host instead of a stat, a slurp and a file task per file.

Runs on the hosts' system Python (3.9+).
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import stat

from ansible_collections.island.installer.plugins.module_utils.island_io import (
    BUFFER_SIZE,
    atomic_open,
    open_regular,
    parse_mode,
    read_regular,
    resolve_owner,
    sha256_file,
)

# A file read back (a component record, a small configuration): anything larger is refused.
READ_LIMIT = 1024 * 1024
# Rendered content larger than this is not shown in a diff (the sha256 lines are).
DIFF_LIMIT = 256 * 1024


class InstallError(Exception):
    """A file could not be put in place; the message names it and what to do."""


def _current_sha256(path):
    """The sha256 of the regular file ``path``, None when it does not exist, "" when it is not one."""
    try:
        return sha256_file(path)[1]
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EINVAL):
            return ""  # a link or something else sits there: replaced by the file
        raise InstallError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def _attribute_changes(path, mode, uid, gid, follow=False):
    """What differs in ``path``'s mode and ownership: a list of "mode 0644 -> 0755"-style words."""
    st = os.stat(path, follow_symlinks=follow)
    changes = []
    if mode is not None and stat.S_IMODE(st.st_mode) != mode:
        changes.append(f"mode {stat.S_IMODE(st.st_mode):04o} -> {mode:04o}")
    if uid is not None and st.st_uid != uid:
        changes.append(f"owner {st.st_uid} -> {uid}")
    if gid is not None and st.st_gid != gid:
        changes.append(f"group {st.st_gid} -> {gid}")
    return changes


def _set_attributes(path, mode, uid, gid):
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid, follow_symlinks=False)
    if mode is not None:
        os.chmod(path, mode)


def _directory(entry, check_mode):
    path = entry["path"]
    mode = parse_mode(entry.get("mode"), what=path)
    uid, gid = resolve_owner(entry.get("owner"), entry.get("group"), what=path)
    if not os.path.lexists(path):
        if not check_mode:
            os.makedirs(path, exist_ok=True)
            _set_attributes(path, mode, uid, gid)
        return {"path": path, "changed": True, "reason": "absent"}
    if not os.path.isdir(path) or os.path.islink(path):
        raise InstallError(f"{path} exists and is not a directory: move it away and rerun")
    changes = _attribute_changes(path, mode, uid, gid)
    if changes and not check_mode:
        _set_attributes(path, mode, uid, gid)
    return {"path": path, "changed": bool(changes), "reason": ", ".join(changes) or None}


def _text_before(path):
    try:
        data = read_regular(path, DIFF_LIMIT)
    except OSError:
        return ""
    if len(data) > DIFF_LIMIT:
        return f"({path}: larger than {DIFF_LIMIT} bytes, not shown)\n"
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"({path}: not text, not shown)\n"


def _copy_checked(staged, dest, sha256, *, mode, uid, gid, src):
    """Copy ``staged`` beside ``dest`` while hashing it; rename into place only if it is the lock's."""
    digest = hashlib.sha256()
    try:
        fd = open_regular(staged)
    except OSError as exc:
        raise InstallError(
            f"{dest}: the copy of the bundle's {src} was not found on the host at {staged}"
            f" ({exc.strerror or exc})"
        ) from exc
    final_mode = mode if mode is not None else 0o644
    with (
        open(fd, "rb", buffering=0) as source,
        atomic_open(dest, final_mode, uid, gid, suffix=".island-new") as out,
    ):
        while True:
            chunk = source.read(BUFFER_SIZE)
            if not chunk:
                break
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != sha256:
            raise InstallError(
                f"the copy of {src} staged beside {dest} has sha256 {digest.hexdigest()}, the bundle's"
                f" lock says {sha256}: the bundle changed after verification or the copy was altered"
                f" in transit; {dest} was left as it was. Verify the bundle again"
                " (playbooks/verify.yml) and rerun."
            )


def _file(entry, check_mode, diff):
    dest = entry["dest"]
    sha256 = entry["sha256"]
    mode = parse_mode(entry.get("mode"), what=dest)
    uid, gid = resolve_owner(entry.get("owner"), entry.get("group"), what=dest)
    content = entry.get("content")
    label = entry.get("src") or dest
    current = _current_sha256(dest)
    result = {
        "dest": dest,
        "changed": False,
        "reason": None,
        "sha256": current,
        "want": sha256,
        "transfer": False,
    }
    if current != sha256:
        result.update(changed=True, reason="absent" if current is None else "content")
        if diff:
            if content is not None:
                before = "" if current is None else _text_before(dest)
                result["diff"] = {"before": before, "after": content}
            else:
                result["diff"] = {
                    "before": "" if current is None else f"sha256 {current}\n",
                    "after": f"sha256 {sha256} ({label})\n",
                }
        if check_mode:
            return result
        if content is not None:
            data = content.encode("utf-8")
            if hashlib.sha256(data).hexdigest() != sha256:
                raise InstallError(f"{dest}: the rendered content does not match its sha256 (sent altered)")
            with atomic_open(
                dest, mode if mode is not None else 0o644, uid, gid, suffix=".island-new"
            ) as out:
                out.write(data)
        elif entry.get("staged"):
            _copy_checked(entry["staged"], dest, sha256, mode=mode, uid=uid, gid=gid, src=label)
        else:
            result["transfer"] = True
            return result
        result["sha256"] = sha256
        return result
    changes = _attribute_changes(dest, mode, uid, gid)
    if changes:
        result.update(changed=True, reason=", ".join(changes))
        if diff:
            result["diff"] = {"before": "\n".join(changes) + "\n", "after": ""}
        if not check_mode:
            _set_attributes(dest, mode, uid, gid)
    return result


def _prune(entry, keep, check_mode):
    """Files in ``entry['path']`` matching ``entry['pattern']`` that are not kept: removed."""
    directory = entry["path"]
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    removed = []
    for name in names:
        path = os.path.join(directory, name)
        if not fnmatch.fnmatchcase(name, entry["pattern"]) or path in keep:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            continue
        if not check_mode:
            os.unlink(path)
        removed.append(path)
    return removed


def _read(path):
    try:
        data = read_regular(path, READ_LIMIT, follow_symlinks=True)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InstallError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if len(data) > READ_LIMIT:
        raise InstallError(f"{path}: larger than {READ_LIMIT} bytes; it is not a file the island wrote")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InstallError(f"{path}: not UTF-8 text; it is not a file the island wrote") from None


def converge(directories, files, read, *, check_mode=False, diff=False, prune=()):
    """Directories, then files, then what ``prune`` removes, then reads; the task's result.

    ``prune``: entries ``{path, pattern}``; every file of ``path`` whose name matches the glob
    ``pattern`` and that is not one of ``files`` is removed (a retired certificate, an old archive).
    """
    dirs = [_directory(entry, check_mode) for entry in directories]
    placed = [_file(entry, check_mode, diff) for entry in files]
    keep = {os.path.normpath(entry["dest"]) for entry in files}
    pruned = [path for entry in prune for path in _prune(entry, keep, check_mode)]
    reads = {path: _read(path) for path in read}
    changed = any(d["changed"] for d in dirs) or any(f["changed"] for f in placed) or bool(pruned)
    result = {
        "changed": changed,
        "directories": dirs,
        "files": placed,
        "transfer": [f["dest"] for f in placed if f["transfer"]],
        "changed_files": [f["dest"] for f in placed if f["changed"]],
        "replaced": [f["dest"] for f in placed if f["reason"] in ("absent", "content")],
        "pruned": pruned,
        "read": reads,
    }
    if diff:
        result["diff"] = (
            [
                {"before_header": f["dest"], "after_header": f["dest"], **f.pop("diff")}
                for f in placed
                if "diff" in f
            ]
            + [
                {
                    "before_header": d["path"],
                    "after_header": d["path"],
                    "before": "",
                    "after": f"directory ({d['reason']})\n",
                }
                for d in dirs
                if d["changed"]
            ]
            + [
                {"before_header": path, "after_header": path, "before": "present\n", "after": ""}
                for path in pruned
            ]
        )
    return result
