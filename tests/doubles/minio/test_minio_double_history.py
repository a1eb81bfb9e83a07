"""The MinIO double keeps a bucket's history as MinIO RELEASE.2025-09-07T16-13-09Z does: a versioned
delete leaves the versions; deleting a version needs s3:DeleteObject and is refused only by an
explicit Deny of s3:DeleteObjectVersion (cmd/auth-handler.go authorizeRequest, DenyOnly);
x-minio-force-delete erases every version unless the bucket has object locking
(cmd/object-handlers.go DeleteObjectHandler); a default retention locks versions; lifecycle
documents are accepted and refused as internal/bucket/lifecycle validates them."""

from __future__ import annotations

import json

import pytest

from tests.support.doubles.minio import admin_client, s3_client
from tests.support.doubles.minio import tls_double as tls_double_at

boto3 = pytest.importorskip("boto3")
from botocore.exceptions import ClientError  # noqa: E402 - after the importorskip above

ALLOW_DELETE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::hist-*"]},
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": ["arn:aws:s3:::hist-*/*"],
        },
    ],
}
DENY_VERSIONS = {
    "Version": "2012-10-17",
    "Statement": [
        *ALLOW_DELETE["Statement"],
        {"Effect": "Deny", "Action": ["s3:DeleteObjectVersion"], "Resource": ["arn:aws:s3:::hist-*/*"]},
    ],
}


@pytest.fixture(scope="module")
def double(tmp_path_factory):
    running = tls_double_at(tmp_path_factory.mktemp("minio-history"))
    admin = admin_client(running)
    admin.policy_add("hist-allow", policy=ALLOW_DELETE)
    admin.policy_add("hist-deny", policy=DENY_VERSIONS)
    admin.user_add("writer", "writer-secret")
    admin.attach_policy(["hist-allow"], user="writer")
    admin.user_add("snapshots", "snapshots-secret")
    admin.attach_policy(["hist-deny"], user="snapshots")
    yield running
    running.stop()


def _versioned(double, bucket, lock=False):
    root = s3_client(double)
    root.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=lock)
    if not lock:
        root.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return root


def _versions(root, bucket):
    listed = root.list_object_versions(Bucket=bucket)
    return [v["VersionId"] for v in listed.get("Versions", [])]


def _code(exc):
    return exc.value.response["Error"]["Code"]


def test_a_delete_in_a_versioned_bucket_leaves_the_versions(double):
    root = _versioned(double, "hist-plain")
    writer = s3_client(double, "writer", "writer-secret")
    writer.put_object(Bucket="hist-plain", Key="snap", Body=b"one")
    writer.put_object(Bucket="hist-plain", Key="snap", Body=b"two")
    writer.delete_object(Bucket="hist-plain", Key="snap")
    assert "Contents" not in root.list_objects_v2(Bucket="hist-plain")
    assert len(_versions(root, "hist-plain")) == 2
    # s3:ListBucket allows listing versions, as in AWS (authorizeRequest's fallback).
    assert len(_versions(writer, "hist-plain")) == 2


def test_leaving_out_delete_object_version_does_not_stop_deleting_a_version(double):
    root = _versioned(double, "hist-allow")
    writer = s3_client(double, "writer", "writer-secret")
    version = writer.put_object(Bucket="hist-allow", Key="snap", Body=b"one")["VersionId"]
    writer.delete_object(Bucket="hist-allow", Key="snap", VersionId=version)
    assert _versions(root, "hist-allow") == []


def test_an_explicit_deny_of_delete_object_version_keeps_every_version(double):
    root = _versioned(double, "hist-deny")
    account = s3_client(double, "snapshots", "snapshots-secret")
    version = account.put_object(Bucket="hist-deny", Key="snap", Body=b"one")["VersionId"]
    with pytest.raises(ClientError) as refused:
        account.delete_object(Bucket="hist-deny", Key="snap", VersionId=version)
    assert _code(refused) == "AccessDenied"
    answer = account.delete_objects(
        Bucket="hist-deny", Delete={"Objects": [{"Key": "snap", "VersionId": version}, {"Key": "other"}]}
    )
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [("snap", "AccessDenied")]
    assert [d["Key"] for d in answer["Deleted"]] == ["other"]
    account.delete_object(Bucket="hist-deny", Key="snap")  # a delete marker: allowed
    assert version in _versions(root, "hist-deny")
    root.delete_object(Bucket="hist-deny", Key="snap", VersionId=version)  # the owner may
    assert version not in _versions(root, "hist-deny")


