"""Seeding an island registry from an OCI layout, against the real distribution registry."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_oci import (
    OCILayout,
    RegistryUnreachableError,
    seed,
)

from tests.support.oci import ImageFactory, make_layer, needs_registry, sha256

pytestmark = [needs_registry, pytest.mark.slow]

SINGLE = ("docker.io/library/alpine:3.20", "docker.io/library/busybox:1.36", "quay.io/org/tool:1")


def _by_image(result):
    return {r["image"]: r for r in result.images}


def _layout_digests(layout):
    return {str(ref): desc["digest"] for ref, desc in layout.images()}


def test_seeded_images_read_back_by_skopeo_with_identical_digests(registry, layout, tmp_path):
    result = seed(registry.client(), layout)
    assert result.changed
    expected = _layout_digests(layout)
    repos = {
        "docker.io/library/alpine:3.20": "library/alpine:3.20",
        "docker.io/library/busybox:1.36": "library/busybox:1.36",
        "quay.io/org/tool:1": "org/tool:1",
        "docker.io/library/multi:1": "library/multi:1",
    }
    for ref, repo_ref in repos.items():
        raw = registry.skopeo_raw(repo_ref)
        assert sha256(raw) == expected[ref], ref
        # the registry serves the layout's exact bytes
        with open(layout.blob_path(expected[ref]), "rb") as f:
            assert raw == f.read()

    # skopeo copies the image out (verifying every blob) and records the same manifest digest
    out = tmp_path / "copy"
    proc = registry.copy_out("org/tool:1", f"{out}:copied")
    assert proc.returncode == 0, proc.stderr
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == expected["quay.io/org/tool:1"]


def test_multi_arch_index_round_trips_with_all_platforms(registry, layout, tmp_path):
    seed(registry.client(), layout)
    expected = _layout_digests(layout)["docker.io/library/multi:1"]
    out = tmp_path / "multi"
    proc = registry.copy_out("library/multi:1", f"{out}:multi", "--all")
    assert proc.returncode == 0, proc.stderr
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == expected
    copied = json.loads((out / "blobs" / "sha256" / expected.split(":")[1]).read_bytes())
    assert sorted(m["platform"]["architecture"] for m in copied["manifests"]) == ["amd64", "arm64"]
    for child in copied["manifests"]:
        assert (out / "blobs" / "sha256" / child["digest"].split(":")[1]).is_file()
    # the registry holds every child by digest
    writes = registry.writes()
    child_puts = [p for m, p, s in writes if m == "PUT" and "/manifests/sha256:" in p and s == 201]
    assert len(child_puts) == 2


def test_reseeding_an_unchanged_image_pushes_nothing(registry, layout):
    client = registry.client()
    seed(client, layout)
    mark = registry.log_mark()
    again = seed(client, layout)
    assert not again.changed
    assert {r["action"] for r in again.images} == {"unchanged"}
    assert all(not r["blobs_uploaded"] and not r["blobs_mounted"] for r in again.images)
    assert registry.writes(mark) == []
    # one HEAD per tag is all it takes
    heads = [r for r in registry.requests(mark) if r[0] == "HEAD"]
    assert len(heads) == 4


def test_shared_base_layer_is_uploaded_once_and_mounted_into_the_other_repositories(registry, layout):
    result = seed(registry.client(), layout)
    rows = _by_image(result)
    uploaded = [d for r in result.images for d in r["blobs_uploaded"]]
    assert len(uploaded) == len(set(uploaded)), "a blob was uploaded twice"
    mounted = [d for r in result.images for d in r["blobs_mounted"]]
    base = set(rows["docker.io/library/alpine:3.20"]["blobs_uploaded"] + mounted) & set(
        rows["quay.io/org/tool:1"]["blobs_uploaded"] + rows["quay.io/org/tool:1"]["blobs_mounted"]
    )
    assert len(base) == 1
    (base_digest,) = base
    mounts = [p for m, p, s in registry.writes() if m == "POST" and "mount=" + base_digest in p]
    assert len(mounts) == 3 and all(s == 201 for m, p, s in registry.writes() if "mount=" in p)


def test_check_mode_on_an_empty_registry_plans_everything_and_writes_nothing(registry, layout):
    mark = registry.log_mark()
    plan = seed(registry.client(), layout, check_mode=True)
    assert plan.changed
    assert {r["action"] for r in plan.images} == {"create"}
    assert all(r["old_digest"] is None for r in plan.images)
    assert sum(len(r["blobs_uploaded"]) for r in plan.images) > 0
    assert registry.writes(mark) == []
    # the plan is what a real run then does
    done = seed(registry.client(), layout)
    for planned, real in zip(plan.images, done.images, strict=True):
        assert planned["blobs_uploaded"] == real["blobs_uploaded"]
        assert planned["blobs_mounted"] == real["blobs_mounted"]


def test_a_moved_tag_is_reported_in_check_mode_and_then_pushed(registry, layout):
    client = registry.client()
    seed(client, layout)
    old = _layout_digests(layout)["docker.io/library/alpine:3.20"]
    new_desc = layout.factory.image(
        "docker.io/library/alpine:3.20", [make_layer({"bin/a": b"alpine, patched"})], label="alpine2"
    )
    new = new_desc["digest"]
    assert new != old

    mark = registry.log_mark()
    plan = seed(client, layout, check_mode=True)
    row = _by_image(plan)["docker.io/library/alpine:3.20"]
    assert (row["action"], row["old_digest"], row["digest"], row["changed"]) == ("update", old, new, True)
    assert plan.diff()["before"][f"{registry.address}/library/alpine:3.20"] == old
    assert plan.diff()["after"][f"{registry.address}/library/alpine:3.20"] == new
    others = [r for r in plan.images if r["image"] != "docker.io/library/alpine:3.20"]
    assert not any(r["changed"] for r in others)
    assert registry.writes(mark) == []
    assert sha256(registry.skopeo_raw("library/alpine:3.20")) == old

    done = seed(client, layout)
    assert _by_image(done)["docker.io/library/alpine:3.20"]["old_digest"] == old
    assert sha256(registry.skopeo_raw("library/alpine:3.20")) == new
    assert not seed(client, layout).changed


def test_seeding_selected_images_leaves_the_others_alone(registry, layout):
    result = seed(registry.client(), layout, images=["quay.io/org/tool:1"])
    assert [r["image"] for r in result.images] == ["quay.io/org/tool:1"]
    repos = {p.split("/manifests/")[0] for m, p, s in registry.writes() if "/manifests/" in p}
    assert repos == {"/v2/org/tool"}


def test_keep_host_rule_puts_images_under_their_upstream_host(registry, layout):
    seed(registry.client(), layout, images=["quay.io/org/tool:1"], rule="keep_host")
    raw = registry.skopeo_raw("quay.io/org/tool:1")
    assert sha256(raw) == _layout_digests(layout)["quay.io/org/tool:1"]


def _wait_for_a_committed_blob(registry, timeout=60):
    """Until the registry's log shows a blob upload committed (PUT .../blobs/uploads/... 201)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(m == "PUT" and "/blobs/uploads/" in p and s == 201 for m, p, s in registry.requests()):
            return
        time.sleep(0.01)


