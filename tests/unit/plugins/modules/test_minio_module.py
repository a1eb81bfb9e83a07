"""island_minio against the MinIO double over TLS: converge, rerun, check mode, diff, errors."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import uuid

import pytest

from tests.support.doubles.minio import (
    ROOT_PASSWORD,
    ROOT_USER,
    Double,
    double_python_problem,
    make_pki,
    tls_double,
)
from tests.support.net import free_port

pytest.importorskip("minio")
from ansible_collections.island.installer.plugins.module_utils.island_minio import (
    ApiError,
    Connection,
    CredentialsError,
    EndpointUnreachable,
    MinioState,
    NotReady,
    PolicyInvalid,
    SeedRefused,
    SpecError,
    TLSFailure,
    check_seed,
    normalise_policy,
    parse_policy,
)
from minio.error import S3Error

from tests.support import playbook as runner
from tests.support.playbook import ansible_doc, ansible_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def double(tmp_path_factory):
    server = tls_double(tmp_path_factory.mktemp("minio-module"), console=False)
    yield server
    server.stop()


def connect(double, access_key=ROOT_USER, secret_key=ROOT_PASSWORD, **kwargs):
    kwargs.setdefault("ca_file", str(double.ca_file))
    return Connection(f"127.0.0.1:{double.port}", access_key, secret_key, **kwargs)


def apply(double, check_mode=False, **spec):
    return MinioState(connect(double), check_mode=check_mode).apply(**spec)


def read_policy(bucket):
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{bucket}/*"]},
        ],
    }


def desired(tag, seed_dir=None):
    bucket = f"data-{tag}"
    spec = {
        "policies": [{"name": f"read-{tag}", "policy": read_policy(bucket)}],
        "users": [{"access_key": f"user-{tag}", "secret_key": "user-secret-1", "policies": [f"read-{tag}"]}],
        "service_accounts": [
            {"access_key": f"sa-{tag}", "secret_key": "sa-secret-123", "user": f"user-{tag}", "name": "app"}
        ],
        "buckets": [{"name": bucket, "versioning": True}, {"name": f"lock-{tag}", "object_lock": True}],
        "objects": [],
    }
    if seed_dir:
        spec["objects"] = [{"bucket": bucket, "src": str(seed_dir), "prefix": "seed/"}]
    return spec


@pytest.fixture
def tag():
    return uuid.uuid4().hex[:8]


def test_converges_then_a_rerun_changes_nothing(double, tag, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "sub" / "b.json").write_text("{}")
    spec = desired(tag, tmp_path)
    first = apply(double, **spec)
    kinds = sorted({(c["type"], c["action"]) for c in first.changes})
    assert ("policy", "create") in kinds
    assert ("user", "create") in kinds
    assert ("user", "attach") in kinds
    assert ("service_account", "create") in kinds
    assert ("bucket", "create") in kinds
    assert ("object", "upload") in kinds
    assert len([c for c in first.changes if c["type"] == "object"]) == 2

    second = apply(double, **spec)
    assert second.changes == []
    assert not second.changed

    conn = connect(double)
    assert conn.s3.get_bucket_versioning(bucket_name=f"data-{tag}").status == "Enabled"
    stat = conn.s3.stat_object(bucket_name=f"data-{tag}", object_name="seed/sub/b.json")
    assert (
        stat.metadata["x-amz-meta-sha256"]
        == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    )
    # The user and its service account work with the policy, and only within it.
    user_s3 = conn.s3_as(f"user-{tag}", "user-secret-1")
    assert user_s3.get_object(bucket_name=f"data-{tag}", object_name="seed/a.txt").read() == b"alpha"
    sa_s3 = conn.s3_as(f"sa-{tag}", "sa-secret-123")
    assert [o.object_name for o in sa_s3.list_objects(bucket_name=f"data-{tag}", prefix="seed/")] == [
        "seed/a.txt",
        "seed/sub/",
    ]
    with pytest.raises(S3Error, match="AccessDenied"):
        sa_s3.put_object(
            bucket_name=f"data-{tag}", object_name="x", data=__import__("io").BytesIO(b"x"), length=1
        )


def test_check_mode_reports_every_change_and_writes_nothing(double, tag, tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    result = apply(double, check_mode=True, **desired(tag, tmp_path))
    assert result.check_mode
    assert {c["type"] for c in result.changes} == {"policy", "user", "service_account", "bucket", "object"}
    assert "would change" in result.summary()
    conn = connect(double)
    assert not conn.s3.bucket_exists(bucket_name=f"data-{tag}")
    assert f"user-{tag}" not in json.loads(conn.admin.user_list())
    assert f"read-{tag}" not in json.loads(conn.admin.policy_list())


def test_a_changed_policy_is_applied_and_shown_in_the_diff(double, tag):
    spec = desired(tag)
    apply(double, **spec)
    widened = read_policy(f"data-{tag}")
    widened["Statement"][1]["Action"] = ["s3:GetObject", "s3:PutObject"]
    spec["policies"][0]["policy"] = json.dumps(widened)  # a JSON string is accepted too

    preview = apply(double, check_mode=True, **spec)
    assert [c["reason"] for c in preview.changes] == ["document differs"]
    before = preview.before["policies"][f"read-{tag}"]
    after = preview.after["policies"][f"read-{tag}"]
    assert before["Statement"][1]["Action"] == ["s3:GetObject"]
    assert after["Statement"][1]["Action"] == ["s3:GetObject", "s3:PutObject"]

    applied = apply(double, **spec)
    assert [(c["type"], c["action"]) for c in applied.changes] == [("policy", "update")]
    assert apply(double, **spec).changes == []
    stored = json.loads(connect(double).admin.policy_info(f"read-{tag}"))
    assert normalise_policy(stored) == normalise_policy(widened)


def test_policy_attachments_and_secrets_converge(double, tag):
    spec = desired(tag)
    apply(double, **spec)
    spec["users"][0]["secret_key"] = "a-new-user-secret"
    spec["users"][0]["policies"] = ["readonly"]
    spec["service_accounts"][0]["secret_key"] = "a-new-sa-secret"
    spec["service_accounts"][0]["description"] = "nightly builds"
    result = apply(double, **spec)
    reasons = {(c["type"], c["reason"]) for c in result.changes}
    assert ("user", "secret key differs") in reasons
    assert ("user", "attach policies readonly") in reasons
    assert ("user", f"detach policies read-{tag}") in reasons
    assert ("service_account", "description differs, secret key differs") in reasons
    assert apply(double, **spec).changes == []
    conn = connect(double)
    assert conn.credentials_valid(f"user-{tag}", "a-new-user-secret")
    assert not conn.credentials_valid(f"user-{tag}", "user-secret-1")
    assert conn.credentials_valid(f"sa-{tag}", "a-new-sa-secret")


def test_only_changed_seed_files_are_uploaded(double, tag, tmp_path):
    for name in ("one", "two", "three"):
        (tmp_path / name).write_text(name)
    spec = desired(tag, tmp_path)
    apply(double, **spec)
    (tmp_path / "two").write_text("two, revised")
    result = apply(double, **spec)
    assert [(c["name"], c["reason"]) for c in result.changes] == [(f"data-{tag}/seed/two", "content differs")]
    assert apply(double, **spec).changes == []


def test_wrong_credentials_fail_with_a_clear_message(double):
    with pytest.raises(CredentialsError, match=r"refused the credentials \(SignatureDoesNotMatch\)"):
        MinioState(connect(double, secret_key="wrong-password")).apply(buckets=[{"name": "whatever"}])
    with pytest.raises(CredentialsError, match="InvalidAccessKeyId"):
        MinioState(connect(double, access_key="nobody")).apply(
            policies=[{"name": "p", "policy": read_policy("b")}]
        )


def test_unreachable_endpoint_names_host_and_port(double):
    port = free_port()
    conn = Connection(f"127.0.0.1:{port}", ROOT_USER, ROOT_PASSWORD, ca_file=str(double.ca_file), timeout=5)
    with pytest.raises(EndpointUnreachable, match=rf"cannot reach MinIO at 127\.0\.0\.1:{port}"):
        MinioState(conn).apply(buckets=[{"name": "whatever"}])


def test_tls_verification_failure_is_reported_not_skipped(double, tmp_path):
    other_ca, _ = make_pki(tmp_path)
    with pytest.raises(TLSFailure, match=r"TLS verification of MinIO at 127\.0\.0\.1"):
        MinioState(connect(double, ca_file=str(other_ca))).apply(buckets=[{"name": "whatever"}])


def test_invalid_policy_json_names_the_policy(double):
    with pytest.raises(PolicyInvalid, match="policy 'broken' is not valid JSON"):
        apply(double, policies=[{"name": "broken", "policy": '{"Version": "2012-10-17", "Statement": ['}])
    with pytest.raises(PolicyInvalid, match="policy 'no-effect': Statement\\[0\\] needs Effect"):
        parse_policy("no-effect", {"Statement": [{"Action": "s3:*"}]})


def test_object_lock_cannot_be_added_to_an_existing_bucket(double, tag):
    apply(double, buckets=[{"name": f"plain-{tag}"}])
    with pytest.raises(SpecError, match=r"only when a\s+bucket is created"):
        apply(double, buckets=[{"name": f"plain-{tag}", "object_lock": True}])


def test_a_buckets_history_settings_converge_and_a_rerun_changes_nothing(double, tag):
    spec = {"name": f"hist-{tag}", "object_lock": True, "retention_days": 7, "noncurrent_days": 7}
    plan = apply(double, check_mode=True, buckets=[spec])
    assert {c["action"] for c in plan.changes} == {"create", "retention", "lifecycle"}
    first = apply(double, buckets=[spec])
    assert {c["action"] for c in first.changes} == {"create", "retention", "lifecycle"}
    assert first.after["buckets"][f"hist-{tag}"]["retention_days"] == 7
    assert apply(double, buckets=[spec]).changes == []
    conn = connect(double)
    lock = conn.s3.get_object_lock_config(bucket_name=f"hist-{tag}")
    assert (lock.mode, lock.duration, lock.duration_unit) == ("GOVERNANCE", 7, "Days")
    rules = conn.s3.get_bucket_lifecycle(bucket_name=f"hist-{tag}").rules
    assert [(r.rule_id, r.noncurrent_version_expiration.noncurrent_days) for r in rules] == [
        ("island-noncurrent-expiry", 7)
    ]
    changed = apply(double, buckets=[dict(spec, noncurrent_days=9)])
    assert [(c["action"], c["reason"]) for c in changed.changes] == [
        ("lifecycle", "noncurrent versions expire after 7 -> 9 days")
    ]


@pytest.mark.parametrize(
    ("bucket", "message"),
    [
        ({"retention_days": 3}, "retention_days needs object_lock"),
        ({"noncurrent_days": 3}, "only a versioned bucket"),
        ({"object_lock": True, "retention_days": 0}, "at least 1 day"),
    ],
)
def test_history_settings_minio_would_refuse_are_refused_before_anything_changes(
    double, tag, bucket, message
):
    with pytest.raises(SpecError, match=message):
        apply(double, buckets=[dict(bucket, name=f"bad-{tag}")])
    assert not connect(double).s3.bucket_exists(bucket_name=f"bad-{tag}")


def test_normalised_policies_ignore_order_and_single_values():
    a = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["b", "a"]}]}
    b = {
        "Version": "2012-10-17",
        "Statement": [{"Resource": ["a", "b"], "Action": ["s3:GetObject"], "Effect": "Allow"}],
    }
    assert normalise_policy(a) == normalise_policy(b)


# ---- through ansible-playbook --------------------------------------------------------------------

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: MinIO holds the island's buckets, policies, users and keys
      island_minio:
        endpoint: "{{ endpoint }}"
        access_key: "{{ root_user }}"
        secret_key: "{{ root_password }}"
        ca_file: "{{ ca_file }}"
        policies:
          - name: "read-{{ tag }}"
            policy: "{{ policy }}"
        users:
          - access_key: "user-{{ tag }}"
            secret_key: "{{ user_secret }}"
            policies: ["read-{{ tag }}"]
        service_accounts:
          - access_key: "sa-{{ tag }}"
            secret_key: "{{ sa_secret }}"
            user: "user-{{ tag }}"
        buckets:
          - name: "data-{{ tag }}"
            versioning: true
        objects:
          - bucket: "data-{{ tag }}"
            src: "{{ seed }}"
      register: minio_result

    - name: Show the result
      ansible.builtin.debug:
        var: minio_result
"""


