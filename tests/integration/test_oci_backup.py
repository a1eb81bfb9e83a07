"""The images pushed inside the island, backed up from the real registry (Debian's distribution 2.8.2)
into an OCI layout and restored into a rebuilt one (island_oci_backup): the lock's images left out, a
moved tag kept, the layout valid per the OCI image-layout spec and read by skopeo, and the refusals."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_oci import (
    OCILayout,
    RegistryUnreachableError,
    seed,
)
from ansible_collections.island.installer.plugins.module_utils.island_oci_backup import (
    LOCK_DIGEST_ANNOTATION,
    ImagesRefusedError,
    backup_images,
    restore_images,
)

from tests.support.net import free_port
from tests.support.oci import ImageFactory, Registry, make_layer, needs_registry, run

pytestmark = [needs_registry, pytest.mark.slow]

HOST = "registry.island.test"
MANIFEST_SUFFIXES = ("manifest.v1+json", "manifest.v2+json", "list.v2+json", "index.v1+json")


def lock_of(layout):
    """The images section of a lock, as the bundle's island-bundle.yml lists them."""
    return [{"reference": str(ref), "digest": desc["digest"]} for ref, desc in layout.images()]


def push_island_images(tmp_path, registry):
    """What operators push inside the island: a new image, a two-platform index, and the lock's
    quay.io/org/tool:1 moved to another digest. Returns {registry repo:tag: digest}."""
    pushed = OCILayout(str(tmp_path / "pushed"))
    factory = ImageFactory(pushed)
    app = factory.image(f"{HOST}/team/app:1.0", [make_layer({"srv/app": b"app 1.0"})], label="app")
    multi = factory.index(
        f"{HOST}/team/multi:2",
        ["linux/amd64", "linux/arm64"],
        {
            "linux/amd64": [make_layer({"bin/x": b"x amd64"})],
            "linux/arm64": [make_layer({"bin/x": b"x arm64"})],
        },
    )
    tool = factory.image("quay.io/org/tool:1", [make_layer({"bin/t": b"tool built here"})], label="t2")
    seed(registry.client(), pushed)
    return {"team/app:1.0": app["digest"], "team/multi:2": multi["digest"], "org/tool:1": tool["digest"]}


def served(registry, repo_tag):
    repo, tag = repo_tag.rsplit(":", 1)
    found = registry.client().head_manifest(repo, tag)
    return found[0] if found else None