def test_force_delete_erases_every_version_unless_the_bucket_is_locked(double):
    root = _versioned(double, "hist-force")
    account = s3_client(double, "snapshots", "snapshots-secret")

    def force(client, bucket, key, value="true"):
        def add_header(request, **_):
            request.headers["x-minio-force-delete"] = value

        client.meta.events.register_first("before-sign.s3.DeleteObject", add_header)
        try:
            return client.delete_object(Bucket=bucket, Key=key)
        finally:
            client.meta.events.unregister("before-sign.s3.DeleteObject", add_header)

    for body in (b"one", b"two"):
        account.put_object(Bucket="hist-force", Key="snaps/a", Body=body)
    account.put_object(Bucket="hist-force", Key="snapshot-kept", Body=b"x")
    with pytest.raises(ClientError) as bad:
        force(account, "hist-force", "snaps", value="maybe")
    assert _code(bad) == "InternalError"
    force(account, "hist-force", "snaps")  # the Deny of s3:DeleteObjectVersion does not stop it
    listed = root.list_object_versions(Bucket="hist-force")
    assert {v["Key"] for v in listed.get("Versions", [])} == {"snapshot-kept"}

    _versioned(double, "hist-locked", lock=True)
    account.put_object(Bucket="hist-locked", Key="snaps/a", Body=b"one")
    with pytest.raises(ClientError) as locked:
        force(account, "hist-locked", "snaps")
    assert _code(locked) == "InvalidArgument"
    assert "force-delete is forbidden on Object Locking enabled buckets" in str(locked.value)
    assert len(_versions(root, "hist-locked")) == 1


def test_a_default_retention_locks_versions_against_everyone_without_bypass(double):
    root = _versioned(double, "hist-retained", lock=True)
    root.put_object_lock_configuration(
        Bucket="hist-retained",
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 3}},
        },
    )
    writer = s3_client(double, "writer", "writer-secret")  # may delete versions by its policy
    version = writer.put_object(Bucket="hist-retained", Key="snap", Body=b"one")["VersionId"]
    with pytest.raises(ClientError) as locked:
        writer.delete_object(Bucket="hist-retained", Key="snap", VersionId=version)
    assert _code(locked) == "AccessDenied"
    assert version in _versions(root, "hist-retained")


LIFECYCLE = (
    '<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ID>{id}</ID>'
    "<Status>{status}</Status><Filter><Prefix></Prefix></Filter>{action}</Rule></LifecycleConfiguration>"
)
NONCURRENT = (
    "<NoncurrentVersionExpiration><NoncurrentDays>{days}</NoncurrentDays></NoncurrentVersionExpiration>"
)


def _put_lifecycle(double, bucket, body, user=None):
    """PutBucketLifecycle with a raw document through the minio SDK (which adds Content-MD5)."""
    import urllib3
    from minio import Minio

    from tests.support.doubles.minio import ROOT_PASSWORD, ROOT_USER

    client = Minio(
        endpoint=f"127.0.0.1:{double.port}",
        access_key=user[0] if user else ROOT_USER,
        secret_key=user[1] if user else ROOT_PASSWORD,
        region="us-east-1",
        http_client=urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(double.ca_file)),
    )
    return client._execute("PUT", bucket, body=body.encode(), query_params={"lifecycle": ""})


@pytest.mark.parametrize(
    ("rule", "code", "message"),
    [
        ({"days": 0}, "InvalidArgument", "Days must be positive integer when used with Expiration"),
        ({"days": -1}, "InvalidArgument", "Days must be positive integer when used with Expiration"),
        ({"status": ""}, "InvalidArgument", "Status should not be empty"),
        ({"status": "On"}, "InvalidArgument", "Status must be set to either Enabled or Disabled"),
        ({"id": "x" * 256}, "InvalidArgument", "ID length is limited to 255 characters"),
        ({"action": ""}, "InvalidArgument", "did not validate against our published schema"),
    ],
)
def test_lifecycle_documents_minio_refuses_are_refused(double, rule, code, message):
    from minio.error import S3Error

    s3_client(double).create_bucket(Bucket=f"hist-lc-{abs(hash(str(rule))) % 10000}")
    bucket = f"hist-lc-{abs(hash(str(rule))) % 10000}"
    action = rule.get("action", NONCURRENT.format(days=rule.get("days", 7)))
    body = LIFECYCLE.format(id=rule.get("id", "r"), status=rule.get("status", "Enabled"), action=action)
    with pytest.raises(S3Error) as refused:
        _put_lifecycle(double, bucket, body)
    assert refused.value.code == code and message in refused.value.message