def test_an_interrupted_seed_completes_on_rerun_with_valid_content(registry, tmp_path):
    layout = OCILayout(str(tmp_path / "big"))
    layers = [make_layer({f"data/{i}": os.urandom(8 * 1024 * 1024)}) for i in range(6)]
    desc = ImageFactory(layout).image("docker.io/library/big:1", layers, label="big")

    client = registry.client(retries=0)
    outcome = {}

    def run_seed():
        try:
            outcome["result"] = seed(client, layout, workers=1)
        except Exception as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run_seed)
    worker.start()
    # kill the registry once the first blob upload has been committed
    _wait_for_a_committed_blob(registry)
    registry.kill()
    worker.join(60)
    assert isinstance(outcome.get("error"), RegistryUnreachableError), outcome
    assert registry.address in str(outcome["error"])

    registry.start()
    mark = registry.log_mark()
    result = seed(registry.client(), layout)
    row = result.images[0]
    assert row["changed"] and row["digest"] == desc["digest"]
    assert row["blobs_present"] >= 1, "blobs committed before the crash are not uploaded again"
    assert len(row["blobs_uploaded"]) < 7
    assert not any(r[2] >= 400 for r in registry.writes(mark))
    out = tmp_path / "verify"
    proc = registry.copy_out("library/big:1", f"{out}:big")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "index.json").read_text())["manifests"][0]["digest"] == desc["digest"]