def run_playbook(tmp_path, extra, *flags, expect_rc=0):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    extra_file = tmp_path / "extra.json"
    extra_file.write_text(json.dumps(extra))
    result = runner.run_playbook(
        playbook,
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        "-e",
        f"@{extra_file}",
        *flags,
        env=ansible_env(ANSIBLE_STDOUT_CALLBACK=None),
    )
    assert result.returncode == expect_rc, result.stdout + result.stderr
    return result.stdout


def test_playbook_check_apply_and_zero_change_rerun(double, tag, tmp_path):
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "readme.txt").write_text("island")
    extra = {
        "endpoint": f"127.0.0.1:{double.port}",
        "root_user": ROOT_USER,
        "root_password": ROOT_PASSWORD,
        "ca_file": str(double.ca_file),
        "tag": tag,
        "policy": read_policy(f"data-{tag}"),
        "user_secret": "pb-user-secret",
        "sa_secret": "pb-sa-secret-1",
        "seed": str(seed),
    }
    preview = run_playbook(tmp_path, extra, "--check", "--diff")
    assert "changed=1" in preview
    assert not connect(double).s3.bucket_exists(bucket_name=f"data-{tag}")
    assert f"read-{tag}" in preview  # the diff shows the policy to be created

    applied = run_playbook(tmp_path, extra)
    assert "changed=1" in applied
    assert "pb-user-secret" not in applied and "pb-sa-secret-1" not in applied
    assert connect(double).s3.bucket_exists(bucket_name=f"data-{tag}")

    rerun = run_playbook(tmp_path, extra)
    assert "changed=0" in rerun
    assert "MinIO is in the desired state" in rerun


