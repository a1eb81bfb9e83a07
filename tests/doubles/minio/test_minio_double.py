"""The MinIO double refuses what MinIO refuses, serves TLS, and enforces IAM policies on real S3 calls."""

from __future__ import annotations

import base64
import importlib.machinery
import importlib.util
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.doubles.minio import (
    DOUBLE,
    ROOT_PASSWORD,
    ROOT_USER,
    Double,
    admin_client,
    double_python_problem,
    make_pki,
    run_double,
    s3_client,
)
from tests.support.doubles.minio import (
    tls_double as tls_double_at,
)
from tests.support.net import free_port

boto3 = pytest.importorskip("boto3")
minio = pytest.importorskip("minio")
from botocore.client import Config  # noqa: E402 - after the importorskip above
from botocore.exceptions import ClientError  # noqa: E402 - after the importorskip above
from cryptography.exceptions import InvalidTag  # noqa: E402 - after the importorskip above
from minio import Minio, MinioAdmin  # noqa: E402 - after the importorskip above
from minio.credentials import StaticProvider  # noqa: E402 - after the importorskip above
from minio.error import S3Error  # noqa: E402 - after the importorskip above

CREDS = {"MINIO_ROOT_USER": ROOT_USER, "MINIO_ROOT_PASSWORD": ROOT_PASSWORD}


def load_double():
    loader = importlib.machinery.SourceFileLoader("minio_double", str(DOUBLE))
    spec = importlib.util.spec_from_loader("minio_double", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


md = load_double()


def refused(args, env=None):
    result = run_double(["server", *args], env={**CREDS, **(env or {})})
    assert result.returncode == 1, result
    return result.stderr


# ---- version and command line -----------------------------------------------------------------


def test_version_prints_the_pinned_release_like_upstream():
    for flag in ("--version", "-v"):
        result = run_double([flag])
        assert result.returncode == 0
        assert result.stdout.startswith("minio version RELEASE.2025-09-07T16-13-09Z (commit-id=")


@pytest.mark.parametrize(
    "drive",
    ["/data{1..4}", "/data{4...1}", "/data{1...4}}", "/data{a...d}"],
)
def test_invalid_ellipsis_syntax_is_refused(tmp_path, drive):
    err = refused([str(tmp_path) + drive])
    assert "llipsis" in err or "Incorrect range" in err


def test_mixing_ellipsis_and_plain_arguments_is_refused(tmp_path):
    err = refused([f"{tmp_path}/a{{1...4}}", f"{tmp_path}/b"])
    assert "all args must have ellipses" in err


@pytest.mark.parametrize(
    ("drives", "message"),
    [
        (["/d{1...17}"], "not divisible by any supported erasure set sizes"),
        (["/d{1...1}"], "Incorrect number of endpoints"),
        (
            [
                "/d1",
                "/d2",
                "/d3",
                "/d4",
                "/d5",
                "/d6",
                "/d7",
                "/d8",
                "/d9",
                "/d10",
                "/d11",
                "/d12",
                "/d13",
                "/d14",
                "/d15",
                "/d16",
                "/d17",
            ],
            "not divisible",
        ),
    ],
)
def test_drive_counts_no_erasure_set_size_divides_are_refused(tmp_path, drives, message):
    err = refused([str(tmp_path) + d for d in drives])
    assert message in err


def test_erasure_set_size_is_chosen_as_upstream():
    # cmd/endpoint-ellipses.go: {1...64} gives 4 sets of 16; 12 drives one set of 12.
    assert md.set_size_for(["x"], [64], 0, [64]) == 16
    assert md.set_size_for(["x"], [12], 0, [12]) == 12
    assert md.set_size_for(["x"], [32], 0, [4, 8]) == 16
    with pytest.raises(md.Refused, match="Invalid set drive count"):
        md.set_size_for(["x"], [12], 5, [12])


def test_ellipses_expand_like_upstream_hosts_fastest_with_zero_padding():
    # minio/pkg ellipses argExpander: the leftmost pattern varies fastest.
    expanded, _ = md.expand_ellipses("https://node{1...2}.island:9000/mnt/disk{01...03}")
    assert expanded == [
        "https://node1.island:9000/mnt/disk01",
        "https://node2.island:9000/mnt/disk01",
        "https://node1.island:9000/mnt/disk02",
        "https://node2.island:9000/mnt/disk02",
        "https://node1.island:9000/mnt/disk03",
        "https://node2.island:9000/mnt/disk03",
    ]
    three, _ = md.expand_ellipses("/a{1...2}/b{1...2}/c{1...2}")
    assert three[:3] == ["/a1/b1/c1", "/a2/b1/c1", "/a1/b2/c1"]
    assert len(set(three)) == 8


def test_nodes_with_different_drive_counts_are_refused(tmp_path):
    port, other = free_port(), free_port()
    args = [
        f"http://127.0.0.1:{port}/a1",
        f"http://127.0.0.1:{port}/a2",
        f"http://127.0.0.1:{other}/b1",
        f"http://127.0.0.1:{other}/b2",
        f"http://127.0.0.1:{other}/b3",
        f"http://127.0.0.1:{other}/b4",
    ]
    err = refused(["--address", f"127.0.0.1:{port}", *args])
    assert "number of disks per node does not match" in err


def test_endpoint_list_without_this_host_is_refused():
    # 192.0.2.0/24 is TEST-NET-1: never an address of this machine.
    err = refused(["--address", ":9000", "http://192.0.2.{10...11}:9000/data{1...2}"])
    assert "no endpoint pointing to the local machine is found" in err


def test_mixed_styles_root_paths_and_ips_without_scheme_are_refused(tmp_path):
    assert "mixed style endpoints" in refused([f"{tmp_path}/a", "http://127.0.0.1:9000/b"])
    assert "empty or root" in refused(["/"])
    assert "empty or root path" in refused(["http://127.0.0.1:9000/", "http://127.0.0.2:9000/"])
    assert "missing scheme" in refused(["127.0.0.1:9000/data"])


def test_relative_drive_paths_are_made_absolute_as_upstream(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    layout = md.Layout(["data"], 9000, {})
    assert layout.local_drives == [str(tmp_path / "data")]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MINIO_ROOT_USER": "ab", "MINIO_ROOT_PASSWORD": "long-enough"}, "at least 3"),
        ({"MINIO_ROOT_USER": "admin", "MINIO_ROOT_PASSWORD": "short"}, "at least 8"),
        ({"MINIO_ROOT_USER": "admin"}, 'Missing credential environment variable, "MINIO_ROOT_PASSWORD"'),
    ],
)
def test_bad_root_credentials_are_refused(tmp_path, env, message):
    result = run_double(["server", str(tmp_path / "d")], env=env)
    assert result.returncode == 1
    assert message in result.stderr