def check_layout_is_valid(path: Path):
    """The OCI image-layout spec (image-spec v1.1 image-layout.md): oci-layout, index.json, every
    blob under blobs/sha256 named by its content's sha256, every descriptor's blob present with its
    size, and every entry named with org.opencontainers.image.ref.name."""
    assert json.loads((path / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((path / "index.json").read_text())
    assert index["schemaVersion"] == 2
    for blob in (path / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name

    def walk(desc):
        blob = path / "blobs" / "sha256" / desc["digest"].split(":")[1]
        assert blob.is_file() and blob.stat().st_size == desc["size"], desc
        if desc["mediaType"].endswith(
            ("manifest.v1+json", "manifest.v2+json", "list.v2+json", "index.v1+json")
        ):
            doc = json.loads(blob.read_bytes())
            config = [doc["config"]] if "config" in doc else []
            for child in doc.get("manifests", []) + config + doc.get("layers", []):
                walk(child)

    for entry in index["manifests"]:
        assert entry["annotations"]["org.opencontainers.image.ref.name"].startswith(HOST + "/")
        walk(entry)
    return index


def test_pushed_images_are_backed_up_restored_into_a_rebuilt_registry_and_keep_their_digests(
    tmp_path, registry, layout
):
    seed(registry.client(), layout)
    lock = lock_of(layout)
    pushed = push_island_images(tmp_path, registry)

    part = OCILayout(str(tmp_path / "oci-images"))
    mark = registry.log_mark()
    result = backup_images(
        [(registry.address, registry.client())], part, lock, reference_host=HOST, page_size=2
    )
    # the catalog was read page by page (distribution's Link header), and nothing was written
    catalog = [p for m, p, s in registry.requests(mark) if p.startswith("/v2/_catalog")]
    assert len(catalog) >= 3 and any("last=" in p for p in catalog)
    assert registry.writes(mark) == []
    copied = {f"{r['repository']}:{r['tag']}": r["digest"] for r in result["images"]}
    assert copied == pushed
    # the lock's images stay out (the bundle brings them back); the moved tag is in, marked
    assert sorted(r["image"] for r in result["left_out"]) == [
        f"{HOST}/library/alpine:3.20",
        f"{HOST}/library/busybox:1.36",
        f"{HOST}/library/multi:1",
    ]
    entries = {str(ref): entry for ref, entry in part.images()}
    lock_tool = dict((i["reference"], i["digest"]) for i in lock)["quay.io/org/tool:1"]
    assert entries[f"{HOST}/org/tool:1"]["annotations"][LOCK_DIGEST_ANNOTATION] == lock_tool
    assert LOCK_DIGEST_ANNOTATION not in entries[f"{HOST}/team/app:1.0"]["annotations"]

    index = check_layout_is_valid(Path(part.path))
    assert len(index["manifests"]) == 3
    # skopeo, an independent reader, finds each image under its name with the registry's digest
    for repo_tag, digest in pushed.items():
        proc = run(["skopeo", "inspect", "--raw", f"oci:{part.path}:{HOST}/{repo_tag}"])
        assert proc.returncode == 0, proc.stderr
        assert "sha256:" + hashlib.sha256(proc.stdout.encode()).hexdigest() == digest
    proc = run(["skopeo", "inspect", f"oci:{part.path}:{HOST}/team/app:1.0"])
    assert proc.returncode == 0 and json.loads(proc.stdout)["Digest"] == pushed["team/app:1.0"], proc.stderr
    multi = json.loads(Path(part.blob_path(pushed["team/multi:2"])).read_bytes())
    assert sorted(m["platform"]["architecture"] for m in multi["manifests"]) == ["amd64", "arm64"]

    # the registry's storage is lost; it is rebuilt and seeded from the bundle again
    registry.stop()
    shutil.rmtree(registry.storage)
    registry.start()
    seed(registry.client(), layout)
    assert served(registry, "team/app:1.0") is None
    assert served(registry, "org/tool:1") == lock_tool

    plan = restore_images(registry.client(), part, check_mode=True)
    assert plan["changed"] and served(registry, "team/app:1.0") is None
    assert plan["diff"]["before"][f"{registry.address}/org/tool:1"] == lock_tool

    restored = restore_images(registry.client(), part)
    assert restored["changed"]
    for repo_tag, digest in pushed.items():
        assert served(registry, repo_tag) == digest, repo_tag
    # skopeo copies the restored index out with every platform
    out = tmp_path / "copied"
    proc = registry.copy_out("team/multi:2", f"{out}:multi", "--all")
    assert proc.returncode == 0, proc.stderr

    # again: every image is there with its digest, nothing is pushed
    mark = registry.log_mark()
    again = restore_images(registry.client(), part)
    assert not again["changed"]
    assert registry.writes(mark) == []


def test_a_tag_pushed_again_after_the_backup_is_refused_before_anything_is_pushed(tmp_path, registry, layout):
    seed(registry.client(), layout)
    pushed = push_island_images(tmp_path, registry)
    part = OCILayout(str(tmp_path / "oci-images"))
    backup_images([(registry.address, registry.client())], part, lock_of(layout), reference_host=HOST)

    registry.stop()
    shutil.rmtree(registry.storage)
    registry.start()
    newer = OCILayout(str(tmp_path / "newer"))
    ImageFactory(newer).image(f"{HOST}/team/app:1.0", [make_layer({"srv/app": b"app 1.0, rebuilt"})])
    seed(registry.client(), newer)
    newer_digest = served(registry, "team/app:1.0")

    mark = registry.log_mark()
    with pytest.raises(ImagesRefusedError) as refused:
        restore_images(registry.client(), part)
    message = str(refused.value)
    assert f"{registry.address}/team/app:1.0 is {newer_digest}" in message
    assert pushed["team/app:1.0"] in message and "restore_parts" in message
    assert registry.writes(mark) == []
    assert served(registry, "team/app:1.0") == newer_digest
    assert served(registry, "team/multi:2") is None


def test_listing_follows_pages_and_two_registries_that_disagree_are_refused(tmp_path, registry, layout, pki):
    seed(registry.client(), layout)
    client = registry.client()
    repos = client.list_repositories(page_size=1)
    assert repos == ["library/alpine", "library/busybox", "library/multi", "org/tool"]
    assert client.list_tags("library/alpine", page_size=1) == ["3.20"]
    assert client.list_tags("no/such") == []

    other = Registry(tmp_path / "other", pki).start()
    try:
        seed(other.client(), layout)
        push_island_images(tmp_path / "a", registry)
        moved = OCILayout(str(tmp_path / "b"))
        ImageFactory(moved).image(f"{HOST}/team/app:1.0", [make_layer({"srv/app": b"other host"})])
        seed(other.client(), moved)
        part = OCILayout(str(tmp_path / "oci-images"))
        with pytest.raises(ImagesRefusedError) as refused:
            backup_images(
                [(registry.address, registry.client()), (other.address, other.client())],
                part,
                lock_of(layout),
                reference_host=HOST,
            )
        assert "team/app:1.0 is sha256:" in str(refused.value)
        assert registry.address in str(refused.value) and other.address in str(refused.value)
        assert not Path(part.path).exists()
    finally:
        other.stop()


def test_a_registry_that_does_not_answer_is_named(tmp_path, pki):
    silent = Registry(tmp_path / "silent", pki, port=free_port())
    with pytest.raises(RegistryUnreachableError) as failed:
        backup_images(
            [(silent.address, silent.client())], OCILayout(str(tmp_path / "part")), [], reference_host=HOST
        )
    assert f"registry {silent.address} did not answer" in str(failed.value)
