"""The images pushed inside the island, backed up from the real registry (Debian's distribution 2.8.2)
into an OCI layout and restored into a rebuilt one (island_oci_backup): the lock's images left out, a
moved tag kept, the layout valid per the OCI image-layout spec and read by skopeo, and the refusals."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest
import yaml
from ansible_collections.island.installer.plugins.module_utils.island_backup import create as backup_create
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

from tests.support import ROOT
from tests.support.bundle import make_bundle
from tests.support.net import free_port
from tests.support.oci import ImageFactory, Registry, make_layer, needs_registry, run
from tests.support.playbook import TEST_ISLAND, local_inventory, refused, run_playbook

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


# --- backup.yml and restore.yml ------------------------------------------------------------------
@pytest.fixture
def island(tmp_path, registry, layout):
    """A controller whose island has one registry host (this machine, the real registry), the
    registry seeded from a bundle whose lock lists the layout's images, and the record naming it."""
    state = tmp_path / "state"
    (state / "pki").mkdir(parents=True)
    shutil.copy(registry.pki["ca"], state / "pki" / "trust-bundle.pem")
    secrets = state / "secrets"
    secrets.mkdir(mode=0o700)
    for name in ("registry-pull-password", "registry-push-password"):
        (secrets / name).write_text(registry.password)
        (secrets / name).chmod(0o600)
    bundle = tmp_path / "bundle"
    files = {
        f"oci/{p.relative_to(layout.path)}": p.read_bytes()
        for p in Path(layout.path).rglob("*")
        if p.is_file()
    }
    images = [
        {"reference": i["reference"], "digest": i["digest"], "media_type": desc["mediaType"]}
        for i, (_ref, desc) in zip(lock_of(layout), layout.images(), strict=True)
    ]
    make_bundle(bundle, files, images=images)
    lock_sha256 = hashlib.sha256((bundle / "island-bundle.yml").read_bytes()).hexdigest()
    record = {"name": "island", "version": "2026.11.0", "created": "2026-11-01T00:00:00Z"}
    (state / "island-bundle-applied.json").write_text(json.dumps({**record, "lock_sha256": lock_sha256}))
    inventory_dir = tmp_path / "inventory"
    inventory_dir.mkdir()
    variables = {
        **TEST_ISLAND,
        "island_pki_dir": str(state / "pki"),
        "island_secrets_dir": str(secrets),
        "island_bundle_dir": str(bundle),
        "registry_port": registry.port,
        "registry_push_port": registry.port,
        "registry_pull_user": registry.user,
        "registry_push_user": registry.user,
    }
    hosts = inventory_dir / "hosts.yml"
    hosts.write_text(
        yaml.safe_dump(
            local_inventory(
                {"island_registry": ["registry1"]},
                {"registry1": {"island_address": "127.0.0.1"}},
                **variables,
            )
        )
    )
    backups = tmp_path / "media"
    backups.mkdir(mode=0o700)
    key = tmp_path / "backup-key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True)
    seed(registry.client(), layout)
    return {
        "hosts": hosts,
        "backups": backups,
        "key": key,
        "recipient": recipient.stdout.strip(),
        "bundle": bundle,
    }


def backup_args(island):
    recipients = json.dumps({"backup_recipients": [island["recipient"]]})
    return ["-e", f"backup_dir={island['backups']}", "-e", recipients]


def restore_args(island, archive, parts="oci-images"):
    return ["-e", f"restore_archive={archive}", "-e", f"restore_identity_file={island['key']}",
            "-e", f"restore_parts={parts}"]  # fmt: skip


