"""The registry's S3 option: the real distribution 2.8.2 on the MinIO double, two replicas, one bucket.

Both registries are Debian's docker-registry (distribution 2.8.2) with the s3 driver settings the
registry role renders, against the MinIO double (moto's S3 behind MinIO's SigV4 and policies) over
TLS, as the user and policy the minio role creates for the registry (the policy is read from
roles/minio/vars/main.yml). What the driver does on the wire (multipart uploads, ListObjects V1 and
V2, range GETs, CopyObject and UploadPartCopy for blob moves, ListMultipartUploads and ListParts to
resume, DeleteObjects) is therefore answered by a real S3 implementation under the registry's real
permissions.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import urllib.parse
from pathlib import Path

import pytest
import yaml
from ansible_collections.island.installer.plugins.module_utils.island_model import TENANTS, minio_tenants
from ansible_collections.island.installer.plugins.module_utils.island_oci import OCILayout, seed

from tests.support import ROOT
from tests.support.doubles.minio import admin_client, s3_client, tls_double
from tests.support.doubles.minio import make_pki as make_minio_pki
from tests.support.oci import ImageFactory, Registry, make_layer, needs_registry, sha256

boto3 = pytest.importorskip("boto3")
minio_sdk = pytest.importorskip("minio")

pytestmark = [needs_registry, pytest.mark.slow]

BUCKET = "island-registry"
S3_USER, S3_SECRET = "island-registry", "registry-s3-secret-0123"
MIB = 1 << 20


def trusting(ca_file):
    """The registry's environment: Go's crypto/x509 reads SSL_CERT_FILE in place of the system roots
    (the double's CA here; the island roots in the OS trust store on an island host). AWS_CA_BUNDLE
    must be absent: see test_aws_ca_bundle_makes_this_registry_panic."""
    return {"SSL_CERT_FILE": str(ca_file), "SSL_CERT_DIR": None, "AWS_CA_BUNDLE": None}


def role_registry_policy(bucket):
    """The policy the minio role gives the registry's user: the registry's tenant in the model."""
    registry = [dict(t, bucket=bucket, user=S3_USER) for t in TENANTS if t["tenant"] == "registry"]
    (policy,) = minio_tenants(registry)["policies"]
    return policy["policy"]


def role_s3_keys():
    return yaml.safe_load((ROOT / "roles/registry/vars/main.yml").read_text())["registry_s3_keys"]


@pytest.fixture(scope="module")
def minio(tmp_path_factory):
    base = tmp_path_factory.mktemp("minio")
    double = tls_double(base)
    # What the minio role converges for the registry: bucket, policy limited to it, user.
    admin = admin_client(double)
    policy_file = base / "policy.json"
    policy_file.write_text(json.dumps(role_registry_policy(BUCKET)))
    admin.policy_add(BUCKET, str(policy_file))
    admin.user_add(S3_USER, S3_SECRET)
    admin.attach_policy([BUCKET], user=S3_USER)
    root_s3(double).create_bucket(Bucket=BUCKET)
    yield double
    double.stop()


def root_s3(double):
    return s3_client(double)


def s3_storage(double, rootdirectory, **extra):
    """The storage section the registry role renders with registry_storage s3."""
    params = {
        "bucket": BUCKET,
        "accesskey": S3_USER,
        "secretkey": S3_SECRET,
        "region": "us-east-1",
        "regionendpoint": double.url(),
        "secure": True,
        "v4auth": True,
        "rootdirectory": rootdirectory,
        **extra,
    }
    assert set(params) - {"secretkey"} <= set(role_s3_keys())
    return {
        "s3": params,
        "redirect": {"disable": True},
        "delete": {"enabled": False},
        "maintenance": {"uploadpurging": {"enabled": False}},
    }


def replica(workdir, pki, double, rootdirectory, secret=None, **extra):
    reg = Registry(
        workdir,
        pki,
        storage=s3_storage(double, rootdirectory, **extra),
        env=trusting(double.ca_file),
    )
    if secret:  # else the fixture's fixed secret, the same for every replica
        config = json.loads(reg.config.read_text())
        config["http"]["secret"] = secret
        reg.config.write_text(json.dumps(config))
    return reg.start()


@pytest.fixture
def replicas(tmp_path, pki, minio):
    """Two registry replicas on one bucket (one root directory per test), same http.secret."""
    root = f"/{tmp_path.name}"
    a = replica(tmp_path / "a", pki, minio, root, chunksize=5 * MIB)
    # Blobs above 5 MiB move with multipart UploadPartCopy on this replica, CopyObject on the other.
    b = replica(
        tmp_path / "b", pki, minio, root, multipartcopythresholdsize=5 * MIB, multipartcopychunksize=5 * MIB
    )
    yield a, b, root.strip("/"), minio
    a.stop()
    b.stop()


@pytest.fixture
def big_layout(tmp_path):
    """Two images sharing a base; one carries a 12 MiB incompressible layer (several S3 parts)."""
    lay = OCILayout(str(tmp_path / "layout"))
    factory = ImageFactory(lay)
    base = make_layer({"etc/os-release": b"ID=island-test\n" * 200})
    factory.image("docker.io/library/small:1", [base, make_layer({"bin/s": b"small"})], label="small")
    factory.image("quay.io/org/big:2", [base, make_layer({"data/blob": os.urandom(12 * MIB)})], label="big")
    return lay


def _digests(layout):
    return {str(ref): desc["digest"] for ref, desc in layout.images()}


def _keys(double, prefix):
    keys = []
    for page in root_s3(double).get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def test_an_image_seeded_through_one_replica_is_pulled_by_digest_from_the_other(
    replicas, big_layout, tmp_path
):
    a, b, root, minio = replicas
    result = seed(a.client(), big_layout)
    assert result.changed
    expected = _digests(big_layout)
    for ref, repo in (("docker.io/library/small:1", "library/small"), ("quay.io/org/big:2", "org/big")):
        raw = b.skopeo_raw(f"{repo}@{expected[ref]}")
        assert sha256(raw) == expected[ref]
        out = tmp_path / f"copy-{repo.replace('/', '-')}"
        proc = b.copy_out(f"{repo}@{expected[ref]}", out)
        assert proc.returncode == 0, proc.stderr + b.log_path.read_text()[-3000:]
        index = json.loads((out / "index.json").read_text())
        assert index["manifests"][0]["digest"] == expected[ref]

    # The blobs are objects of the bucket under the registry's layout, nothing is left of the
    # uploads (DeleteObjects), and no multipart upload is left open.
    keys = set(_keys(minio, f"{root}/"))
    for digest in _blob_digests(big_layout):
        hexd = digest.split(":", 1)[1]
        assert f"{root}/docker/registry/v2/blobs/sha256/{hexd[:2]}/{hexd}/data" in keys
    assert not [k for k in keys if "/_uploads/" in k]
    open_uploads = root_s3(minio).list_multipart_uploads(Bucket=BUCKET, Prefix=f"{root}/")
    assert open_uploads.get("Uploads", []) == []

    # Reseeding through the other replica finds everything: nothing is written.
    mark = b.log_mark()
    assert not seed(b.client(), big_layout).changed
    assert b.writes(mark) == []


def _blob_digests(layout):
    digests = set()
    for _ref, desc in layout.images():
        manifest = json.loads(Path(layout.blob_path(desc["digest"])).read_bytes())
        digests.add(desc["digest"])
        digests.add(manifest["config"]["digest"])
        digests.update(layer["digest"] for layer in manifest["layers"])
    return digests


class _Conn:
    """Raw distribution API calls with basic auth, TLS verified with the registry's CA."""

    def __init__(self, registry):
        self.registry = registry
        self.ctx = ssl.create_default_context(cafile=str(registry.pki["ca"]))
        token = base64.b64encode(f"{registry.user}:{registry.password}".encode()).decode()
        self.auth = {"Authorization": f"Basic {token}"}

    def request(self, method, path, body=b"", headers=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.registry.port, context=self.ctx, timeout=60)
        try:
            conn.request(method, path, body=body, headers={**self.auth, **(headers or {})})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()


def _path(location):
    parts = urllib.parse.urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


def test_an_upload_begun_on_one_replica_finishes_on_the_other_only_with_the_same_http_secret(
    replicas, tmp_path, pki
):
    a, b, root, minio = replicas
    blob = os.urandom(7 * MIB)
    digest = sha256(blob)
    first, second = blob[: 6 * MIB], blob[6 * MIB :]

    status, headers, _ = _Conn(a).request("POST", "/v2/island/chunked/blobs/uploads/")
    assert status == 202
    status, headers, _ = _Conn(a).request(
        "PATCH",
        _path(headers["Location"]),
        first,
        {"Content-Type": "application/octet-stream", "Content-Range": f"0-{len(first) - 1}"},
    )
    assert status == 202, headers
    location = _path(headers["Location"])

    # A third replica on the same bucket with ANOTHER http.secret cannot continue the upload: the
    # upload state the client carries is signed with the secret (configuration.md, http.secret).
    stranger = replica(tmp_path / "c", pki, minio, f"/{root}", secret="another-secret")
    try:
        status, _headers, body = _Conn(stranger).request(
            "PATCH",
            location,
            second,
            {"Content-Type": "application/octet-stream", "Content-Range": f"{len(first)}-{len(blob) - 1}"},
        )
        assert status in (400, 404), (status, body)
        assert b"BLOB_UPLOAD_INVALID" in body or b"BLOB_UPLOAD_UNKNOWN" in body, (status, body)
    finally:
        stranger.stop()

    # The other replica, with the same secret, resumes the S3 multipart upload (ListMultipartUploads,
    # ListParts) and commits it.
    status, headers, body = _Conn(b).request(
        "PATCH",
        location,
        second,
        {"Content-Type": "application/octet-stream", "Content-Range": f"{len(first)}-{len(blob) - 1}"},
    )
    assert status == 202, (status, body, b.log_path.read_text()[-3000:])
    status, headers, body = _Conn(b).request(
        "PUT", _path(headers["Location"]) + f"&digest={digest}", b"", {"Content-Length": "0"}
    )
    assert status == 201, (status, body, b.log_path.read_text()[-3000:])
    assert headers["Docker-Content-Digest"] == digest
    status, _headers, got = _Conn(a).request("GET", f"/v2/island/chunked/blobs/{digest}")
    assert status == 200 and sha256(got) == digest


def test_the_registry_user_is_held_to_its_bucket(minio):
    user = s3_client(minio, S3_USER, S3_SECRET)
    root_s3(minio).create_bucket(Bucket="not-the-registrys")
    user.put_object(Bucket=BUCKET, Key="probe", Body=b"x")
    user.delete_object(Bucket=BUCKET, Key="probe")
    from botocore.exceptions import ClientError

    for call in (
        lambda: user.put_object(Bucket="not-the-registrys", Key="probe", Body=b"x"),
        lambda: user.list_objects_v2(Bucket="not-the-registrys"),
        lambda: user.delete_bucket(Bucket=BUCKET),
    ):
        with pytest.raises(ClientError, match="AccessDenied"):
            call()


def test_a_key_the_driver_does_not_read_is_ignored_by_2_8_2_so_the_role_refuses_it(tmp_path, pki, minio):
    """forcepathstyle (distribution 3.x) is silently dropped by 2.8.2, which is why the role keeps
    its own list of the keys 2.8.2 reads and refuses the rest."""
    assert "forcepathstyle" not in role_s3_keys()
    storage = s3_storage(minio, "/ignored")
    storage["s3"]["forcepathstyle"] = True
    reg = Registry(
        tmp_path / "r",
        pki,
        storage=storage,
        env=trusting(minio.ca_file),
    ).start()
    try:
        status, _h, _b = _Conn(reg).request("GET", "/v2/")
        assert status == 200
    finally:
        reg.stop()


def test_without_the_island_ca_the_registry_cannot_reach_minio(tmp_path, pki, minio):
    other_ca = tmp_path / "other-ca"
    make_minio_pki(other_ca)
    reg = Registry(
        tmp_path / "r",
        pki,
        storage=s3_storage(minio, "/untrusted"),
        env=trusting(other_ca / "ca.crt"),
    ).start()
    try:
        _status, _h, body = _Conn(reg).request("GET", "/v2/any/tags/list")
        assert reg.proc.poll() is None
        assert "certificate signed by unknown authority" in reg.log_path.read_text(), body
    finally:
        reg.stop()


def test_aws_ca_bundle_makes_this_registry_panic(tmp_path, pki, minio):
    """Debian's 2.8.2 build hands aws-sdk-go an HTTP client with a wrapped transport, and the SDK
    cannot add AWS_CA_BUNDLE to it: the registry dies at start. So the role never sets it, and the
    island CA reaches the registry through the OS trust store."""
    reg = Registry(
        tmp_path / "r",
        pki,
        storage=s3_storage(minio, "/bundle"),
        env={**trusting(minio.ca_file), "AWS_CA_BUNDLE": str(minio.ca_file)},
    )
    with pytest.raises(RuntimeError, match="unable to load custom CA bundle"):
        reg.start()
