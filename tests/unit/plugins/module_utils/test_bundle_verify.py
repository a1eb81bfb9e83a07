"""The verification engine refuses every way a bundle can differ from its signed lock."""

from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc

import pytest
from ansible_collections.island.installer.plugins.module_utils import island_bundle, island_sshsig
from ansible_collections.island.installer.plugins.module_utils.island_bundle import (
    BUFFER_SIZE,
    BundleError,
    ContentError,
    LockError,
    SignatureError,
    hash_file,
    hash_files,
    verify_bundle,
)

from tests.support.bundle import make_key, make_signed_bundle, rewrite_lock, write_allowed_signers


def _problem(error: ContentError, path: str) -> dict:
    found = [p for p in error.details()["problems"] if p["path"] == path]
    assert len(found) == 1, error.details()
    return found[0]


def test_a_good_bundle_verifies_and_returns_the_parsed_lock(tmp_path):
    bundle = make_signed_bundle(tmp_path)

    result = verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    assert result.lock == bundle.lock
    assert result.files_verified == len(bundle.lock["files"]) == 11
    assert result.bytes_verified == sum(f["size"] for f in bundle.lock["files"])
    assert result.signature is not None
    assert result.signature.principals == "release@island.example"
    assert result.signature.namespace == "island-bundle"