def test_backup_yml_holds_the_pushed_images_and_restore_yml_brings_them_back(
    tmp_path, registry, layout, island
):
    pushed = push_island_images(tmp_path, registry)
    mark = registry.log_mark()
    result = run_playbook(ROOT / "playbooks" / "backup.yml", *backup_args(island), inventory=island["hosts"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert registry.writes(mark) == []
    assert "oci-images" in result.stdout and "3 images pushed inside the island copied" in result.stdout
    assert registry.password not in result.stdout
    [archive] = sorted(island["backups"].glob("island-backup-*.tar.age"))
    plaintext = subprocess.run(
        ["age", "-d", "-i", str(island["key"]), str(archive)], check=True, capture_output=True
    )
    with tarfile.open(fileobj=io.BytesIO(plaintext.stdout)) as tar:
        index = json.loads(tar.extractfile("parts/oci-images/index.json").read())
    names = sorted(e["annotations"]["org.opencontainers.image.ref.name"] for e in index["manifests"])
    assert names == [f"{HOST}/{repo_tag}" for repo_tag in sorted(pushed)]
    assert not list(Path(tempfile.gettempdir()).glob("island-backup.*/oci-images"))

    # the registry is rebuilt and seeded from the bundle; the controller's parts stay where they are
    registry.stop()
    shutil.rmtree(registry.storage)
    registry.start()
    seed(registry.client(), layout)

    restore = ROOT / "playbooks" / "restore.yml"
    mark = registry.log_mark()
    result = run_playbook(
        restore, *restore_args(island, archive), "--check", "--diff", inventory=island["hosts"]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert registry.writes(mark) == [] and served(registry, "team/app:1.0") is None

    result = run_playbook(restore, *restore_args(island, archive), inventory=island["hosts"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert registry.password not in result.stdout
    for repo_tag, digest in pushed.items():
        assert served(registry, repo_tag) == digest, repo_tag
    assert not list(Path(tempfile.gettempdir()).glob("island-restore-oci.*"))

    mark = registry.log_mark()
    result = run_playbook(restore, *restore_args(island, archive), inventory=island["hosts"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert registry.writes(mark) == []


def test_restore_yml_refuses_a_retagged_image_and_a_part_the_backup_lacks_before_anything_changes(
    tmp_path, registry, layout, island
):
    push_island_images(tmp_path, registry)
    result = run_playbook(ROOT / "playbooks" / "backup.yml", *backup_args(island), inventory=island["hosts"])
    assert result.returncode == 0, result.stdout + result.stderr
    [archive] = sorted(island["backups"].glob("island-backup-*.tar.age"))
    newer = OCILayout(str(tmp_path / "newer"))
    ImageFactory(newer).image(f"{HOST}/team/app:1.0", [make_layer({"srv/app": b"app 1.0, rebuilt"})])
    seed(registry.client(), newer)

    restore = ROOT / "playbooks" / "restore.yml"
    mark = registry.log_mark()
    result = run_playbook(restore, *restore_args(island, archive), inventory=island["hosts"])
    output = refused(result)
    assert f"{registry.address}/team/app:1.0 is {served(registry, 'team/app:1.0')}" in output
    assert "nothing was pushed" in output
    assert registry.writes(mark) == []

    # a backup without the part: refused before the controller's parts are touched
    other = tmp_path / "other-media"
    other.mkdir()
    lacking = backup_create(
        str(other), [{"name": "ca", "path": str(tmp_path / "state" / "pki")}], [island["recipient"]]
    )
    elsewhere = tmp_path / "restored-ca"
    paths = json.dumps({"restore_paths": {"ca": str(elsewhere)}})
    result = run_playbook(
        restore,
        *restore_args(island, lacking["path"], "ca,oci-images"),
        "-e",
        paths,
        inventory=island["hosts"],
    )
    output = refused(result)
    assert "the backup does not hold oci-images (it holds ca)" in output
    assert not elsewhere.exists()

    # without the island's inventory there is no registry to restore to: refused, nothing written
    result = run_playbook(restore, *restore_args(island, archive, "ca,oci-images"), "-e", paths)
    refusal = refused(result)
    assert "oci-images, which goes back onto the island's island_registry hosts" in refusal
    assert "give the island's inventory" in refusal
    assert not elsewhere.exists()

    # a registry that does not answer is named, and no archive is written
    registry.stop()
    result = run_playbook(ROOT / "playbooks" / "backup.yml", *backup_args(island), inventory=island["hosts"])
    output = refused(result)
    assert f"registry 127.0.0.1:{registry.port} did not answer" in output
    assert sorted(island["backups"].glob("island-backup-*.tar.age")) == [archive]
