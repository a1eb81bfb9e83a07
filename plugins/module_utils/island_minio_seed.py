# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MinIO's seed objects checked before anything is uploaded: confined to the bundle's files/, plain
files only, each the file the bundle's lock names (island_minio uploads what this accepts)."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass

from ansible_collections.island.installer.plugins.module_utils.island_minio_errors import (
    SeedRefused,
    SpecError,
)


@dataclass(frozen=True)
class SeedFile:
    path: str
    rel: str
    sha256: str
    md5: str


def check_seed(spec, seed_root=None):
    """The files of one seed object spec, checked before anything changes.

    With ``seed_root`` (the bundle's files/), ``src`` must lie inside it once symbolic links are
    resolved. Every entry below ``src`` must be a regular file or directory (a symbolic link, FIFO or
    device is refused, so nothing leads outside). With ``spec["sha256"]`` (relative path to sha256,
    from the bundle's lock), the files must be exactly those listed, each with its listed sha256.
    """
    src = spec["src"]
    if seed_root is not None:
        root = os.path.realpath(seed_root)
        real = os.path.realpath(src)
        if os.path.commonpath([root, real]) != root:
            raise SeedRefused(
                f"objects: source {src} is outside {seed_root} (it resolves to {real}); seed objects "
                "come from the bundle's files/ only: name a directory below it, without '..'"
            )
    if os.path.islink(src) or not os.path.isdir(src):
        raise SpecError(f"objects: source directory {src} does not exist (or is not a plain directory)")
    files = []
    for path in sorted(_files_under(src)):
        sha256, md5 = _digests(path)
        files.append(SeedFile(path, os.path.relpath(path, src).replace(os.sep, "/"), sha256, md5))
    expected = spec.get("sha256")
    if expected is not None:
        problems = []
        for seed_file in files:
            want = expected.get(seed_file.rel)
            if want is None:
                problems.append(f"{seed_file.path} is not listed in the bundle's lock")
            elif want != seed_file.sha256:
                problems.append(f"{seed_file.path} has sha256 {seed_file.sha256}, the lock names {want}")
        found = {seed_file.rel for seed_file in files}
        problems += [
            f"{os.path.join(src, rel)} is listed in the lock but missing"
            for rel in sorted(expected)
            if rel not in found
        ]
        if problems:
            raise SeedRefused(
                f"objects: the seed files of {src} are not the bundle's: "
                + "; ".join(problems)
                + ". Nothing was uploaded: verify the bundle (playbooks/verify.yml) and copy it again"
            )
    return files


def _files_under(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise SeedRefused(
                    f"objects: {path} is not a regular file or directory (a symbolic link, FIFO or "
                    "device); seed objects are plain files"
                )
            if stat.S_ISREG(mode):
                yield path


def copy_digest(path, target):
    """Copy the regular file ``path`` (never through a symbolic link) into ``target``; its sha256."""
    sha = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise SeedRefused(f"objects: {path} is not a regular file")
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            sha.update(chunk)
            target.write(chunk)
    return sha.hexdigest()


def _digests(path):
    sha, md5 = hashlib.sha256(), hashlib.md5()  # noqa: S324 - md5 only to compare with S3's ETag
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()