def test_a_corrupt_byte_in_a_binary_is_refused_with_expected_and_actual_digest(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    k3s = bundle.root / "bin/k3s"
    data = bytearray(k3s.read_bytes())
    data[100] ^= 0x01
    k3s.write_bytes(data)

    with pytest.raises(ContentError) as caught:
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    problem = _problem(caught.value, "bin/k3s")
    expected = next(f["sha256"] for f in bundle.lock["files"] if f["path"] == "bin/k3s")
    assert problem["problem"] == "sha256"
    assert problem["expected_sha256"] == expected
    assert problem["actual_sha256"] == hashlib.sha256(data).hexdigest()
    assert f"expected sha256 {expected}" in str(caught.value)
    assert hashlib.sha256(data).hexdigest() in str(caught.value)


def test_a_truncated_blob_is_refused_with_expected_and_actual_size(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    layer = max(
        (f for f in bundle.lock["files"] if f["path"].startswith("oci/blobs/")), key=lambda f: f["size"]
    )
    path = bundle.root / layer["path"]
    os.truncate(path, layer["size"] - 7)

    with pytest.raises(ContentError) as caught:
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    problem = _problem(caught.value, layer["path"])
    assert problem["problem"] == "size"
    assert problem["expected_size"] == layer["size"]
    assert problem["actual_size"] == layer["size"] - 7
    assert f"{layer['path']}: truncated: expected {layer['size']} bytes, found {layer['size'] - 7}" in str(
        caught.value
    )


def test_a_missing_file_is_refused_by_name(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    (bundle.root / "git/app.bundle").unlink()

    with pytest.raises(ContentError) as caught:
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    assert _problem(caught.value, "git/app.bundle")["problem"] == "missing"
    assert "git/app.bundle: missing" in str(caught.value)


def test_an_extra_unlisted_file_is_refused(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    (bundle.root / "bin/kubectl").write_bytes(b"smuggled")

    with pytest.raises(ContentError) as caught:
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    problem = _problem(caught.value, "bin/kubectl")
    assert problem["problem"] == "extra"
    assert problem["actual_size"] == 8
    assert "bin/kubectl: not listed in the lock" in str(caught.value)


def test_a_symlink_in_the_bundle_is_refused_even_when_it_points_to_identical_content(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    outside = tmp_path / "outside"
    outside.write_bytes((bundle.root / "bin/coredns").read_bytes())
    (bundle.root / "bin/coredns").unlink()
    (bundle.root / "bin/coredns").symlink_to(outside)

    with pytest.raises(ContentError) as caught:
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    problem = _problem(caught.value, "bin/coredns")
    assert problem["problem"] == "not_regular"
    assert "symbolic link" in problem["message"]


def test_every_problem_is_reported_at_once_not_only_the_first(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    (bundle.root / "bin/k3s").write_bytes(b"x" * (bundle.root / "bin/k3s").stat().st_size)
    (bundle.root / "k3s/install.sh").unlink()
    (bundle.root / "files/extra.txt").write_text("extra")
    os.truncate(bundle.root / "bin/coredns", 1)

    with pytest.raises(ContentError) as caught:
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    kinds = {p["path"]: p["problem"] for p in caught.value.details()["problems"]}
    assert kinds == {
        "bin/k3s": "sha256",
        "k3s/install.sh": "missing",
        "files/extra.txt": "extra",
        "bin/coredns": "size",
    }
    assert "(4 problems)" in str(caught.value)


def _bundle_with_a_lock_edited_after_signing(tmp_path):
    """A consistent edit: the new binary and the lock agree, only the signature can tell."""
    bundle = make_signed_bundle(tmp_path)
    evil = b"evil k3s"
    (bundle.root / "bin/k3s").write_bytes(evil)

    def swap(lock):
        entry = next(f for f in lock["files"] if f["path"] == "bin/k3s")
        entry["sha256"] = hashlib.sha256(evil).hexdigest()
        entry["size"] = len(evil)

    rewrite_lock(bundle.root, swap)
    return bundle


def test_the_lock_file_edited_after_signing_is_refused_before_any_file_is_read(tmp_path, monkeypatch):
    bundle = _bundle_with_a_lock_edited_after_signing(tmp_path)
    monkeypatch.setattr(island_bundle, "hash_files", _must_not_hash)

    with pytest.raises(SignatureError, match="does not match the signed data"):
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)


def _must_not_hash(*args, **kwargs):
    raise AssertionError("files were hashed although the signature is bad")


def test_the_edited_lock_passes_only_when_the_signature_check_is_skipped(tmp_path):
    bundle = _bundle_with_a_lock_edited_after_signing(tmp_path)

    result = verify_bundle(bundle.root, skip_signature=True)

    assert result.signature is None
    assert result.files_verified == 11


def test_a_signature_by_a_key_not_in_the_allowed_signers_is_refused(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    stranger = make_key(tmp_path / "keys", "stranger")
    island_bundle.sign(bundle.root, stranger.private_path)

    with pytest.raises(SignatureError) as caught:
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    assert "not in" in str(caught.value)
    assert str(bundle.allowed_signers) in str(caught.value)


def test_a_trusted_key_restricted_to_another_namespace_is_refused(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    write_allowed_signers(bundle.allowed_signers, ("release@island.example", bundle.key, 'namespaces="git"'))

    with pytest.raises(SignatureError, match="does not allow namespace 'island-bundle'"):
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)


def test_a_bundle_without_signature_file_is_refused_and_the_message_says_what_to_do(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    bundle.signature_path.unlink()

    with pytest.raises(SignatureError) as caught:
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    assert f"no signature file {bundle.signature_path}" in str(caught.value)
    assert "signed in the transfer zone" in str(caught.value)


def test_a_lock_of_an_unknown_schema_version_is_refused_naming_the_versions_this_installer_reads(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    rewrite_lock(bundle.root, lambda lock: lock.update(schema_version=2))
    # Properly signed (a newer builder would), yet this installer cannot read it.
    key = island_sshsig.load_signing_key(bundle.key.private_path)
    bundle.signature_path.write_bytes(
        island_sshsig.sign_bytes(bundle.lock_path.read_bytes(), key, "island-bundle")
    )

    with pytest.raises(LockError) as caught:
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    assert "schema_version: 2 is not supported" in str(caught.value)
    assert "reads schema version 1" in str(caught.value)


def test_allowed_signers_inside_the_bundle_are_refused(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    inside = bundle.root / "files/allowed_signers"
    inside.write_bytes(bundle.allowed_signers.read_bytes())

    with pytest.raises(SignatureError, match="lies inside the bundle"):
        verify_bundle(bundle.root, allowed_signers=inside)


def test_a_missing_bundle_directory_is_named(tmp_path):
    with pytest.raises(BundleError, match=f"bundle directory {tmp_path / 'nope'} does not exist"):
        verify_bundle(tmp_path / "nope", skip_signature=True)


def test_a_missing_lock_file_is_named(tmp_path):
    (tmp_path / "bin").mkdir()
    with pytest.raises(BundleError, match=f"no lock file {tmp_path / 'island-bundle.yml'}"):
        verify_bundle(tmp_path, skip_signature=True)


def test_verification_changes_nothing_in_the_bundle(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in bundle.root.rglob("*") if p.is_file()}

    verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in bundle.root.rglob("*") if p.is_file()}
    assert after == before


def test_hashing_a_file_much_larger_than_the_buffer_keeps_memory_flat(tmp_path):
    big = tmp_path / "big"
    chunk = os.urandom(1024 * 1024)
    with big.open("wb") as handle:
        for _ in range(48):
            handle.write(chunk)
    tracemalloc.start()
    try:
        size, digest = hash_file(big)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert size == 48 * 1024 * 1024
    assert digest == hashlib.sha256(chunk * 48).hexdigest()
    assert peak < BUFFER_SIZE + 256 * 1024, f"peak {peak} bytes for a 48 MiB file"


def test_files_are_hashed_largest_first_on_several_threads(tmp_path, monkeypatch):
    sizes = {"small": 10, "huge": 5000, "medium": 700, "tiny": 1}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"a" * size)
    order: list[str] = []
    threads: set[str] = set()
    real = island_bundle.hash_file
    barrier = threading.Barrier(2, timeout=10)

    def recording(path, buffer=None):
        order.append(path.name)
        threads.add(threading.current_thread().name)
        if len(order) <= 2:
            barrier.wait()  # the first two files are in progress at the same time
        return real(path, buffer)

    monkeypatch.setattr(island_bundle, "hash_file", recording)

    results = hash_files(sizes, tmp_path, workers=2)

    assert order[:2] == ["huge", "medium"]
    assert sorted(order) == sorted(sizes)
    assert len(threads) == 2
    assert results["huge"] == (5000, hashlib.sha256(b"a" * 5000).hexdigest())


def test_the_result_is_the_same_with_one_worker_or_many(tmp_path):
    bundle = make_signed_bundle(tmp_path)

    one = verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers, workers=1)
    many = verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers, workers=8)

    assert (one.files_verified, one.bytes_verified) == (many.files_verified, many.bytes_verified)


def test_a_bundle_with_many_bad_files_lists_all_in_the_result_and_the_first_twenty_in_the_message(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    for index in range(25):
        (bundle.root / f"files/junk-{index:02}").write_bytes(b"junk")

    with pytest.raises(ContentError) as caught:
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    assert len(caught.value.details()["problems"]) == 25
    assert "(25 problems)" in str(caught.value)
    assert "files/junk-19" in str(caught.value)
    assert "files/junk-20" not in str(caught.value)
    assert "and 5 more (see problems)" in str(caught.value)


def test_hashing_refuses_a_fifo_instead_of_blocking_on_it(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    with pytest.raises(OSError, match="not a regular file"):
        hash_file(fifo)


def test_a_fifo_in_the_bundle_is_refused_as_a_special_file(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    os.mkfifo(bundle.root / "files/pipe")

    with pytest.raises(ContentError) as caught:
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    problem = _problem(caught.value, "files/pipe")
    assert problem["problem"] == "extra"
    assert "special file" in problem["message"]