def test_docker_schema2_manifests_and_lists_keep_their_media_types_and_digests(registry, tmp_path):
    layout = OCILayout(str(tmp_path / "docker-types"))
    factory = ImageFactory(layout)
    single = factory.image("docker.io/library/d2:1", [make_layer({"a": b"d2"})], docker=True)
    listed = factory.index(
        "docker.io/library/d2list:1",
        ["linux/amd64", "linux/arm64"],
        {"linux/amd64": [make_layer({"a": b"x"})], "linux/arm64": [make_layer({"a": b"y"})]},
        docker=True,
    )
    client = registry.client()
    result = seed(client, layout)
    assert {r["media_type"] for r in result.images} == {single["mediaType"], listed["mediaType"]}
    for repo, desc in (("library/d2", single), ("library/d2list", listed)):
        digest, media_type, _size = client.head_manifest(repo, "1")
        assert (digest, media_type) == (desc["digest"], desc["mediaType"])
        assert sha256(registry.skopeo_raw(f"{repo}:1")) == desc["digest"]
    mark = registry.log_mark()
    assert not seed(client, layout).changed and registry.writes(mark) == []


def test_a_registry_restarted_during_the_seed_is_retried_and_the_run_completes(registry, tmp_path):
    layout = OCILayout(str(tmp_path / "restart"))
    layers = [make_layer({f"data/{i}": os.urandom(16 * 1024 * 1024)}) for i in range(5)]
    desc = ImageFactory(layout).image("docker.io/library/restart:1", layers, label="restart")

    def bounce():
        _wait_for_a_committed_blob(registry)
        registry.kill()
        time.sleep(0.3)
        registry.start()

    restarter = threading.Thread(target=bounce)
    restarter.start()
    result = seed(registry.client(retries=6, backoff=0.2), layout, workers=2)
    restarter.join(60)
    assert result.images[0]["digest"] == desc["digest"]
    assert sha256(registry.skopeo_raw("library/restart:1")) == desc["digest"]
    # the log spans both registry processes: the run went on against the restarted one
    log = registry.log_path.read_text()
    assert log.count("listening on") == 2
    after_restart = log[log.rindex("listening on") :]
    assert '"PUT /v2/library/restart/manifests/1 HTTP/1.1" 201' in after_restart


def test_a_mount_the_registry_declines_falls_back_to_uploading_the_blob(registry, layout):
    client = registry.client()
    seed(client, layout, images=["docker.io/library/alpine:3.20"])
    rows = {str(r): d for r, d in layout.images()}
    alpine = json.loads(Path(layout.blob_path(rows["docker.io/library/alpine:3.20"]["digest"])).read_bytes())
    base = alpine["layers"][0]["digest"]
    # Unlink the shared base layer from library/alpine (distribution keeps the manifest): the
    # engine still believes the repository holds it, so it will try to mount it from there.
    deleted = client.request(
        "DELETE", f"/v2/library/alpine/blobs/{base}", scope=client.scope("library/alpine", True)
    )
    assert deleted.status == 202
    mark = registry.log_mark()
    result = seed(client, layout, images=["docker.io/library/alpine:3.20", "quay.io/org/tool:1"])
    tool = _by_image(result)["quay.io/org/tool:1"]
    assert base in tool["blobs_uploaded"] and base not in tool["blobs_mounted"]
    mounts = [s for m, p, s in registry.writes(mark) if m == "POST" and f"mount={base}" in p]
    assert mounts == [202]
    assert sha256(registry.skopeo_raw("org/tool:1")) == rows["quay.io/org/tool:1"]["digest"]