def test_every_secret_option_is_no_log_and_the_docs_render():
    from ansible_collections.island.installer.plugins.modules import island_minio

    spec = island_minio.ARGUMENT_SPEC
    assert spec["secret_key"]["no_log"] is True
    for option in ("users", "service_accounts"):
        assert spec[option]["options"]["secret_key"]["no_log"] is True
    doc = ansible_doc("island_minio")
    assert doc.returncode == 0, doc.stderr
    assert "service_accounts" in doc.stdout
    assert "RETURN VALUES" in doc.stdout


def test_playbook_failure_names_the_fault_without_a_traceback(double, tag, tmp_path):
    seed = tmp_path / "seed"
    seed.mkdir()
    extra = {
        "endpoint": f"127.0.0.1:{double.port}",
        "root_user": ROOT_USER,
        "root_password": "not-the-root-password",
        "ca_file": str(double.ca_file),
        "tag": tag,
        "policy": "{not json",
        "user_secret": "pb-user-secret",
        "sa_secret": "pb-sa-secret-1",
        "seed": str(seed),
    }
    out = run_playbook(tmp_path, extra, expect_rc=2)
    assert f"policy 'read-{tag}' is not valid JSON" in out
    assert "Traceback" not in out
    extra["policy"] = read_policy(f"data-{tag}")
    out = run_playbook(tmp_path, extra, expect_rc=2)
    assert "refused the credentials (SignatureDoesNotMatch)" in out
    assert "not-the-root-password" not in out


