# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The island's secrets on the controller: generated once, kept 0600 in a 0700 directory, read back.

One call does what a role needs before it renders anything: it generates the secrets it owns that
do not exist yet (``generate``) and reads the credentials other roles created (``read``, such as a
MinIO tenant's secret key, which the minio role generated), and returns them all to the caller's
registered result. Nothing is passed through a global fact, and a missing credential is named with
the caller's message before anything changes. In check mode a missing secret is not written and
reads as an empty string for that run.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import string

from ansible_collections.island.installer.plugins.module_utils.island_io import atomic_write, read_regular

# A secret's file name: one plain name inside the directory (no path, no dot files).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
ALPHABET = string.ascii_letters + string.digits
DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
MAX_SECRET_BYTES = 64 * 1024


class SecretError(Exception):
    """A secret the caller needs cannot be had; the message says which and what to do."""


def generate(length: int) -> str:
    """A new secret of ``length`` letters and digits from the system's CSPRNG."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def _check_names(names, option):
    bad = [n for n in names if not NAME_RE.match(str(n))]
    if bad:
        shown = ", ".join(repr(str(n)[:60]) for n in bad)
        raise SecretError(
            f"{option}: {shown} is not a plain file name (letters, digits, '.', '_' or '-', starting "
            "with a letter or digit): secrets live directly in island_secrets_dir"
        )


def _read(path):
    try:
        data = read_regular(path, MAX_SECRET_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EINVAL):
            raise SecretError(f"{path} is not a regular file: a secret is a plain file, 0600") from exc
        raise SecretError(f"{path} cannot be read: {exc.strerror}") from exc
    if len(data) > MAX_SECRET_BYTES:
        raise SecretError(
            f"{path} is larger than {MAX_SECRET_BYTES} bytes: it is not a secret the island wrote"
        )
    return data.decode("utf-8", errors="strict").strip()


def converge(
    directory,
    generate_names=(),
    read_names=(),
    *,
    length=40,
    missing="",
    missing_fails=True,
    check_mode=False,
):
    """Generate the missing ``generate_names`` once and read them and ``read_names`` from
    ``directory``. Returns ``{"changed", "created", "secrets", "missing", "msg"}``: ``created``
    lists the names generated (or that would be, in check mode); ``missing`` the credentials of
    ``read_names`` that do not exist (outside check mode), which raise unless ``missing_fails`` is
    false, when nothing is generated either and ``msg`` says what is missing (the caller's task
    holds the values under no_log, so a following assert shows ``msg`` to the operator)."""
    _check_names(generate_names, "generate")
    _check_names(read_names, "read")
    if int(length) < 16:
        raise SecretError(f"length: {length} is too short for a secret; use 16 or more")
    directory = os.path.abspath(os.fspath(directory))
    changed = False
    if not os.path.isdir(directory):
        if os.path.lexists(directory):
            raise SecretError(f"{directory} exists and is not a directory: it must hold the island's secrets")
        changed = True
        if not check_mode:
            os.makedirs(directory, mode=DIRECTORY_MODE, exist_ok=True)
            os.chmod(directory, DIRECTORY_MODE)
    elif stat.S_IMODE(os.stat(directory).st_mode) != DIRECTORY_MODE:
        changed = True
        if not check_mode:
            os.chmod(directory, DIRECTORY_MODE)
    absent = [n for n in read_names if not os.path.lexists(os.path.join(directory, n))]
    if absent and not check_mode:
        names = ", ".join(os.path.join(directory, n) for n in absent)
        msg = f"{names} does not exist on the controller" + (f": {missing}" if missing else "")
        if missing_fails:
            raise SecretError(msg)
        paths = [os.path.join(directory, n) for n in absent]
        return {"changed": False, "created": [], "secrets": {}, "missing": paths, "msg": msg}
    values, created = {}, []
    for name in generate_names:
        path = os.path.join(directory, name)
        value = _read(path) if os.path.isdir(directory) else None
        if value is None:
            created.append(name)
            value = ""
            if not check_mode:
                value = generate(int(length))
                atomic_write(path, value.encode(), mode=FILE_MODE)
        values[name] = value
    for name in read_names:
        value = _read(os.path.join(directory, name)) if os.path.isdir(directory) else None
        values[name] = "" if value is None else value
    return {
        "changed": changed or bool(created),
        "created": created,
        "secrets": values,
        "missing": [],
        "msg": "",
    }
