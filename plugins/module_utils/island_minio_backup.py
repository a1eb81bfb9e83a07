# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MinIO buckets as backup parts, and back (docs/backup.md, "MinIO buckets").

A bucket's export is a directory ``minio-<bucket>``::

    index.json           {"format": "island-minio-bucket", "format_version": 1, "bucket": ...,
                          "objects": [{"key", "file", "size", "sha256", "etag", "content_type",
                                       "metadata"}, ...]}   (sorted by key)
    objects/<file>       each object's bytes; <file> is the sha256 of the key (hex)

An S3 key may hold anything (``../x``, ``a/`` beside ``a``, 1024 bytes): the file name is the
sha256 of the key's UTF-8 bytes, so no key can name a path outside ``objects/`` or the file of
another key, and the restore recomputes it rather than trusting the index.

Read and written through the S3 API with the island's client (island_minio.Connection, the minio
SDK 7.2.20): ``list_objects`` (ListObjectsV2, the current version of each key), ``get_object`` (the
bytes with the ETag, Content-Type and x-amz-meta-* of the same response), ``stat_object``,
``put_object``. An S3 ETag is the MD5 of the bytes for an object uploaded in one part; with a ``-``
it is a multipart ETag, which says nothing about the bytes alone, and the sha256 is compared
instead (by reading the object).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile

from ansible_collections.island.installer.plugins.module_utils.island_minio_errors import (
    ApiError,
    MinioStateError,
    SpecError,
)

try:
    import urllib3
    from minio.error import S3Error
except ImportError:  # the module reports the missing SDK
    S3Error = urllib3 = None

FORMAT = "island-minio-bucket"
FORMAT_VERSION = 1
INDEX = "index.json"
OBJECTS = "objects"
META_PREFIX = "x-amz-meta-"
CHUNK = 1024 * 1024
NOT_FOUND = ("NoSuchKey", "NoSuchObject", "ResourceNotFound")


class BucketRestoreRefused(MinioStateError):
    """The export is not usable, or the bucket holds other content under the export's keys."""


def part_name(bucket):
    return f"minio-{bucket}"