# ---- readiness: MinIO answers /minio/health/live before it has initialised -------------------------


def lone_distributed_node(tmp_path):
    """The first node of a two-node deployment, running alone: it listens but cannot initialise
    until its peer comes (start_peer)."""
    problem = double_python_problem()
    if problem:
        pytest.skip(problem)
    ca_file, certs = make_pki(tmp_path)
    p1, p2 = free_port(), free_port()
    drives = [f"https://127.0.0.1:{p}{tmp_path}/n{i}" for i, p in ((1, p1), (2, p2))]
    args = ["--certs-dir", str(certs), *drives]

    def node(port, ready):
        return Double(
            ["--address", f"127.0.0.1:{port}", *args],
            port=port,
            ca_file=ca_file,
            ready=ready,
            log=tmp_path / f"minio-{port}.log",
        )

    first = node(p1, "/minio/health/live")
    return first, lambda: node(p2, "/minio/health/live")


def test_a_minio_that_has_not_initialised_is_waited_for_then_converged(tmp_path):
    first, start_peer = lone_distributed_node(tmp_path)
    nodes = [first]
    try:
        # What the role did before: live answers, the API does not (503 XMinioServerNotInitialized).
        assert first.status("/minio/health/live") == 200
        # (the SDK's retries give up on the 503s within a second).
        with pytest.raises((ApiError, EndpointUnreachable), match=r"503|XMinioServerNotInitialized"):
            MinioState(connect(first)).apply(buckets=[{"name": "early"}])
        timer = threading.Timer(3, lambda: nodes.append(start_peer()))
        timer.start()
        result = MinioState(connect(first)).apply(buckets=[{"name": "early"}], ready_timeout=60)
        timer.join()
        assert [c["name"] for c in result.changes] == ["early"]
    finally:
        for node in nodes:
            node.stop()