def test_unknown_flags_are_refused(tmp_path):
    assert "flag provided but not defined: --adress" in refused(["--adress", ":9000", str(tmp_path)])


def test_https_endpoints_without_certificates_are_refused(tmp_path):
    port = free_port()
    err = refused(
        [
            "--address",
            f"127.0.0.1:{port}",
            "--certs-dir",
            str(tmp_path / "none"),
            f"https://127.0.0.1:{port}/x{{1...2}}",
        ],
    )
    assert "No certificates found" in err


def test_sio_payloads_round_trip_with_the_sdk_cipher():
    from minio import crypto

    secret = "some-secret-key"
    payload = json.dumps({"k": "v" * 40000}).encode()  # several 16 KiB chunks
    ours = md.sio_encrypt(payload, secret)

    class Response:
        def __init__(self, data):
            self.buf = io.BytesIO(data)

        def read(self, n):
            return self.buf.read(n)

        def close(self):
            pass

        def release_conn(self):
            pass

    assert crypto.decrypt(Response(ours), secret) == payload
    assert md.sio_decrypt(crypto.encrypt(payload, secret), secret) == payload
    # ChaCha20-Poly1305 (AEAD id 1), which madmin-go clients choose without AES hardware.
    chacha = md.sio_encrypt(payload, secret, aead_id=1)
    assert chacha[32] == 1
    assert crypto.decrypt(Response(chacha), secret) == payload
    with pytest.raises(InvalidTag):
        md.sio_decrypt(ours, "another-secret")


# ---- a running double over TLS ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_double(tmp_path_factory):
    double = tls_double_at(tmp_path_factory.mktemp("minio-tls"), drives=["data{1...4}"])
    yield double
    double.stop()


def test_health_endpoints_answer_over_tls_verified_by_the_island_ca(tls_double):
    for path in ("/minio/health/live", "/minio/health/ready", "/minio/health/cluster"):
        assert tls_double.status(path) == 200
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(tls_double.url("/minio/health/live"), timeout=5)  # noqa: S310


def test_s3_objects_round_trip_through_boto3(tls_double):
    s3 = s3_client(tls_double)
    s3.create_bucket(Bucket="roundtrip")
    s3.put_object(Bucket="roundtrip", Key="dir/a.txt", Body=b"island", Metadata={"sha256": "x"})
    obj = s3.get_object(Bucket="roundtrip", Key="dir/a.txt")
    assert obj["Body"].read() == b"island"
    assert obj["Metadata"] == {"sha256": "x"}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="roundtrip")["Contents"]]
    assert keys == ["dir/a.txt"]