def key_file(key):
    """The file name of an object's bytes in an export: the sha256 of its key (see the docstring)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _digest_file(path):
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0  # noqa: S324 - md5 only to compare with ETags
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def _stream(conn, response, what):
    """The chunks of a response body, read as they come; a broken transfer names the object."""
    try:
        yield from response.stream(CHUNK)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise conn._transport_error(exc, what) from exc


def _etag(value):
    return (value or "").strip('"')


def _single_part(etag):
    return bool(etag) and "-" not in etag


# ------------------------------------------------------------------------------------------------
# Export
# ------------------------------------------------------------------------------------------------


def check_buckets(conn, buckets):
    """Refuse, before anything is read, bucket names MinIO does not hold (naming those it does)."""
    existing = sorted(b.name for b in conn.call("list the buckets", conn.s3.list_buckets))
    unknown = [name for name in buckets if name not in existing]
    if unknown:
        raise SpecError(
            f"backup_minio_buckets names bucket(s) MinIO at {conn.endpoint} does not hold: "
            f"{', '.join(unknown)}; it holds: {', '.join(existing) or '(none)'}. Correct the list "
            "(or leave it unset for the island's operator buckets). Nothing was taken"
        )
    return existing


def export_buckets(conn, buckets, dest):
    """Export every bucket of ``buckets`` into ``dest``/minio-<bucket>; what each holds."""
    conn.verify_login()
    check_buckets(conn, buckets)
    if not os.path.isdir(dest):
        raise SpecError(f"the export directory {dest} does not exist")
    for name in buckets:
        target = os.path.join(dest, part_name(name))
        if os.path.lexists(target):
            raise SpecError(f"{target} exists already: an export is written into a fresh staging directory")
    return [export_bucket(conn, name, os.path.join(dest, part_name(name))) for name in buckets]


def export_bucket(conn, bucket, target):
    """Every current object of ``bucket`` with its index into ``target`` (made atomically)."""
    stage = tempfile.mkdtemp(prefix=f".{part_name(bucket)}.", dir=os.path.dirname(target))
    try:
        os.makedirs(os.path.join(stage, OBJECTS), mode=0o700)
        entries = []
        listing = conn.call(
            f"list bucket {bucket}", lambda: list(conn.s3.list_objects(bucket_name=bucket, recursive=True))
        )
        for item in sorted(listing, key=lambda o: o.object_name):
            entries.append(_export_object(conn, bucket, item.object_name, os.path.join(stage, OBJECTS)))
        index = {"format": FORMAT, "format_version": FORMAT_VERSION, "bucket": bucket, "objects": entries}
        index_path = os.path.join(stage, INDEX)
        with open(
            os.open(index_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8"
        ) as fh:
            json.dump(index, fh, indent=1, sort_keys=True)
            fh.write("\n")
        os.chmod(stage, 0o700)
        os.rename(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return {
        "bucket": bucket,
        "part": part_name(bucket),
        "path": target,
        "objects": len(entries),
        "bytes": sum(e["size"] for e in entries),
    }


def _get(conn, bucket, key):
    """The GetObject response; a key the SDK refuses to send (MinIO holds none such) is named."""
    try:
        return conn.call(
            f"read object {bucket}/{key}", conn.s3.get_object, bucket_name=bucket, object_name=key
        )
    except ValueError as exc:
        raise ApiError(f"object {bucket}/{key!r} cannot be read through the S3 API: {exc}") from None


def _export_object(conn, bucket, key, objects_dir):
    label = f"{bucket}/{key}"
    response = _get(conn, bucket, key)
    try:
        headers = response.headers
        sha, md5, size = hashlib.sha256(), hashlib.md5(), 0  # noqa: S324 - md5 only to compare with ETags
        path = os.path.join(objects_dir, key_file(key))
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            for chunk in _stream(conn, response, f"read object {label}"):
                sha.update(chunk)
                md5.update(chunk)
                size += len(chunk)
                out.write(chunk)
    finally:
        response.close()
        response.release_conn()
    etag = _etag(headers.get("ETag"))
    length = headers.get("Content-Length")
    if (length is not None and int(length) != size) or (_single_part(etag) and etag != md5.hexdigest()):
        raise ApiError(
            f"object {label} arrived damaged ({size} bytes, MD5 {md5.hexdigest()}; MinIO announced "
            f"{length} bytes, ETag {etag}): run the backup again"
        )
    metadata = {
        name.lower()[len(META_PREFIX) :]: value
        for name, value in headers.items()
        if name.lower().startswith(META_PREFIX)
    }
    return {
        "key": key,
        "file": key_file(key),
        "size": size,
        "sha256": sha.hexdigest(),
        "etag": etag,
        "content_type": headers.get("Content-Type") or "application/octet-stream",
        "metadata": dict(sorted(metadata.items())),
    }


# ------------------------------------------------------------------------------------------------
# Restore
# ------------------------------------------------------------------------------------------------


def load_export(src, bucket):
    """The export's index, every object file checked against it (name, size, sha256) before any
    write; BucketRestoreRefused lists every problem at once."""
    index_path = os.path.join(src, INDEX)
    try:
        with open(index_path, encoding="utf-8") as fh:
            index = json.load(fh)
    except (OSError, ValueError) as exc:
        raise BucketRestoreRefused(f"{index_path} cannot be read as a bucket export: {exc}") from None
    if (
        not isinstance(index, dict)
        or index.get("format") != FORMAT
        or index.get("format_version") != FORMAT_VERSION
    ):
        raise BucketRestoreRefused(
            f"{index_path} is not an {FORMAT} index of format version {FORMAT_VERSION}"
        )
    if index.get("bucket") != bucket:
        raise BucketRestoreRefused(
            f"{index_path} is the export of bucket {index.get('bucket')!r}, not of {bucket!r}"
        )
    problems, seen = [], set()
    for entry in index.get("objects") or []:
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str) or not key or key in seen:
            problems.append(f"an index entry with a missing or repeated key: {key!r}")
            continue
        seen.add(key)
        path = os.path.join(src, OBJECTS, key_file(key))
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            problems.append(f"object {key!r}: its file {path} is missing")
            continue
        if not stat.S_ISREG(mode):
            problems.append(f"object {key!r}: {path} is not a regular file")
            continue
        sha256, md5, size = _digest_file(path)
        if size != entry.get("size") or sha256 != entry.get("sha256"):
            problems.append(
                f"object {key!r}: {path} has {size} bytes, sha256 {sha256}; the index says "
                f"{entry.get('size')} bytes, sha256 {entry.get('sha256')}"
            )
            continue
        entry["_path"], entry["_md5"] = path, md5
    if problems:
        raise BucketRestoreRefused(
            f"the export of bucket {bucket} at {src} is damaged: "
            + "; ".join(problems)
            + ". Nothing was written"
        )
    return index["objects"]


def _stat(conn, bucket, key):
    try:
        return conn.s3.stat_object(bucket_name=bucket, object_name=key)
    except S3Error as exc:
        if getattr(exc, "code", None) in NOT_FOUND:
            return None
        return conn.call(f"read object {bucket}/{key}", _raise, exc)


def _raise(exc):
    raise exc


def _remote_sha256(conn, bucket, key):
    response = _get(conn, bucket, key)
    try:
        sha = hashlib.sha256()
        for chunk in _stream(conn, response, f"read object {bucket}/{key}"):
            sha.update(chunk)
        return sha.hexdigest()
    finally:
        response.close()
        response.release_conn()


def same_content(conn, bucket, entry, have):
    """Whether the object MinIO holds (``have``, a stat) has the bytes of the export's ``entry``."""
    if have.size != entry["size"]:
        return False
    etag = _etag(have.etag)
    if _single_part(etag):
        return etag == entry["_md5"]
    return _remote_sha256(conn, bucket, entry["key"]) == entry["sha256"]