def test_a_minio_that_never_initialises_fails_after_the_timeout_naming_the_cause(tmp_path):
    first, _ = lone_distributed_node(tmp_path)
    try:
        with pytest.raises(
            NotReady, match=r"did not become ready within 3s: .*HTTP 503 \(offline\).*root filesystem"
        ):
            MinioState(connect(first)).apply(buckets=[{"name": "never"}], ready_timeout=3)
    finally:
        first.stop()


# ---- seed objects: confined to the bundle, and exactly the files the lock names --------------------


def sha256_of(data):
    return hashlib.sha256(data).hexdigest()


def seed_tree(tmp_path):
    """A bundle's files/ with one seed directory (a, sub/b) and a secret next to the bundle."""
    files = tmp_path / "bundle" / "files"
    (files / "seed" / "sub").mkdir(parents=True)
    (files / "seed" / "a").write_bytes(b"alpha")
    (files / "seed" / "sub" / "b").write_bytes(b"beta")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "root-password").write_text("hunter22")
    lock = {"a": sha256_of(b"alpha"), "sub/b": sha256_of(b"beta")}
    return files, lock


def test_seed_files_matching_the_lock_are_accepted(tmp_path):
    files, lock = seed_tree(tmp_path)
    found = check_seed({"bucket": "b", "src": str(files / "seed"), "sha256": lock}, str(files))
    assert [(f.rel, f.sha256) for f in found] == sorted(lock.items())


@pytest.mark.parametrize("src", ["../../secrets", "/etc", "link-out"])
def test_a_seed_source_outside_the_bundle_is_refused(tmp_path, src):
    files, _ = seed_tree(tmp_path)
    (files / "link-out").symlink_to(tmp_path / "secrets")
    with pytest.raises(SeedRefused, match=r"is outside .*files .*the bundle's files/ only"):
        check_seed({"bucket": "b", "src": os.path.join(str(files), src)}, str(files))


def test_a_symbolic_link_inside_a_seed_directory_is_refused(tmp_path):
    files, _ = seed_tree(tmp_path)
    (files / "seed" / "sub" / "escape").symlink_to(tmp_path / "secrets" / "root-password")
    with pytest.raises(SeedRefused, match=r"sub/escape is not a regular file or directory"):
        check_seed({"bucket": "b", "src": str(files / "seed")}, str(files))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda seed: (seed / "a").write_bytes(b"tampered"),
            r"seed/a has sha256 [0-9a-f]{64}, the lock names",
        ),
        (lambda seed: (seed / "extra").write_bytes(b"x"), r"seed/extra is not listed in the bundle's lock"),
        (lambda seed: (seed / "sub" / "b").unlink(), r"seed/sub/b is listed in the lock but missing"),
    ],
)
def test_seed_files_that_differ_from_the_lock_are_refused_before_anything_changes(
    double, tag, tmp_path, change, message
):
    files, lock = seed_tree(tmp_path)
    change(files / "seed")
    spec = desired(tag)
    spec["objects"] = [{"bucket": f"data-{tag}", "src": str(files / "seed"), "sha256": lock}]
    with pytest.raises(SeedRefused, match=message):
        apply(double, seed_root=str(files), **spec)
    # Refused before anything changed: not even the spec's bucket or policy exists.
    assert not connect(double).s3.bucket_exists(bucket_name=f"data-{tag}")


def test_a_seed_file_changed_after_its_check_is_not_uploaded(double, tag, tmp_path):
    files, lock = seed_tree(tmp_path)
    apply(double, buckets=[{"name": f"data-{tag}"}])
    spec = {"bucket": f"data-{tag}", "src": str(files / "seed"), "sha256": lock}
    checked = check_seed(spec, str(files))
    (files / "seed" / "a").write_bytes(b"swapped after the check")
    state = MinioState(connect(double))
    with pytest.raises(SeedRefused, match=r"seed/a changed after it was checked"):
        state.seed(spec, checked)
    names = [o.object_name for o in connect(double).s3.list_objects(f"data-{tag}", recursive=True)]
    assert "a" not in names