def test_wrong_secret_and_unknown_key_fail_like_s3(tls_double):
    with pytest.raises(ClientError) as wrong:
        s3_client(tls_double, secret_key="not-the-secret").list_buckets()
    assert wrong.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert wrong.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as unknown:
        s3_client(tls_double, access_key="nobody-here").list_buckets()
    assert unknown.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_a_users_attached_policy_allows_inside_and_denies_outside(tls_double):
    root = s3_client(tls_double)
    for bucket in ("team-data", "other-data"):
        root.create_bucket(Bucket=bucket)
        root.put_object(Bucket=bucket, Key="report.csv", Body=b"1,2,3")
    admin = admin_client(tls_double)
    admin.policy_add(
        "team-read",
        policy={
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::team-*"]},
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::team-data/*"]},
            ],
        },
    )
    admin.user_add("analyst", "analyst-secret")
    admin.attach_policy(["team-read"], user="analyst")
    assert json.loads(admin.user_info("analyst"))["policyName"] == "team-read"
    assert "analyst" in json.loads(admin.user_list())  # an encrypted reply

    user = s3_client(tls_double, "analyst", "analyst-secret")
    assert user.get_object(Bucket="team-data", Key="report.csv")["Body"].read() == b"1,2,3"
    assert [o["Key"] for o in user.list_objects_v2(Bucket="team-data")["Contents"]] == ["report.csv"]
    denied = [
        lambda: user.put_object(Bucket="team-data", Key="new.csv", Body=b"x"),
        lambda: user.get_object(Bucket="other-data", Key="report.csv"),
        lambda: user.list_objects_v2(Bucket="other-data"),
        user.list_buckets,
    ]
    for call in denied:
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["Error"]["Code"] == "AccessDenied"


def test_admin_api_is_root_only_and_attaching_twice_is_an_error(tls_double):
    admin = admin_client(tls_double)
    admin.user_add("plain-user", "plain-secret")
    with pytest.raises(minio.error.MinioAdminException) as exc:
        admin_client(tls_double, "plain-user", "plain-secret").user_list()
    assert exc.value._code == "403"
    admin.attach_policy(["readonly"], user="plain-user")
    with pytest.raises(minio.error.MinioAdminException, match="XMinioAdminPolicyChangeAlreadyApplied"):
        admin.attach_policy(["readonly"], user="plain-user")
    with pytest.raises(minio.error.MinioAdminException, match="XMinioAdminNoSuchPolicy"):
        admin.attach_policy(["no-such-policy"], user="plain-user")
    with pytest.raises(minio.error.MinioAdminException, match="MalformedPolicy"):
        admin.policy_add("broken", policy={"Version": "2012-10-17", "Statement": [{"Effect": "Maybe"}]})


def test_service_accounts_inherit_their_users_policy_and_an_inline_policy_narrows_it(tls_double):
    root = s3_client(tls_double)
    root.create_bucket(Bucket="apps")
    root.put_object(Bucket="apps", Key="public/a", Body=b"a")
    root.put_object(Bucket="apps", Key="private/b", Body=b"b")
    admin = admin_client(tls_double)
    admin.policy_add(
        "apps-rw",
        policy={
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:*"],
                    "Resource": ["arn:aws:s3:::apps", "arn:aws:s3:::apps/*"],
                }
            ],
        },
    )
    admin.user_add("app-owner", "owner-secret")
    admin.attach_policy(["apps-rw"], user="app-owner")
    as_owner = admin_client(tls_double, "app-owner", "owner-secret")
    as_owner.add_service_account(access_key="app-full", secret_key="app-full-secret")
    as_owner.add_service_account(
        access_key="app-narrow",
        secret_key="app-narrow-secret",
        policy={
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::apps/public/*"]}
            ],
        },
    )
    info = json.loads(admin.get_service_account("app-narrow"))
    assert info["parentUser"] == "app-owner"
    assert info["impliedPolicy"] is False
    listed = json.loads(admin.list_service_account("app-owner"))["accounts"]
    assert sorted(a["accessKey"] for a in listed) == ["app-full", "app-narrow"]

    full = s3_client(tls_double, "app-full", "app-full-secret")
    full.put_object(Bucket="apps", Key="private/c", Body=b"c")
    narrow = s3_client(tls_double, "app-narrow", "app-narrow-secret")
    assert narrow.get_object(Bucket="apps", Key="public/a")["Body"].read() == b"a"
    with pytest.raises(ClientError, match="AccessDenied"):
        narrow.get_object(Bucket="apps", Key="private/b")
    with pytest.raises(ClientError, match="AccessDenied"):
        s3_client(tls_double, "app-full", "app-full-secret").get_object(Bucket="team-data", Key="x")
    with pytest.raises(minio.error.MinioAdminException, match="AccessDenied"):
        as_owner.list_service_account(ROOT_USER)


def test_minio_sdk_sees_versioning_and_object_lock(tls_double):
    import urllib3

    client = Minio(
        endpoint=f"127.0.0.1:{tls_double.port}",
        access_key=ROOT_USER,
        secret_key=ROOT_PASSWORD,
        region="us-east-1",
        http_client=urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(tls_double.ca_file)),
    )
    client.make_bucket(bucket_name="locked", object_lock=True)
    assert client.get_bucket_versioning(bucket_name="locked").status == "Enabled"
    assert client.get_object_lock_config(bucket_name="locked") is not None


# ---- state across restarts, plain HTTP, distributed mode ------------------------------------------


@pytest.fixture
def runnable():
    problem = double_python_problem()
    if problem:
        pytest.skip(problem)


def test_iam_buckets_and_objects_survive_a_restart(tmp_path, runnable):
    port = free_port()
    args = ["--address", f"127.0.0.1:{port}", "--certs-dir", str(tmp_path / "no-certs"), str(tmp_path / "d")]
    double = Double(args, port=port, scheme="http", log=tmp_path / "log")
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=double.url(),
            aws_access_key_id=ROOT_USER,
            aws_secret_access_key=ROOT_PASSWORD,
            region_name="us-east-1",
            config=Config(request_checksum_calculation="when_required", s3={"addressing_style": "path"}),
        )
        s3.create_bucket(Bucket="kept")
        s3.put_bucket_versioning(Bucket="kept", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="kept", Key="k", Body=b"v1", Metadata={"sha256": "abc"})
        MinioAdmin(
            endpoint=f"127.0.0.1:{port}", credentials=StaticProvider(ROOT_USER, ROOT_PASSWORD), secure=False
        ).user_add("kept-user", "kept-secret")
        double.stop()
        assert double.proc.returncode == 0  # SIGTERM is a clean stop, as for systemd
        double.start()
        obj = s3.get_object(Bucket="kept", Key="k")
        assert obj["Body"].read() == b"v1"
        assert obj["Metadata"] == {"sha256": "abc"}
        assert s3.get_bucket_versioning(Bucket="kept")["Status"] == "Enabled"
        user = Minio(
            endpoint=f"127.0.0.1:{port}",
            access_key="kept-user",
            secret_key="kept-secret",
            secure=False,
            region="us-east-1",
        )
        with pytest.raises(S3Error, match="AccessDenied"):  # known user, no policy
            user.list_buckets()
        # Overwrites and deletes are kept too.
        s3.put_object(Bucket="kept", Key="k", Body=b"v2")
        s3.put_object(Bucket="kept", Key="gone", Body=b"x")
        s3.delete_object(Bucket="kept", Key="gone")
        double.stop()
        double.start()
        assert s3.get_object(Bucket="kept", Key="k")["Body"].read() == b"v2"
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="kept")["Contents"]] == ["k"]
    finally:
        double.stop()


def test_distributed_nodes_check_each_other_for_cluster_health(tmp_path, runnable):
    ca_file, certs = make_pki(tmp_path)
    p1, p2 = free_port(), free_port()
    # One pool over both nodes, listed drive by drive (the ellipsis form is tested above).
    drives = [f"https://127.0.0.1:{p}{tmp_path}/n{i}d{j}" for i, p in ((1, p1), (2, p2)) for j in (1, 2)]
    nodes = [
        Double(
            ["--address", f"127.0.0.1:{port}", "--certs-dir", str(certs), *drives],
            port=port,
            ca_file=ca_file,
            log=tmp_path / f"log{port}",
            ready=ready,
        )
        for port, ready in ((p1, "/minio/health/live"), (p2, "/minio/health/cluster"))
    ]
    try:
        wait_for(lambda: nodes[0].status("/minio/health/cluster") == 200)
        nodes[1].stop()
        # 4 drives, write quorum 3: one node's 2 drives are not enough.
        assert nodes[0].status("/minio/health/cluster") == 503
        assert nodes[0].status("/minio/health/live") == 200
    finally:
        for node in nodes:
            node.stop()


def test_systemd_invocation_with_env_files(tmp_path, runnable):
    """As the role runs it: `minio server $MINIO_OPTS $MINIO_VOLUMES`, credentials from a 0600 file."""
    ca_file, certs = make_pki(tmp_path)
    port = free_port()
    default = tmp_path / "default-minio"
    default.write_text(
        f'MINIO_VOLUMES="{tmp_path}/data{{1...4}}"\n'
        f'MINIO_OPTS="--address 127.0.0.1:{port} --console-address 127.0.0.1:{free_port()} '
        f'--certs-dir {certs}"\n'
        f"MINIO_CONFIG_ENV_FILE={tmp_path}/config.env\n"
        'MINIO_UPDATE="off"\nMINIO_CALLHOME_ENABLE="off"\n'
    )
    (tmp_path / "config.env").write_text(
        "MINIO_ROOT_USER=env-root\nexport MINIO_ROOT_PASSWORD='env-root-secret'\n"
    )
    env = md.read_env_file(default)
    # systemd splits $VAR (unquoted in ExecStart) on whitespace.
    argv = [*env["MINIO_OPTS"].split(), *env["MINIO_VOLUMES"].split()]
    double = Double(
        argv,
        env={key: env[key] for key in ("MINIO_CONFIG_ENV_FILE", "MINIO_UPDATE", "MINIO_CALLHOME_ENABLE")},
        port=port,
        ca_file=ca_file,
        log=tmp_path / "log",
    )
    try:
        s3 = s3_client(double, "env-root", "env-root-secret")
        s3.create_bucket(Bucket="from-env")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["from-env"]
        assert sorted(p.name for p in tmp_path.glob("data*")) == ["data1", "data2", "data3", "data4"]
        assert "phone home" not in (tmp_path / "log").read_text()  # the role's environment: nothing
    finally:
        double.stop()


# ---- nothing phones home (cmd/common-main.go, cmd/server-main.go, internal/config/callhome) -----


@pytest.mark.parametrize(
    ("env", "quiet", "update", "callhome"),
    [
        ({}, False, True, False),  # upstream's defaults: the update check on, callhome off
        ({"MINIO_UPDATE": "off", "MINIO_CALLHOME_ENABLE": "off"}, False, False, False),  # the role's
        ({"MINIO_UPDATE": "OFF"}, False, False, False),  # strings.EqualFold
        ({"MINIO_UPDATE": "false"}, False, True, False),  # only "off" turns it off
        ({"MINIO_UPDATE": "no"}, False, True, False),
        ({}, True, False, False),  # --quiet skips the check too
        ({"MINIO_CALLHOME_ENABLE": "on"}, False, True, True),
        ({"MINIO_CALLHOME_ENABLE": "ON"}, False, True, False),  # == "on", case matters
        ({"MINIO_CALLHOME_ENABLE": "true"}, False, True, False),
    ],
)
def test_update_check_and_callhome_are_read_as_upstream_reads_them(env, quiet, update, callhome):
    lines = md.phone_home(env, quiet)
    assert any(line.startswith("phone home: update check at https://dl.min.io/") for line in lines) is update
    assert any(line.startswith("phone home: callhome to SUBNET") for line in lines) is callhome


def test_an_unparsable_callhome_frequency_is_logged_and_keeps_callhome_off_as_upstream():
    lines = md.phone_home(
        {"MINIO_UPDATE": "off", "MINIO_CALLHOME_ENABLE": "on", "MINIO_CALLHOME_FREQUENCY": "1d"}, False
    )
    assert lines == ['Unable to load callhome config: time: unknown unit "d" in duration "1d"']


def test_no_value_of_the_phone_home_settings_is_refused_at_start(tmp_path):
    """Upstream refuses none of them: the server starts and logs what it would contact."""
    port = free_port()
    env = {**CREDS, "MINIO_CI_CD": "on", "MINIO_UPDATE": "maybe", "MINIO_CALLHOME_ENABLE": "yes"}
    args = ["--address", f"127.0.0.1:{port}", "--certs-dir", str(tmp_path / "no-certs"), str(tmp_path / "d")]
    double = Double(args, port=port, scheme="http", env=env, log=tmp_path / "log")
    try:
        log = (tmp_path / "log").read_text()
        assert "phone home: update check at https://dl.min.io/" in log
        assert "callhome" not in log
    finally:
        double.stop()


def test_minio_volumes_is_used_when_no_drive_is_given(tmp_path):
    env = {**CREDS, "MINIO_VOLUMES": "/data{1..4}"}
    result = run_double(["server", "--address", ":9000"], env=env)
    assert result.returncode == 1
    assert "Invalid ellipsis format in (/data{1..4})" in result.stderr


def test_short_password_from_the_config_env_file_is_refused(tmp_path):
    config = tmp_path / "config.env"
    config.write_text("MINIO_ROOT_USER=admin\nMINIO_ROOT_PASSWORD=short\n")
    result = run_double(["server", str(tmp_path / "d")], env={"MINIO_CONFIG_ENV_FILE": str(config)})
    assert result.returncode == 1
    assert "MINIO_ROOT_PASSWORD length at least 8" in result.stderr


@pytest.mark.parametrize(
    ("extra_args", "env", "message"),
    [
        ([], {"MINIO_BROWSER": "maybe"}, "Invalid MINIO_BROWSER value"),
        ([], {"MINIO_SERVER_URL": "minio.island.internal:9000"}, "Invalid MINIO_SERVER_URL value"),
        ([], {"MINIO_SERVER_URL": "https://minio.island.internal/?x=1"}, "Invalid MINIO_SERVER_URL value"),
        (["--console-address", ":9000"], {}, "--console-address port cannot be same as --address port"),
    ],
)
def test_invalid_environment_and_console_port_are_refused(tmp_path, extra_args, env, message):
    err = refused(["--address", ":9000", *extra_args, str(tmp_path / "d")], env=env)
    assert message in err


# ---- drives on the root filesystem, and readiness (cmd/xl-storage.go, cmd/healthcheck-handler.go) ----


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.fixture
def dir_on(tmp_path):
    """dir_on(True): a fresh directory on the root filesystem; dir_on(False): on another one; or skip.
    Removed after the test."""
    made = []

    def make(device_of_root):
        root_dev = os.stat("/").st_dev
        for base in (tmp_path, Path("/var/tmp"), Path("/dev/shm"), Path("/run/user") / str(os.getuid())):
            if (
                base.is_dir()
                and os.access(base, os.W_OK)
                and (os.stat(base).st_dev == root_dev) == device_of_root
            ):
                made.append(Path(tempfile.mkdtemp(prefix="minio-drives-", dir=base)))
                return made[-1]
        pytest.skip(f"no writable directory {'on' if device_of_root else 'off'} the root filesystem here")

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


def plain_double(tmp_path, drives, **kwargs):
    port = free_port()
    args = ["--address", f"127.0.0.1:{port}", "--certs-dir", str(tmp_path / "no-certs"), *drives]
    return Double(args, port=port, scheme="http", log=tmp_path / "log", **kwargs)


def test_drives_on_the_root_filesystem_never_initialise_and_say_why(tmp_path, runnable, dir_on):
    base = dir_on(True)
    double = plain_double(tmp_path, [f"{base}/disk{{1...2}}"], ci_cd=False, ready="/minio/health/live")
    try:
        wait_for(lambda: "drive is part of root drive" in (tmp_path / "log").read_text())
        log = (tmp_path / "log").read_text()
        assert f"Unable to use the drive {base}/disk1: drive is part of root drive, will not be used" in log
        assert f"Unable to use the drive {base}/disk2: drive is part of root drive, will not be used" in log
        time.sleep(1.5)  # the double retries every second, as upstream keeps retrying
        # live answers (the server listens), cluster and every API call do not: never initialised.
        assert double.status("/minio/health/live") == 200
        assert double.status("/minio/health/cluster") == 503
        with pytest.raises(urllib.error.HTTPError) as refused_call:
            urllib.request.urlopen(double.url("/"), timeout=5)  # noqa: S310
        assert refused_call.value.code == 503
        assert b"XMinioServerNotInitialized" in refused_call.value.read()
        assert not (base / "disk1" / ".minio.sys").exists()  # left unformatted
    finally:
        double.stop()


def test_a_single_drive_on_the_root_filesystem_is_allowed_as_upstream(tmp_path, runnable, dir_on):
    base = dir_on(True)
    double = plain_double(tmp_path, [str(base / "data")], ci_cd=False)  # waits for cluster health
    double.stop()
    assert "root drive" not in (tmp_path / "log").read_text()


def test_each_drive_on_its_own_filesystem_initialises(tmp_path, runnable, dir_on):
    base = dir_on(False)
    double = plain_double(tmp_path, [f"{base}/disk{{1...2}}"], ci_cd=False)  # waits for cluster health
    try:
        assert (base / "disk1" / ".minio.sys" / "format.json").exists()
    finally:
        double.stop()


def test_the_root_drive_threshold_decides_by_size_instead(tmp_path, runnable, dir_on):
    base = dir_on(True)
    # MINIO_ROOTDRIVE_THRESHOLD_SIZE: a drive is a root drive when its filesystem is at most that big.
    double = plain_double(
        tmp_path, [f"{base}/disk{{1...2}}"], ci_cd=False, env={"MINIO_ROOTDRIVE_THRESHOLD_SIZE": "1KiB"}
    )
    double.stop()
    err = refused([f"{base}/x{{1...2}}"], env={"MINIO_ROOTDRIVE_THRESHOLD_SIZE": "lots"})
    assert "Invalid lots value in root drive threshold environment variable" in err


def test_live_answers_before_the_object_layer_and_cluster_only_after(tmp_path, runnable):
    """A distributed node whose peer is not up: live 200 (x-minio-server-status: offline), cluster and
    the admin API 503 until the peer comes, as cmd/healthcheck-handler.go and ErrServerNotInitialized."""
    ca_file, certs = make_pki(tmp_path)
    p1, p2 = free_port(), free_port()
    drives = [f"https://127.0.0.1:{p}{tmp_path}/n{i}d1" for i, p in ((1, p1), (2, p2))]
    args = ["--certs-dir", str(certs), *drives]
    first = Double(
        ["--address", f"127.0.0.1:{p1}", *args], port=p1, ca_file=ca_file, ready="/minio/health/live"
    )
    second = None
    try:
        live = urllib.request.urlopen(first.url("/minio/health/live"), context=first.ssl_context())  # noqa: S310
        assert live.headers["x-minio-server-status"] == "offline"
        assert first.status("/minio/health/cluster") == 503
        with pytest.raises(minio.error.MinioAdminException) as not_ready:
            admin_client(first).user_list()
        assert "XMinioServerNotInitialized" in str(not_ready.value)
        second = Double(
            ["--address", f"127.0.0.1:{p2}", *args], port=p2, ca_file=ca_file, ready="/minio/health/live"
        )
        wait_for(lambda: first.status("/minio/health/cluster") == 200)
        assert json.loads(admin_client(first).user_list()) == {}
    finally:
        for node in (first, second):
            if node:
                node.stop()


def test_a_missing_config_env_file_starts_with_the_default_credentials_as_upstream(tmp_path, runnable):
    """Why the minio role guards its unit: upstream ignores a missing MINIO_CONFIG_ENV_FILE."""
    port = free_port()
    args = ["--address", f"127.0.0.1:{port}", "--certs-dir", str(tmp_path / "no-certs"), str(tmp_path / "d")]
    env = {"MINIO_CONFIG_ENV_FILE": str(tmp_path / "missing.env")}
    double = Double(args, port=port, scheme="http", env=env, log=tmp_path / "log")
    try:
        assert "Detected default credentials 'minioadmin:minioadmin'" in (tmp_path / "log").read_text()
        admin = MinioAdmin(
            endpoint=f"127.0.0.1:{port}", credentials=StaticProvider("minioadmin", "minioadmin"), secure=False
        )
        assert json.loads(admin.user_list()) == {}
    finally:
        double.stop()


# ---- Prometheus metrics (cmd/metrics-router.go, cmd/jwt.go, cmd/metrics.go, cmd/metrics-v2.go) --


def pyjwt_token(claims, secret, algorithm="HS512"):
    """A token made by PyJWT (Debian's python3-jwt, beside the double's interpreter): an encoder
    that is not the double's nor the role's, as mc's golang-jwt is neither."""
    from tests.support.doubles.minio import double_python

    code = (
        "import json, sys, jwt; c = json.loads(sys.argv[1]); print(jwt.encode(c, sys.argv[2], sys.argv[3]))"
    )
    result = subprocess.run(
        [double_python(), "-c", code, json.dumps(claims), secret, algorithm],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        pytest.skip(f"PyJWT is not importable beside the double: {result.stderr.strip().splitlines()[-1]}")
    return result.stdout.strip()


def scrape(double, authorization=None, path="/minio/v2/metrics/cluster"):
    """(status, body) of a metrics request over the double's verified TLS."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    req = urllib.request.Request(double.url(path), headers=headers)  # noqa: S310 - the double's URL
    try:
        with urllib.request.urlopen(req, timeout=10, context=double.ssl_context()) as resp:  # noqa: S310
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def sample(body, name):
    """The labels and value of the one sample of ``name`` in the text exposition."""
    line = next(x for x in body.splitlines() if x.startswith(name + "{"))
    labels, value = line[len(name) + 1 :].rsplit("} ", 1)
    return dict(pair.split("=", 1) for pair in labels.split(",")), float(value)


def test_cluster_metrics_answer_a_bearer_jwt_as_mc_admin_prometheus_generate_makes_it(tls_double):
    """HS512 over exp, sub (the access key) and iss "prometheus", signed with the root secret key."""
    claims = {"exp": int(time.time()) + 3600, "sub": ROOT_USER, "iss": "prometheus"}
    token = pyjwt_token(claims, ROOT_PASSWORD)
    status, body = scrape(tls_double, f"Bearer {token}")
    assert status == 200, body
    server = f'"127.0.0.1:{tls_double.port}"'  # cmd/endpoint.go GetLocalPeer for local drives
    assert sample(body, "minio_cluster_health_status") == ({"server": server}, 1.0)
    assert sample(body, "minio_cluster_nodes_online_total") == ({"server": server}, 1.0)
    assert sample(body, "minio_cluster_nodes_offline_total")[1] == 0
    assert sample(body, "minio_cluster_drive_total")[1] == 4
    assert sample(body, "minio_cluster_drive_online_total")[1] == 4
    assert sample(body, "minio_cluster_write_quorum")[1] == 3
    labels, _ = sample(body, "minio_software_version_info")
    assert labels["version"] == '"RELEASE.2025-09-07T16-13-09Z"'
    assert "# TYPE minio_cluster_health_status gauge" in body
    assert "# HELP minio_cluster_nodes_online_total Total number of MinIO nodes online" in body
    # golang-jwt's extractor: "Bearer " in any case, or no prefix at all; HS256 and HS384 too.
    assert scrape(tls_double, f"bearer {token}")[0] == 200
    assert scrape(tls_double, token)[0] == 200
    assert scrape(tls_double, "Bearer " + pyjwt_token(claims, ROOT_PASSWORD, "HS256"))[0] == 200
    # the token the minio role keeps for the monitoring role (module_utils island_minio_prometheus)
    from ansible_collections.island.installer.plugins.module_utils.island_minio_prometheus import encode

    assert scrape(tls_double, "Bearer " + encode(ROOT_USER, ROOT_PASSWORD, int(time.time()) + 60))[0] == 200


@pytest.mark.parametrize(
    ("claims", "secret", "algorithm"),
    [
        ({"sub": ROOT_USER}, ROOT_PASSWORD, "HS512"),  # no issuer
        ({"sub": ROOT_USER, "iss": "mc"}, ROOT_PASSWORD, "HS512"),
        ({"sub": ROOT_USER, "iss": "prometheus", "exp": 1_000_000_000}, ROOT_PASSWORD, "HS512"),  # expired
        ({"sub": ROOT_USER, "iss": "prometheus", "nbf": 4_000_000_000}, ROOT_PASSWORD, "HS512"),
        ({"sub": ROOT_USER, "iss": "prometheus"}, "not-the-root-password", "HS512"),
        ({"sub": "nobody", "iss": "prometheus"}, ROOT_PASSWORD, "HS512"),
        # accessKey is looked up before sub: a wrong one is not rescued by a right sub
        ({"accessKey": "nobody", "sub": ROOT_USER, "iss": "prometheus"}, ROOT_PASSWORD, "HS512"),
        ({"iss": "prometheus"}, ROOT_PASSWORD, "HS512"),  # no account at all
        ({"sub": ROOT_USER, "iss": "prometheus"}, "", "none"),  # unsigned
    ],
    ids=[
        "no-iss",
        "other-iss",
        "expired",
        "not-before",
        "wrong-key",
        "unknown-sub",
        "accesskey-first",
        "no-account",
        "alg-none",
    ],
)
def test_cluster_metrics_refuse_what_minio_refuses_with_access_denied(tls_double, claims, secret, algorithm):
    if algorithm == "none":
        head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        token = f"{head}.{body}."
    else:
        token = pyjwt_token(claims, secret, algorithm)
    status, body = scrape(tls_double, f"Bearer {token}")
    assert status == 403
    assert json.loads(body)["Code"] == "AccessDenied"


def test_cluster_metrics_need_a_token_and_a_user_needs_admin_prometheus(tls_double):
    assert scrape(tls_double)[0] == 403
    admin = admin_client(tls_double)
    admin.user_add("scraper", "scraper-secret")
    claims = {"sub": "scraper", "iss": "prometheus"}
    token = "Bearer " + pyjwt_token(claims, "scraper-secret")
    assert scrape(tls_double, token)[0] == 403  # a user without admin:Prometheus
    admin.policy_add(
        "prometheus-only",
        policy={"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["admin:Prometheus"]}]},
    )
    admin.attach_policy(["prometheus-only"], user="scraper")
    assert scrape(tls_double, token)[0] == 200


def test_other_metrics_endpoints_are_not_implemented_by_the_double(tls_double):
    for path in ("/minio/v2/metrics/node", "/minio/v2/metrics/bucket", "/minio/metrics/v3"):
        status, body = scrape(tls_double, path=path)
        assert status == 501 and "not implemented by the double" in body


def test_public_auth_type_opens_the_metrics_before_the_object_layer_is_up(tmp_path, runnable, dir_on):
    """MINIO_PROMETHEUS_AUTH_TYPE=public (any case) drops the token; the groups that need the object
    layer (health, drives) are absent until it is up, as upstream's dependGlobalObjectAPI groups."""
    base = dir_on(True)
    double = plain_double(
        tmp_path,
        [f"{base}/disk{{1...2}}"],  # on / and not CI/CD: never initialises
        ci_cd=False,
        ready="/minio/health/live",
        env={"MINIO_PROMETHEUS_AUTH_TYPE": "Public"},
    )
    try:
        with urllib.request.urlopen(double.url("/minio/v2/metrics/cluster"), timeout=5) as resp:  # noqa: S310
            body = resp.read().decode()
        assert "minio_cluster_nodes_online_total{" in body and "minio_software_version_info{" in body
        assert "minio_cluster_health_status" not in body
    finally:
        double.stop()
