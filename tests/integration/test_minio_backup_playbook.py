"""MinIO buckets through playbooks/backup.yml and playbooks/restore.yml against the MinIO double:
a bucket exported as the part minio-<bucket> (every object with its key, size, sha256, ETag,
content type and metadata; keys no file name could hold, and dir beside dir/, kept apart),
objects deleted or changed and restored, what the restore refuses before writing, and the snapshot
tenant the minio role makes unable to erase k3s's snapshot history."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT
from tests.support.doubles.minio import ROOT_PASSWORD, ROOT_USER, s3_client, tls_double
from tests.support.playbook import TEST_ISLAND, local_inventory, refused, run_playbook

pytest.importorskip("boto3")
pytest.importorskip("minio")
from botocore.exceptions import ClientError

pytestmark = pytest.mark.slow

BUCKET = "artifacts"
BIG = bytes(range(256)) * (6 * 4096)  # 6 MiB: boto3 uploads it in parts (an ETag with a '-')
OBJECTS = {
    "a.txt": (b"alpha\n", "text/plain", {"owner": "ops"}),
    "x/.../y": (b"three dots are a name\n", "application/octet-stream", {}),
    "k" * 300 + "/ü-\\name": (b"longer than a file name may be\n", "application/octet-stream", {}),
    "dir": (b"a key named dir\n", "application/octet-stream", {}),
    "dir/": (b"", "application/x-directory", {"kind": "marker"}),
    "dir/b.json": (b"{}", "application/json", {}),
}


@pytest.fixture(scope="module")
def double(tmp_path_factory):
    server = tls_double(tmp_path_factory.mktemp("minio-backup"), console=False)
    yield server
    server.stop()


@pytest.fixture
def island(tmp_path: Path, double) -> dict:
    state = tmp_path / "state"
    (state / "pki").mkdir(parents=True)
    (state / "pki" / "trust-bundle.pem").write_bytes(Path(double.ca_file).read_bytes())
    (state / "secrets").mkdir(mode=0o700)
    secret = state / "secrets" / "minio-root-password"
    secret.write_text(ROOT_PASSWORD)
    secret.chmod(0o600)
    inventory_dir = tmp_path / "inventory"
    inventory_dir.mkdir()
    hosts = inventory_dir / "hosts.yml"
    variables = {
        **TEST_ISLAND,
        "island_pki_dir": str(state / "pki"),
        "island_secrets_dir": str(state / "secrets"),
        "minio_root_user": ROOT_USER,
        "minio_buckets": [{"name": BUCKET}],
    }
    minio_host = {"island_address": "127.0.0.1", "minio_port": double.port}
    hosts.write_text(
        yaml.safe_dump(local_inventory({"island_minio": ["minio1"]}, {"minio1": minio_host}, **variables))
    )
    backups = tmp_path / "media"
    backups.mkdir(mode=0o700)
    key = tmp_path / "backup-key.txt"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True)
    s3 = s3_client(double)
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    if BUCKET in existing:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    else:
        s3.create_bucket(Bucket=BUCKET)
    for key_name, (body, content_type, metadata) in OBJECTS.items():
        s3.put_object(Bucket=BUCKET, Key=key_name, Body=body, ContentType=content_type, Metadata=metadata)
    from boto3.s3.transfer import TransferConfig

    parts = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_fileobj(io.BytesIO(BIG), BUCKET, "big.bin", Config=parts)
    return {"hosts": hosts, "backups": backups, "key": key, "recipient": recipient.stdout.strip(), "s3": s3}


def backup(island, *extra):
    recipients = json.dumps({"backup_recipients": [island["recipient"]]})
    return run_playbook(
        ROOT / "playbooks" / "backup.yml",
        "-e",
        f"backup_dir={island['backups']}",
        "-e",
        recipients,
        *extra,
        inventory=island["hosts"],
    )


def restore(island, archive, *extra):
    return run_playbook(
        ROOT / "playbooks" / "restore.yml",
        "-e",
        f"restore_archive={archive}",
        "-e",
        f"restore_identity_file={island['key']}",
        *extra,
        inventory=island["hosts"],
    )


def archive_of(island) -> Path:
    found = sorted(island["backups"].glob("island-backup-*.tar.age"))
    assert len(found) == 1, found
    return found[0]


def contents(s3) -> dict:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            obj = s3.get_object(Bucket=BUCKET, Key=item["Key"])
            out[item["Key"]] = (
                hashlib.sha256(obj["Body"].read()).hexdigest(),
                obj["ContentType"],
                obj["Metadata"],
            )
    return out


def opened(island, tmp_path) -> Path:
    """The archive opened with the stock age tool and tar, as an operator would by hand."""
    dest = tmp_path / "opened"
    dest.mkdir()
    age = subprocess.run(
        ["age", "-d", "-i", str(island["key"]), str(archive_of(island))], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=age.stdout, check=True)
    return dest / "parts" / f"minio-{BUCKET}"


def test_a_bucket_is_exported_deleted_and_changed_objects_come_back_as_they_were(island, tmp_path):
    before = contents(island["s3"])
    result = backup(island)
    assert result.returncode == 0, result.stdout + result.stderr
    part = opened(island, tmp_path)
    index = json.loads((part / "index.json").read_text())
    by_key = {entry["key"]: entry for entry in index["objects"]}
    assert sorted(by_key) == sorted([*OBJECTS, "big.bin"])
    assert by_key["a.txt"]["content_type"] == "text/plain" and by_key["a.txt"]["metadata"] == {"owner": "ops"}
    assert "-" in by_key["big.bin"]["etag"] and by_key["big.bin"]["size"] == len(BIG)
    for key_name, entry in by_key.items():
        data = (part / "objects" / entry["file"]).read_bytes()  # every key has its own file inside
        assert entry["file"] == hashlib.sha256(key_name.encode()).hexdigest()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] == before[key_name][0]
    assert sorted(p.name for p in (part / "objects").iterdir()) == sorted(e["file"] for e in index["objects"])

    s3 = island["s3"]
    for key_name in ("a.txt", "x/.../y", "big.bin"):
        s3.delete_object(Bucket=BUCKET, Key=key_name)
    result = restore(island, archive_of(island), "-e", f"restore_parts=minio-{BUCKET}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert contents(s3) == before
    said = " ".join(result.stdout.split())
    assert "wrote 3 missing and 0 differing object(s); 4 already as in the backup" in said
    assert ROOT_PASSWORD not in result.stdout + result.stderr
    # Nothing of the part is left on the controller, and a second restore writes nothing.
    again = restore(island, archive_of(island), "-e", f"restore_parts=minio-{BUCKET}")
    assert again.returncode == 0 and "wrote 0 missing and 0 differing" in " ".join(again.stdout.split())


def test_an_object_changed_since_the_backup_is_refused_before_anything_is_written(island):
    assert backup(island).returncode == 0
    before = contents(island["s3"])
    s3 = island["s3"]
    s3.delete_object(Bucket=BUCKET, Key="a.txt")
    s3.put_object(Bucket=BUCKET, Key="dir", Body=b"changed since")
    output = refused(restore(island, archive_of(island), "-e", f"restore_parts=minio-{BUCKET}"))
    assert "bucket artifacts holds 1 object(s) whose content differs from the backup's: 'dir'" in output
    assert "restore_minio_overwrite=true" in output and "Nothing was written" in output
    assert "a.txt" not in contents(s3)  # the missing one was not written either
    overwrite = ("-e", f"restore_parts=minio-{BUCKET}", "-e", "restore_minio_overwrite=true")
    preview = restore(island, archive_of(island), *overwrite, "--check")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert "would write 1 missing and 1 differing object(s)" in " ".join(preview.stdout.split())
    assert "a.txt" not in contents(s3)  # --check wrote nothing
    result = restore(island, archive_of(island), *overwrite)
    assert result.returncode == 0, result.stdout + result.stderr
    assert contents(s3) == before


def test_a_bucket_minio_does_not_hold_is_refused_before_anything_is_taken(island):
    output = refused(backup(island, "-e", "backup_minio_buckets=artifacts,no-such-bucket"))
    assert "does not hold: no-such-bucket; it holds:" in output and "artifacts" in output
    assert "Nothing was taken" in output
    assert list(island["backups"].iterdir()) == []


def test_restoring_a_bucket_needs_the_inventory_and_a_part_the_backup_holds(island):
    assert backup(island).returncode == 0
    output = refused(
        run_playbook(
            ROOT / "playbooks" / "restore.yml",
            "-e",
            f"restore_archive={archive_of(island)}",
            "-e",
            f"restore_identity_file={island['key']}",
            "-e",
            "restore_parts=minio-artifacts",
        )
    )
    assert "minio-artifacts, which goes back onto the island's island_minio hosts" in output
    assert "give the island's inventory (-i inventory/<island>/hosts.yml)" in output
    output = refused(restore(island, archive_of(island), "-e", "restore_parts=minio-other"))
    assert "the backup does not hold minio-other" in output and "Nothing was restored" in output


def test_the_snapshot_account_the_role_provisions_cannot_erase_the_history(double):
    """The k3s tenant as the island model gives it to the minio role (object lock, retention,
    noncurrent expiry, Deny s3:DeleteObjectVersion), converged with island_minio, then used as k3s
    uses it: its retention's delete hides a snapshot; deleting a version, DeleteObjects with
    versions, x-minio-force-delete and changing the bucket's history settings are refused."""
    from ansible_collections.island.installer.plugins.module_utils import island_model as model
    from ansible_collections.island.installer.plugins.module_utils.island_minio import Connection, MinioState

    groups = {"all": ["minio1"], "island_minio": ["minio1"]}
    hostvars = {"minio1": {"island_address": "127.0.0.1", "minio_etcd_snapshot_bucket": "snapshots-test"}}
    tenants = model.minio_tenants(
        [t for t in model.island(groups, hostvars, "island.test")["tenants"] if t["tenant"] == "k3s"]
    )
    users = [dict(u, secret_key="k3s-secret-123") for u in tenants["users"]]
    conn = Connection(f"127.0.0.1:{double.port}", ROOT_USER, ROOT_PASSWORD, ca_file=str(double.ca_file))
    spec = {"policies": tenants["policies"], "users": users, "buckets": tenants["buckets"]}
    MinioState(conn).apply(**spec)
    assert not MinioState(conn).apply(**spec).changed  # a rerun changes nothing

    k3s = s3_client(double, users[0]["access_key"], "k3s-secret-123")
    root = s3_client(double)
    first = k3s.put_object(Bucket="snapshots-test", Key="etcd-snapshot-s1-1", Body=b"snap")["VersionId"]
    k3s.delete_object(Bucket="snapshots-test", Key="etcd-snapshot-s1-1")  # k3s's retention
    assert "Contents" not in k3s.list_objects_v2(Bucket="snapshots-test")
    with pytest.raises(ClientError, match="AccessDenied"):
        k3s.delete_object(Bucket="snapshots-test", Key="etcd-snapshot-s1-1", VersionId=first)
    answer = k3s.delete_objects(
        Bucket="snapshots-test", Delete={"Objects": [{"Key": "etcd-snapshot-s1-1", "VersionId": first}]}
    )
    assert [e["Code"] for e in answer["Errors"]] == ["AccessDenied"]

    def force(request, **_):
        request.headers["x-minio-force-delete"] = "true"

    k3s.meta.events.register_first("before-sign.s3.DeleteObject", force)
    with pytest.raises(ClientError, match="force-delete is forbidden"):
        k3s.delete_object(Bucket="snapshots-test", Key="etcd-snapshot-s1-1")
    for change in (
        lambda: k3s.put_bucket_versioning(
            Bucket="snapshots-test", VersioningConfiguration={"Status": "Suspended"}
        ),
        lambda: k3s.delete_bucket_lifecycle(Bucket="snapshots-test"),
    ):
        with pytest.raises(ClientError, match="AccessDenied"):
            change()
    versions = root.list_object_versions(Bucket="snapshots-test")["Versions"]
    assert [v["VersionId"] for v in versions] == [first]
