"""The bucket export format (island_minio_backup): key-to-file encoding and the checks a restore
makes on an export before it writes anything."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_minio_backup import (
    BucketRestoreRefused,
    key_file,
    load_export,
)


def test_no_key_names_a_path_outside_the_export_or_another_keys_file():
    keys = ["../x", "a/", "a", "A", "/etc/passwd", "k" * 1024, "ü", ""]
    files = [key_file(k) for k in keys]
    assert len(set(files)) == len(keys)
    assert all(len(f) == 64 and set(f) <= set("0123456789abcdef") for f in files)


def _export(tmp_path, objects, bucket="artifacts"):
    part = tmp_path / f"minio-{bucket}"
    (part / "objects").mkdir(parents=True)
    entries = []
    for key, data in objects.items():
        (part / "objects" / key_file(key)).write_bytes(data)
        entries.append(
            {
                "key": key,
                "file": key_file(key),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "etag": hashlib.md5(data).hexdigest(),  # noqa: S324 - S3's ETag
                "content_type": "text/plain",
                "metadata": {},
            }
        )
    index = {"format": "island-minio-bucket", "format_version": 1, "bucket": bucket, "objects": entries}
    (part / "index.json").write_text(json.dumps(index))
    return part


def test_an_intact_export_loads_with_each_objects_file_checked(tmp_path):
    part = _export(tmp_path, {"a": b"alpha", "a/": b""})
    entries = load_export(str(part), "artifacts")
    assert [e["key"] for e in entries] == ["a", "a/"]
    assert entries[0]["_md5"] == hashlib.md5(b"alpha").hexdigest()  # noqa: S324 - S3's ETag


def test_a_damaged_export_is_refused_naming_every_problem(tmp_path):
    part = _export(tmp_path, {"changed": b"one", "missing": b"two", "linked": b"three"})
    (part / "objects" / key_file("changed")).write_bytes(b"ONE")
    os.unlink(part / "objects" / key_file("missing"))
    target = part / "objects" / key_file("linked")
    target.unlink()
    target.symlink_to("/etc/hostname")
    with pytest.raises(BucketRestoreRefused) as refused:
        load_export(str(part), "artifacts")
    message = str(refused.value)
    assert "object 'changed'" in message and "sha256" in message
    assert "object 'missing': its file" in message and "is missing" in message
    assert "object 'linked'" in message and "not a regular file" in message
    assert "Nothing was written" in message


def test_the_export_of_another_bucket_or_another_format_is_refused(tmp_path):
    part = _export(tmp_path, {"a": b"x"})
    with pytest.raises(BucketRestoreRefused, match="export of bucket 'artifacts', not of 'other'"):
        load_export(str(part), "other")
    (part / "index.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(BucketRestoreRefused, match="not an island-minio-bucket index"):
        load_export(str(part), "artifacts")
    (part / "index.json").write_text("{not json")
    with pytest.raises(BucketRestoreRefused, match="cannot be read as a bucket export"):
        load_export(str(part), "artifacts")
