"""The lock file: a stable writer, and a loader whose messages name the field at fault."""

from __future__ import annotations

import copy
import datetime as dt
import re

import pytest
import yaml
from ansible_collections.island.installer.plugins.module_utils.island_bundle import sign, write_lock
from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import (
    LOCK_NAME,
    SCHEMA_VERSION,
    SIGNATURE_NAME,
    LockError,
    dump_lock,
    load_lock,
    validate_lock,
)

from tests.support import ROOT
from tests.support.bundle import CREATED, default_content, make_bundle, make_key, write_files

DOC = ROOT / "docs" / "bundle-format.md"


def test_the_writer_lists_every_file_but_the_lock_and_its_signature(tmp_path):
    files, _ = default_content()
    lock = make_bundle(tmp_path)

    assert [f["path"] for f in lock["files"]] == sorted(files)
    assert all(f["size"] == len(files[f["path"]]) for f in lock["files"])
    assert LOCK_NAME not in {f["path"] for f in lock["files"]}
    assert load_lock((tmp_path / LOCK_NAME).read_bytes()) == lock


def test_the_written_lock_is_byte_for_byte_stable_whatever_the_input_order(tmp_path):
    files, sections = default_content()
    write_files(tmp_path, files)
    first = write_lock(tmp_path, name="island", version="1", created=CREATED, **sections)
    first_bytes = (tmp_path / LOCK_NAME).read_bytes()
    shuffled = copy.deepcopy(sections)
    shuffled["components"] = dict(reversed(list(shuffled["components"].items())))
    shuffled["components"]["k3s"]["files"].reverse()

    second = write_lock(tmp_path, name="island", version="1", created=CREATED, **shuffled)

    assert (tmp_path / LOCK_NAME).read_bytes() == first_bytes
    assert second == first
    text = first_bytes.decode()
    assert text.index("coredns:") < text.index("k3s:")
    assert text.startswith("# Island bundle lock, schema version 1")


def test_a_rewritten_lock_drops_the_signature_of_the_previous_lock(tmp_path):
    make_bundle(tmp_path)
    key = make_key(tmp_path / "keys")  # outside the bundle: keys/ would be an extra file
    sign(tmp_path, key.private_path)
    assert (tmp_path / SIGNATURE_NAME).exists()
    (tmp_path / "keys" / "signer").unlink()
    (tmp_path / "keys" / "signer.pub").unlink()
    (tmp_path / "keys").rmdir()

    make_bundle(tmp_path)

    assert not (tmp_path / SIGNATURE_NAME).exists()


def test_created_is_written_as_rfc3339_utc_from_an_aware_datetime(tmp_path):
    files, _ = default_content()
    write_files(tmp_path, files)
    moment = dt.datetime(2026, 11, 21, 13, 30, 5, 123, tzinfo=dt.timezone(dt.timedelta(hours=1)))

    lock = write_lock(tmp_path, name="island", version="1", created=moment)

    assert lock["bundle"]["created"] == "2026-11-21T12:30:05Z"


def test_a_hand_written_unquoted_timestamp_and_version_stay_strings():
    text = b"""schema_version: 1
bundle: {name: island, version: 2026.11.0, created: 2026-11-21T12:00:00Z}
files: []
"""
    lock = load_lock(text)

    assert lock["bundle"]["created"] == "2026-11-21T12:00:00Z"
    assert lock["bundle"]["version"] == "2026.11.0"
    assert lock["components"] == {} and lock["images"] == [] and lock["git"] == []


def test_the_writer_refuses_a_bundle_holding_a_symlink(tmp_path):
    make_bundle(tmp_path)
    (tmp_path / "bin/link").symlink_to("/etc/passwd")

    with pytest.raises(LockError, match="bin/link is a symbolic link"):
        make_bundle(tmp_path)


def _good_lock(tmp_path):
    return make_bundle(tmp_path)


def _file(lock, prefix):
    return next(f for f in lock["files"] if f["path"].startswith(prefix))