def restore_bucket(conn, bucket, src, *, overwrite=False, check_mode=False):
    """Put the export at ``src`` back into ``bucket``: missing objects are written, objects with the
    same bytes left alone, objects with other bytes refused (all of them named, nothing written)
    unless ``overwrite``. Afterwards every written object is read back and compared."""
    entries = load_export(src, bucket)
    conn.verify_login()
    if not conn.call(f"check bucket {bucket}", conn.s3.bucket_exists, bucket_name=bucket):
        raise BucketRestoreRefused(
            f"bucket {bucket} does not exist in MinIO at {conn.endpoint}: converge MinIO first "
            "(site.yml, with the bucket in minio_buckets), then restore. Nothing was written"
        )
    missing, differing, unchanged = [], [], []
    for entry in entries:
        have = _stat(conn, bucket, entry["key"])
        if have is None:
            missing.append(entry)
        elif same_content(conn, bucket, entry, have):
            unchanged.append(entry)
        else:
            differing.append(entry)
    if differing and not overwrite:
        keys = [e["key"] for e in differing]
        raise BucketRestoreRefused(
            f"bucket {bucket} holds {len(keys)} object(s) whose content differs from the backup's: "
            f"{', '.join(repr(k) for k in keys[:10])}{' ...' if len(keys) > 10 else ''}. Nothing was "
            "written. To replace them with the backup's, rerun with restore_minio_overwrite=true "
            "(in a versioned bucket the current content stays as an older version); or empty the "
            "bucket first"
        )
    writes = missing + differing
    result = {
        "bucket": bucket,
        "changed": bool(writes),
        "written": [e["key"] for e in missing],
        "replaced": [e["key"] for e in differing],
        "unchanged": len(unchanged),
    }
    if check_mode or not writes:
        return result
    for entry in writes:
        _put(conn, bucket, entry)
    for entry in writes:
        have = _stat(conn, bucket, entry["key"])
        if have is None or not same_content(conn, bucket, entry, have):
            size, etag = getattr(have, "size", None), _etag(getattr(have, "etag", ""))
            raise ApiError(
                f"object {bucket}/{entry['key']} does not read back as restored (size {size}, ETag "
                f"{etag}): check MinIO's journal"
            )
    return result


def _put(conn, bucket, entry):
    with open(entry["_path"], "rb") as data:
        conn.call(
            f"write object {bucket}/{entry['key']}",
            conn.s3.put_object,
            bucket_name=bucket,
            object_name=entry["key"],
            data=data,
            length=entry["size"],
            content_type=entry.get("content_type") or "application/octet-stream",
            metadata={META_PREFIX + name: value for name, value in (entry.get("metadata") or {}).items()},
        )