def test_a_lifecycle_needs_content_md5_and_the_permission_and_is_served_back(double):
    from minio.error import S3Error

    root = s3_client(double)
    root.create_bucket(Bucket="hist-lc-ok")
    body = LIFECYCLE.format(id="keep-history", status="Enabled", action=NONCURRENT.format(days=30))
    no_checksum = s3_client(double)

    def strip_checksums(request, **_):
        for name in list(request.headers):
            if name.lower() == "content-md5" or name.lower().startswith("x-amz-checksum"):
                del request.headers[name]

    no_checksum.meta.events.register_first("before-sign.s3.PutBucketLifecycleConfiguration", strip_checksums)
    with pytest.raises(ClientError) as no_md5:
        no_checksum.put_bucket_lifecycle_configuration(
            Bucket="hist-lc-ok",
            LifecycleConfiguration={
                "Rules": [
                    {
                        "ID": "r",
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 3},
                    }
                ]
            },
        )
    assert _code(no_md5) == "MissingContentMD5"
    with pytest.raises(S3Error) as denied:
        _put_lifecycle(double, "hist-lc-ok", body, user=("snapshots", "snapshots-secret"))
    assert denied.value.code == "AccessDenied"
    with pytest.raises(ClientError) as none_yet:
        root.get_bucket_lifecycle_configuration(Bucket="hist-lc-ok")
    assert _code(none_yet) == "NoSuchLifecycleConfiguration"
    _put_lifecycle(double, "hist-lc-ok", body)
    rules = root.get_bucket_lifecycle_configuration(Bucket="hist-lc-ok")["Rules"]
    assert rules[0]["ID"] == "keep-history"
    assert rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    # An object-locked bucket refuses rules that would erase every version at once.
    _versioned(double, "hist-lc-locked", lock=True)
    erase_all = (
        "<Expiration><Days>1</Days><ExpiredObjectAllVersions>true</ExpiredObjectAllVersions></Expiration>"
    )
    with pytest.raises(S3Error) as locked:
        _put_lifecycle(double, "hist-lc-locked", LIFECYCLE.format(id="r", status="Enabled", action=erase_all))
    assert "cannot be used on an object locked bucket" in locked.value.message
    assert json.dumps(rules)  # the served document parses as S3's


def test_the_default_retention_and_the_lifecycle_survive_a_restart(tmp_path):
    double = tls_double_at(tmp_path)
    try:
        root = _versioned(double, "hist-kept", lock=True)
        root.put_object_lock_configuration(
            Bucket="hist-kept",
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 5}},
            },
        )
        _put_lifecycle(
            double, "hist-kept", LIFECYCLE.format(id="k", status="Enabled", action=NONCURRENT.format(days=5))
        )
        double.stop()
        double.start()
        root = s3_client(double)
        rule = root.get_object_lock_configuration(Bucket="hist-kept")["ObjectLockConfiguration"]["Rule"]
        assert (rule["DefaultRetention"]["Mode"], rule["DefaultRetention"]["Days"]) == ("GOVERNANCE", 5)
        rules = root.get_bucket_lifecycle_configuration(Bucket="hist-kept")["Rules"]
        assert rules[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 5
    finally:
        double.stop()


def test_a_dot_or_dot_dot_segment_is_refused_before_anything_as_minio_refuses_it(double):
    # cmd/generic-handlers.go hasBadPathComponent: MinIO cannot hold such a key, so no export has one.
    root = s3_client(double)
    root.create_bucket(Bucket="hist-names")
    for key in ("../x", "a/./b", "a/ .. /b"):
        with pytest.raises(ClientError) as bad:
            root.put_object(Bucket="hist-names", Key=key, Body=b"x")
        assert _code(bad) == "XMinioInvalidResourceName"
    root.put_object(Bucket="hist-names", Key="a/.../b", Body=b"x")  # three dots are a name