BAD_LOCKS = [
    ("absolute path", lambda lock: _file(lock, "bin/k3s").update(path="/bin/k3s"), "must be relative"),
    ("dot-dot path", lambda lock: _file(lock, "bin/k3s").update(path="bin/../../etc/passwd"), "'..'"),
    ("empty component", lambda lock: _file(lock, "bin/k3s").update(path="bin//k3s"), "normalised"),
    (
        "outside layout",
        lambda lock: _file(lock, "bin/k3s").update(path="tools/k3s"),
        "outside the bundle layout",
    ),
    ("duplicate path", lambda lock: lock["files"].append(dict(_file(lock, "bin/k3s"))), "is listed twice"),
    ("lock listed", lambda lock: _file(lock, "bin/k3s").update(path=LOCK_NAME), "must not be listed"),
    (
        "short sha256",
        lambda lock: _file(lock, "bin/k3s").update(sha256="abc"),
        ".sha256: must be 64 lowercase hex",
    ),
    ("upper sha256", lambda lock: _file(lock, "bin/k3s").update(sha256="A" * 64), "64 lowercase hex"),
    ("negative size", lambda lock: _file(lock, "bin/k3s").update(size=-1), ".size: must be an integer >= 0"),
    ("string size", lambda lock: _file(lock, "bin/k3s").update(size="12"), ".size: must be an integer >= 0"),
    ("bool size", lambda lock: _file(lock, "bin/k3s").update(size=True), ".size: must be an integer >= 0"),
    (
        "missing sha256",
        lambda lock: _file(lock, "bin/k3s").pop("sha256"),
        "files[1] (bin/k3s).sha256: is required",
    ),
    (
        "unknown field",
        lambda lock: _file(lock, "bin/k3s").update(mode=493),
        ".mode: is not a field of schema version 1",
    ),
    ("unknown top", lambda lock: lock.update(extras=[]), "extras: is not a field of schema version 1"),
    ("no bundle", lambda lock: lock.pop("bundle"), "bundle: is required"),
    (
        "bad created",
        lambda lock: lock["bundle"].update(created="21/11/2026"),
        "bundle.created: '21/11/2026' must be RFC 3339",
    ),
    (
        "local created",
        lambda lock: lock["bundle"].update(created="2026-11-21T12:00:00+01:00"),
        "must be RFC 3339 UTC",
    ),
    (
        "impossible date",
        lambda lock: lock["bundle"].update(created="2026-02-30T12:00:00Z"),
        "not a real date",
    ),
    ("empty name", lambda lock: lock["bundle"].update(name=""), "bundle.name: must be a non-empty string"),
    (
        "component file unlisted",
        lambda lock: lock["components"]["k3s"]["files"].append("bin/k3s-old"),
        "components.k3s.files[2]: 'bin/k3s-old' is not listed in files",
    ),
    (
        "component without version",
        lambda lock: lock["components"]["k3s"].pop("version"),
        "components.k3s.version: is required",
    ),
    (
        "component bad name",
        lambda lock: lock["components"].update({"K3S!": copy.deepcopy(lock["components"]["k3s"])}),
        "components.K3S!",
    ),
    (
        "git file unlisted",
        lambda lock: lock["git"][0].update(file="git/other.bundle"),
        "git[0] (app).file: 'git/other.bundle' is not listed in files",
    ),
    (
        "git file outside git/",
        lambda lock: lock["git"][0].update(file="bin/k3s"),
        "must be a git bundle under git/",
    ),
    (
        "git bad commit",
        lambda lock: lock["git"][0]["refs"].update({"refs/heads/main": "HEAD~1"}),
        "40 or 64 lowercase hex",
    ),
    (
        "git bad refname",
        lambda lock: lock["git"][0]["refs"].update({"main": "a" * 40}),
        "must be HEAD or a full refname",
    ),
    (
        "git no refs",
        lambda lock: lock["git"][0].update(refs={}),
        "git[0] (app).refs: must be a non-empty mapping",
    ),
    (
        "image digest format",
        lambda lock: lock["images"][0].update(digest="sha256:abc"),
        ".digest: must be sha256:<64 lowercase hex>",
    ),
    (
        "image manifest not listed",
        lambda lock: lock["images"][0].update(digest="sha256:" + "0" * 64),
        f"'oci/blobs/sha256/{'0' * 64}' is not listed in files",
    ),
    (
        "image reference with scheme",
        lambda lock: lock["images"][0].update(reference="https://x/y:1"),
        "must be a normalised image reference",
    ),
    (
        "image platform",
        lambda lock: lock["images"][0].update(platforms=["amd64"]),
        "platforms[0]: must be os/arch",
    ),
    (
        "image missing media_type",
        lambda lock: lock["images"][0].pop("media_type"),
        ".media_type: is required",
    ),
    (
        "duplicate image",
        lambda lock: lock["images"].append(copy.deepcopy(lock["images"][0])),
        "'docker.io/library/alpine:3.20' is listed twice",
    ),
    (
        "no oci layout",
        lambda lock: lock["files"].remove(_file(lock, "oci/oci-layout")),
        "'oci/oci-layout' is not listed",
    ),
    (
        "blob named after another digest",
        lambda lock: _file(lock, "oci/blobs/").update(sha256="f" * 64),
        "an OCI blob must be named after its own digest",
    ),
    ("files not a list", lambda lock: lock.update(files={}), "files: must be a list, got a mapping"),
    (
        "schema version as text",
        lambda lock: lock.update(schema_version="1"),
        "schema_version: must be an integer",
    ),
    (
        "no schema version",
        lambda lock: lock.pop("schema_version"),
        "schema_version: is required (this installer reads",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"), [case[1:] for case in BAD_LOCKS], ids=[c[0] for c in BAD_LOCKS]
)
def test_a_lock_breaking_the_schema_is_refused_naming_the_field_at_fault(tmp_path, change, message):
    lock = copy.deepcopy(_good_lock(tmp_path))
    change(lock)
    text = yaml.safe_dump(lock).encode()

    with pytest.raises(LockError) as caught:
        load_lock(text, "island-bundle.yml")

    assert message in str(caught.value)
    assert str(caught.value).startswith("island-bundle.yml")


def test_every_schema_problem_is_reported_at_once(tmp_path):
    lock = copy.deepcopy(_good_lock(tmp_path))
    _file(lock, "bin/k3s").update(size=-5)
    _file(lock, "files/minio").update(path="/abs")
    lock["bundle"]["created"] = "yesterday"

    with pytest.raises(LockError) as caught:
        validate_lock(lock)

    assert len(caught.value.problems) == 3, caught.value.problems
    assert "has 3 problems" in str(caught.value)
    assert caught.value.details() == {"lock_problems": caught.value.problems}


def test_duplicate_yaml_keys_are_refused_not_silently_merged():
    text = b"""schema_version: 1
bundle: {name: island, version: '1', created: '2026-11-21T12:00:00Z'}
files: []
files: []
"""
    with pytest.raises(LockError, match="duplicate key 'files'"):
        load_lock(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"schema_version: [1\n", "is not valid YAML"),
        (b"- 1\n- 2\n", "must be a YAML mapping, got a list"),
        (b"!!python/object/apply:os.system ['true']\n", "is not valid YAML"),
    ],
)
def test_a_lock_that_is_not_a_yaml_mapping_is_refused(text, message):
    with pytest.raises(LockError, match=re.escape(message)):
        load_lock(text)


def test_the_writer_refuses_to_write_a_lock_that_would_not_load(tmp_path):
    files, sections = default_content()
    write_files(tmp_path, files)
    sections["components"]["k3s"]["files"].append("bin/k3s-missing")

    with pytest.raises(
        LockError, match=re.escape("components.k3s.files[2]: 'bin/k3s-missing' is not listed")
    ):
        write_lock(tmp_path, name="island", version="1", **sections)
    assert not (tmp_path / LOCK_NAME).exists()


def test_dumped_lock_loads_back_to_the_same_data(tmp_path):
    lock = _good_lock(tmp_path)

    assert load_lock(dump_lock(lock)) == lock


def test_the_format_document_describes_this_schema_version_and_every_field():
    text = DOC.read_text()

    assert f"schema_version: {SCHEMA_VERSION}" in text
    for field in ("schema_version", "bundle", "files", "components", "images", "git", "sha256", "size"):
        assert f"`{field}`" in text, field
    for field in ("reference", "digest", "media_type", "platforms", "refs", "created"):
        assert f"`{field}`" in text, field
