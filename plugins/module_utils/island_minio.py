# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""MinIO's desired state (buckets, canned policies, users, service accounts, seed objects).

Talks to MinIO through the ``minio`` Python SDK, pinned to 7.2.20 (requirements.txt). Facts about
that SDK this code relies on, read from minio-py 7.2.20 (minio/api.py, minio/minioadmin.py):

* ``Minio`` and ``MinioAdmin`` take keyword-only arguments (since 7.2.17) and accept an
  ``http_client`` (a urllib3 ``PoolManager``): ours always verifies TLS against the island CA.
* Without a ``region`` the S3 client asks GetBucketLocation first, which a user without
  ``s3:GetBucketLocation`` is denied; we always pass the region.
* ``MinioAdmin`` raises ``MinioAdminException`` (HTTP status in ``_code``, JSON body in ``_body``);
  ``user_info`` of an unknown user is ``404 XMinioAdminNoSuchUser``; ``attach_policy`` of a policy
  already attached is ``400 XMinioAdminPolicyChangeAlreadyApplied``, so attachments are compared
  first. ``add_service_account`` has no target user: the account belongs to whoever signs the
  request, so a user's service account is created with that user's own credentials.
* Secret keys cannot be read back. Whether a user's or service account's secret is the desired one
  is checked by signing a harmless S3 request (ListBuckets) with it: SignatureDoesNotMatch means it
  differs, AccessDenied means the key is right and merely not allowed to list.

Errors are typed (``MinioStateError`` subclasses) and say what is at fault and what to do; the
module turns them into ``fail_json`` in one place.
"""

from __future__ import annotations

import json
import mimetypes
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field

from ansible_collections.island.installer.plugins.module_utils import island_minio_history as history
from ansible_collections.island.installer.plugins.module_utils.island_minio_errors import (
    ApiError,
    CredentialsError,
    EndpointUnreachable,
    MinioStateError,
    NotReady,
    PolicyInvalid,
    SeedRefused,
    SpecError,
    TLSFailure,
)
from ansible_collections.island.installer.plugins.module_utils.island_minio_seed import (  # noqa: F401 (re-exported)
    SeedFile,
    check_seed,
    copy_digest,
)

try:
    import urllib3
    from minio import Minio, MinioAdmin
    from minio.credentials import StaticProvider
    from minio.error import InvalidResponseError, MinioAdminException, S3Error, ServerError
    from minio.versioningconfig import ENABLED, SUSPENDED, VersioningConfig

    MINIO_IMPORT_ERROR = None
except ImportError as _exc:  # reported by the module with the interpreter to use
    MINIO_IMPORT_ERROR = _exc


def sdk_missing():
    """What a module that talks to MinIO fails with when the minio SDK is not importable here
    (run_module's `missing`), or None when it is."""
    if MINIO_IMPORT_ERROR is None:
        return None
    return {
        "msg": "the minio Python SDK (minio==7.2.20, requirements.txt) is not importable by "
        f"{sys.executable}: {MINIO_IMPORT_ERROR}; run the task with ansible_python_interpreter "
        "set to the controller's virtual environment"
    }


CREDENTIAL_ERRORS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
SEED_METADATA_KEY = "sha256"  # stored as x-amz-meta-sha256


# ------------------------------------------------------------------------------------------------
# Policies
# ------------------------------------------------------------------------------------------------

_LIST_FIELDS = ("Action", "NotAction", "Resource", "NotResource")


def parse_policy(name, value):
    """A policy document from a dict or a JSON string; PolicyInvalid names the policy at fault."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise PolicyInvalid(f"policy {name!r} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise PolicyInvalid(f"policy {name!r} must be a JSON object, not {type(value).__name__}")
    statements = value.get("Statement")
    if not statements:
        raise PolicyInvalid(f"policy {name!r} has no Statement")
    for index, st in enumerate(statements if isinstance(statements, list) else [statements]):
        if not isinstance(st, dict):
            raise PolicyInvalid(f"policy {name!r}: Statement[{index}] is not a JSON object")
        if st.get("Effect") not in ("Allow", "Deny"):
            raise PolicyInvalid(f"policy {name!r}: Statement[{index}] needs Effect Allow or Deny")
        if not (st.get("Action") or st.get("NotAction")):
            raise PolicyInvalid(f"policy {name!r}: Statement[{index}] has no Action")
    return value


def normalise_policy(doc):
    """A canonical form for comparison: lists for Action/Resource (sorted, unique), sorted keys.

    MinIO stores a parsed policy and may return single values as lists and sets in another order;
    the meaning is the same, so the comparison must not see a difference.
    """
    if not doc:
        return None
    out = {k: v for k, v in doc.items() if k != "Statement"}
    out.setdefault("Version", "2012-10-17")
    statements = doc.get("Statement") or []
    if isinstance(statements, dict):
        statements = [statements]
    norm = []
    for st in statements:
        item = {}
        for key, value in st.items():
            if key in _LIST_FIELDS:
                values = value if isinstance(value, list) else [value]
                item[key] = sorted(set(values))
            elif key == "Sid" and not value:
                continue
            else:
                item[key] = value
        norm.append(item)
    out["Statement"] = norm
    return json.loads(json.dumps(out, sort_keys=True))


# ------------------------------------------------------------------------------------------------
# Connections and error translation
# ------------------------------------------------------------------------------------------------


class Connection:
    """S3 and admin clients for one endpoint, all verifying TLS with the given CA file."""

    def __init__(self, endpoint, access_key, secret_key, *, ca_file=None, region="us-east-1", timeout=30):
        if MINIO_IMPORT_ERROR is not None:
            raise MinioStateError(f"the minio Python SDK is not importable: {MINIO_IMPORT_ERROR}")
        if "://" in endpoint or "/" in endpoint:
            raise SpecError(f"endpoint must be host:port, not a URL: {endpoint!r}")
        if ca_file and not os.path.isfile(ca_file):
            raise SpecError(f"ca_file {ca_file} does not exist")
        self.endpoint = endpoint
        self.access_key, self.secret_key = access_key, secret_key
        self.region = region
        self.http = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_file or None,
            timeout=urllib3.Timeout(connect=min(timeout, 10), read=timeout),
            retries=urllib3.Retry(
                total=2, connect=1, read=1, backoff_factor=0.2, status_forcelist=[502, 503, 504]
            ),
            maxsize=4,
        )
        self.s3 = self.s3_as(access_key, secret_key)
        self.admin = self.admin_as(access_key, secret_key)

    def wait_ready(self, timeout, interval=2.0):
        """Wait, at most ``timeout`` seconds, until MinIO has initialised and has write quorum.

        MinIO answers /minio/health/live as soon as it listens, before its object layer exists;
        until then every S3 and admin call fails with 503 XMinioServerNotInitialized.
        /minio/health/cluster answers 200 only once the object layer (with IAM and bucket metadata)
        is up and the deployment has write quorum, for every layout, a single drive included
        (minio/minio RELEASE.2025-09-07T16-13-09Z cmd/healthcheck-handler.go ClusterCheckHandler
        and checkHealth). The probe is unauthenticated and changes nothing.
        """
        url = f"https://{self.endpoint}/minio/health/cluster"
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = self.http.request("GET", url, retries=False, preload_content=True)
                status, detail = response.status, response.headers.get("x-minio-server-status", "")
            except urllib3.exceptions.SSLError as exc:
                raise self._transport_error(exc, "wait until it is ready") from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                status, detail = None, str(exc)
            if status == 200:
                return
            if time.monotonic() >= deadline:
                state = f"HTTP {status}" if status else "no answer"
                if detail:
                    state += f" ({detail})"
                raise NotReady(
                    f"MinIO at {self.endpoint} did not become ready within {timeout}s: {url} answered "
                    f"{state}. It has not initialised or lacks write quorum: check that every node runs "
                    "and that each drive is its own filesystem (MinIO refuses drives on the root "
                    "filesystem), in the MinIO journal (journalctl -u minio); ready_timeout sets the wait"
                )
            time.sleep(min(interval, max(deadline - time.monotonic(), 0)))

    def s3_as(self, access_key, secret_key):
        return Minio(
            endpoint=self.endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=True,
            region=self.region,
            http_client=self.http,
        )

    def admin_as(self, access_key, secret_key):
        return MinioAdmin(
            endpoint=self.endpoint,
            credentials=StaticProvider(access_key, secret_key),
            region=self.region,
            secure=True,
            http_client=self.http,
        )

    def call(self, what, func, *args, **kwargs):
        """Run one SDK call; every failure becomes a typed error that names the endpoint."""
        try:
            return func(*args, **kwargs)
        except S3Error as exc:
            if exc.code in CREDENTIAL_ERRORS:
                raise CredentialsError(
                    f"MinIO at {self.endpoint} refused the credentials ({exc.code}) while trying to {what}: "
                    "check the access key and secret key"
                ) from exc
            raise ApiError(f"MinIO at {self.endpoint} failed to {what}: {exc.code}: {exc.message}") from exc
        except MinioAdminException as exc:
            code, message = admin_error(exc)
            if code in CREDENTIAL_ERRORS:
                raise CredentialsError(
                    f"MinIO at {self.endpoint} refused the credentials ({code}) while trying to {what}: "
                    "check the access key and secret key"
                ) from exc
            raise ApiError(f"MinIO at {self.endpoint} failed to {what}: {code}: {message}") from exc
        except (ServerError, InvalidResponseError) as exc:
            raise ApiError(f"MinIO at {self.endpoint} failed to {what}: {exc}") from exc
        except urllib3.exceptions.MaxRetryError as exc:
            raise self._transport_error(exc.reason, what) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._transport_error(exc, what) from exc

    def _transport_error(self, reason, what):
        if isinstance(reason, urllib3.exceptions.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(reason):
            return TLSFailure(
                f"TLS verification of MinIO at {self.endpoint} failed while trying to {what}: {reason}. "
                "Is ca_file the CA that signed MinIO's certificate, and does the certificate name this host?"
            )
        return EndpointUnreachable(f"cannot reach MinIO at {self.endpoint} to {what}: {reason}")

    def verify_login(self):
        """Fail early, with the real S3 error code, when MinIO refuses the module's own credentials.

        A HEAD request (bucket_exists, stat_object) carries no error body, so a wrong secret would
        otherwise surface as a bare AccessDenied; ListBuckets is a GET and names the problem.
        """
        try:
            self.call("log in", self.s3.list_buckets)
        except ApiError as exc:
            if not (isinstance(exc.__cause__, S3Error) and exc.__cause__.code == "AccessDenied"):
                raise

    def credentials_valid(self, access_key, secret_key):
        """True if MinIO accepts this key pair's signature (see the module docstring)."""
        try:
            self.s3_as(access_key, secret_key).list_buckets()
        except S3Error as exc:
            if exc.code in CREDENTIAL_ERRORS:
                return False
            if exc.code == "AccessDenied":
                return True
            raise ApiError(f"MinIO at {self.endpoint} failed to check a secret key: {exc.code}") from exc
        except urllib3.exceptions.MaxRetryError as exc:
            raise self._transport_error(exc.reason, "check a secret key") from exc
        return True


def admin_error(exc):
    """(code, message) from a MinioAdminException's JSON body."""
    body = getattr(exc, "_body", "") or ""
    try:
        data = json.loads(body)
        return data.get("Code", ""), data.get("Message", body)
    except ValueError:
        return f"HTTP {getattr(exc, '_code', '?')}", body


def admin_status(exc):
    try:
        return int(getattr(exc, "_code", 0))
    except ValueError:
        return 0


# ------------------------------------------------------------------------------------------------
# Reconciliation
# ------------------------------------------------------------------------------------------------


# The kinds of object the module converges, in the order of its state and diff.
STATE_KINDS = ("policies", "users", "service_accounts", "buckets", "objects")


@dataclass
class Result:
    check_mode: bool
    changes: list = field(default_factory=list)
    before: dict = field(default_factory=lambda: {kind: {} for kind in STATE_KINDS})
    after: dict = field(default_factory=lambda: {kind: {} for kind in STATE_KINDS})

    def change(self, kind, name, action, reason):
        self.changes.append({"type": kind, "name": name, "action": action, "reason": reason})

    @property
    def changed(self):
        return bool(self.changes)

    def summary(self):
        verb = "would change" if self.check_mode else "changed"
        if not self.changes:
            return "MinIO is in the desired state"
        items = "; ".join(f"{c['type']} {c['name']}: {c['reason']}" for c in self.changes)
        return f"{len(self.changes)} {verb}: {items}"


class MinioState:
    """Compare MinIO with the desired state and, unless in check mode, make them equal."""

    def __init__(self, conn, *, check_mode=False):
        self.conn = conn
        self.check_mode = check_mode
        self.result = Result(check_mode)
        self.user_secrets = {}

    def apply(
        self,
        *,
        policies=(),
        users=(),
        service_accounts=(),
        buckets=(),
        objects=(),
        seed_root=None,
        ready_timeout=0,
    ):
        docs = {p["name"]: parse_policy(p["name"], p["policy"]) for p in policies}
        self._validate_spec(users, service_accounts, buckets)
        seeds = [(spec, check_seed(spec, seed_root)) for spec in objects]  # before anything changes
        if ready_timeout > 0:
            self.conn.wait_ready(ready_timeout)
        self.conn.verify_login()
        for name, doc in docs.items():
            self.policy(name, doc)
        for user in users:
            self.user(user)
        for sa in service_accounts:
            self.service_account(sa)
        for bucket in buckets:
            self.bucket(bucket)
        for spec, files in seeds:
            self.seed(spec, files)
        return self.result

    def _validate_spec(self, users, service_accounts, buckets):
        for user in users:
            if user["access_key"] == self.conn.access_key:
                raise SpecError(
                    f"user {user['access_key']!r} is the root user; root is configured by the server"
                )
            if len(user["secret_key"] or "") < 8:
                raise SpecError(
                    f"user {user['access_key']!r}: secret_key must be at least 8 characters (MinIO)"
                )
            self.user_secrets[user["access_key"]] = user["secret_key"]
        for sa in service_accounts:
            if not 3 <= len(sa["access_key"]) <= 20 or not 8 <= len(sa["secret_key"] or "") <= 40:
                raise SpecError(
                    f"service account {sa['access_key']!r}: access_key must be 3-20 and secret_key 8-40 "
                    "characters (MinIO)"
                )
            parent = sa.get("user")
            if parent and parent not in self.user_secrets and parent != self.conn.access_key:
                raise SpecError(
                    f"service account {sa['access_key']!r}: its user {parent!r} must be listed in users "
                    "(a user's service account is created with that user's own credentials)"
                )
        for bucket in buckets:
            if bucket.get("object_lock") and bucket.get("versioning") is False:
                raise SpecError(f"bucket {bucket['name']!r}: object locking requires versioning")
            history.check_spec(bucket)

    # -- policies ---------------------------------------------------------------------------------
    def policy(self, name, doc):
        conn = self.conn
        current = _admin_read(conn, f"read policy {name}", conn.admin.policy_info, name)
        want = normalise_policy(doc)
        have = normalise_policy(current) if current else None
        self.result.before["policies"][name] = have
        self.result.after["policies"][name] = want
        if have == want:
            return
        self.result.change(
            "policy",
            name,
            "create" if have is None else "update",
            "created" if have is None else "document differs",
        )
        if not self.check_mode:
            conn.call(f"write policy {name}", conn.admin.policy_add, name, policy=doc)

    # -- users --------------------------------------------------------------------------------------
    def user(self, spec):
        conn = self.conn
        ak, sk = spec["access_key"], spec["secret_key"]
        want_policies = sorted(set(spec.get("policies") or []))
        info = _admin_read(conn, f"read user {ak}", conn.admin.user_info, ak)
        have_policies = sorted(p for p in (info or {}).get("policyName", "").split(",") if p) if info else []
        self.result.before["users"][ak] = {
            "exists": info is not None,
            "policies": have_policies,
            "status": (info or {}).get("status"),
        }
        self.result.after["users"][ak] = {"exists": True, "policies": want_policies, "status": "enabled"}
        if info is None:
            self.result.change("user", ak, "create", "created")
            if not self.check_mode:
                conn.call(f"create user {ak}", conn.admin.user_add, ak, sk)
        else:
            if info.get("status") != "enabled":
                self.result.change("user", ak, "enable", f"status was {info.get('status')}")
                if not self.check_mode:
                    conn.call(f"enable user {ak}", conn.admin.user_enable, ak)
            if info.get("status") == "enabled" and not conn.credentials_valid(ak, sk):
                self.result.change("user", ak, "update", "secret key differs")
                if not self.check_mode:
                    conn.call(f"set the secret key of user {ak}", conn.admin.user_add, ak, sk)
        attach = sorted(set(want_policies) - set(have_policies))
        detach = sorted(set(have_policies) - set(want_policies))
        if attach:
            self.result.change("user", ak, "attach", "attach policies " + ", ".join(attach))
            if not self.check_mode:
                conn.call(f"attach policies to user {ak}", conn.admin.attach_policy, attach, user=ak)
        if detach:
            self.result.change("user", ak, "detach", "detach policies " + ", ".join(detach))
            if not self.check_mode:
                conn.call(f"detach policies from user {ak}", conn.admin.detach_policy, detach, user=ak)

    # -- service accounts ---------------------------------------------------------------------------
    def service_account(self, spec):  # noqa: PLR0912 - one branch per kind of difference
        conn = self.conn
        ak, sk = spec["access_key"], spec["secret_key"]
        parent = spec.get("user") or conn.access_key
        want_policy = parse_policy(f"service account {ak}", spec["policy"]) if spec.get("policy") else None
        want = {
            "user": parent,
            "name": spec.get("name") or "",
            "description": spec.get("description") or "",
            "policy": normalise_policy(want_policy),
        }
        info = _admin_read(conn, f"read service account {ak}", conn.admin.get_service_account, ak)
        have = None
        if info is not None:
            policy = info.get("policy") or None
            if isinstance(policy, str):
                policy = json.loads(policy) if policy.strip() else None
            have = {
                "user": info.get("parentUser", ""),
                "name": info.get("name") or "",
                "description": info.get("description") or "",
                "policy": None if info.get("impliedPolicy") else normalise_policy(policy),
            }
        self.result.before["service_accounts"][ak] = have
        self.result.after["service_accounts"][ak] = want
        if have is not None and have["user"] != parent:
            raise SpecError(
                f"service account {ak!r} belongs to {have['user']!r}, not {parent!r}; MinIO cannot move it: "
                "delete it (mc admin user svcacct rm) or choose another access key"
            )
        if have is not None and have["policy"] is not None and want["policy"] is None:
            self.result.change("service_account", ak, "recreate", "inline policy removed")
            if not self.check_mode:
                conn.call(f"delete service account {ak}", conn.admin.delete_service_account, ak)
            have = None
        if have is None:
            self.result.change("service_account", ak, "create", f"created for {parent}")
            if not self.check_mode:
                signer = (
                    conn.admin
                    if parent == conn.access_key
                    else conn.admin_as(parent, self.user_secrets[parent])
                )
                conn.call(
                    f"create service account {ak}",
                    signer.add_service_account,
                    access_key=ak,
                    secret_key=sk,
                    name=want["name"] or None,
                    description=want["description"] or None,
                    policy=want_policy,
                )
            return
        update = {}
        reasons = []
        for key in ("name", "description"):
            if have[key] != want[key] and want[key]:
                update[key] = want[key]
                reasons.append(f"{key} differs")
        if have["policy"] != want["policy"]:
            update["policy"] = want_policy
            reasons.append("inline policy differs")
        if not conn.credentials_valid(ak, sk):
            update["secret_key"] = sk
            reasons.append("secret key differs")
        if update:
            self.result.change("service_account", ak, "update", ", ".join(reasons))
            if not self.check_mode:
                conn.call(
                    f"update service account {ak}", conn.admin.update_service_account, access_key=ak, **update
                )

    # -- buckets ------------------------------------------------------------------------------------
    def bucket(self, spec):
        conn = self.conn
        name = spec["name"]
        lock = bool(spec.get("object_lock"))
        versioning = spec.get("versioning")
        if lock:
            versioning = True
        exists = conn.call(f"check bucket {name}", conn.s3.bucket_exists, bucket_name=name)
        have = {"exists": exists, "versioning": None, "object_lock": None}
        if exists:
            status = conn.call(
                f"read versioning of bucket {name}", conn.s3.get_bucket_versioning, bucket_name=name
            ).status
            have["versioning"] = status
            have["object_lock"] = self._has_object_lock(name)
        want_status = None
        if versioning is True:
            want_status = ENABLED
        elif versioning is False:
            want_status = SUSPENDED if have["versioning"] not in (None, "Off") else "Off"
        want = {
            "exists": True,
            "versioning": want_status if want_status is not None else have["versioning"] or "Off",
            "object_lock": lock or bool(have["object_lock"]),
        }
        self.result.before["buckets"][name] = have
        self.result.after["buckets"][name] = want
        if not exists:
            self.result.change("bucket", name, "create", "created" + (" with object locking" if lock else ""))
            if not self.check_mode:
                conn.call(f"create bucket {name}", conn.s3.make_bucket, bucket_name=name, object_lock=lock)
            have["versioning"] = ENABLED if lock else "Off"
        elif lock and not have["object_lock"]:
            raise SpecError(
                f"bucket {name!r} exists without object locking; MinIO enables object locking only when a "
                "bucket is created (create a new bucket and copy the objects)"
            )
        if want_status is not None and want_status != (have["versioning"] or "Off"):
            self.result.change(
                "bucket", name, "versioning", f"versioning {have['versioning'] or 'Off'} -> {want_status}"
            )
            if not self.check_mode:
                conn.call(
                    f"set versioning of bucket {name}",
                    conn.s3.set_bucket_versioning,
                    bucket_name=name,
                    config=VersioningConfig(want_status),
                )
        history.converge(self, spec, exists or not self.check_mode)

    def _has_object_lock(self, name):
        try:
            config = self.conn.s3.get_object_lock_config(bucket_name=name)
        except S3Error as exc:
            if exc.code in ("ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"):
                return False
            return self.conn.call(f"read object lock of bucket {name}", _raise, exc)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return self.conn.call(f"read object lock of bucket {name}", _raise, exc)
        return config is not None

    # -- seed objects ----------------------------------------------------------------------------
    def seed(self, spec, files):
        """Upload the files check_seed() accepted whose object differs."""
        conn = self.conn
        bucket, prefix = spec["bucket"], spec.get("prefix") or ""
        declared = self.result.before["buckets"].get(bucket)
        if declared is not None:  # managed in this run: created already, unless in check mode
            bucket_exists = declared["exists"] or not self.check_mode
        else:
            bucket_exists = conn.call(f"check bucket {bucket}", conn.s3.bucket_exists, bucket_name=bucket)
            if not bucket_exists:
                raise SpecError(f"objects: bucket {bucket!r} does not exist; list it under buckets")
        for seed_file in files:
            key = prefix + seed_file.rel
            have = self._stat(bucket, key) if bucket_exists else None
            label = f"{bucket}/{key}"
            self.result.before["objects"][label] = have["sha256"] if have else None
            self.result.after["objects"][label] = seed_file.sha256
            if have and (
                have["sha256"] == seed_file.sha256 or (not have["sha256"] and have["etag"] == seed_file.md5)
            ):
                continue
            reason = "uploaded" if have is None else "content differs"
            self.result.change("object", label, "upload", reason)
            if not self.check_mode:
                self._upload(bucket, key, seed_file)

    def _upload(self, bucket, key, seed_file):
        """Upload a private copy of the file, made and checked in one read, so the bytes MinIO gets
        are the ones whose sha256 was checked even if the file changes meanwhile."""
        with tempfile.TemporaryFile(prefix="island-minio-seed-") as copy:
            digest = copy_digest(seed_file.path, copy)
            if digest != seed_file.sha256:
                raise SeedRefused(
                    f"objects: {seed_file.path} changed after it was checked (sha256 {digest}, checked "
                    f"{seed_file.sha256}); nothing of it was uploaded: verify the bundle again"
                )
            size = copy.tell()
            copy.seek(0)
            self.conn.call(
                f"upload {seed_file.path} to {bucket}/{key}",
                self.conn.s3.put_object,
                bucket_name=bucket,
                object_name=key,
                data=copy,
                length=size,
                content_type=mimetypes.guess_type(seed_file.path)[0] or "application/octet-stream",
                metadata={SEED_METADATA_KEY: seed_file.sha256},
            )

    def _stat(self, bucket, key):
        try:
            stat = self.conn.s3.stat_object(bucket_name=bucket, object_name=key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return None
            return self.conn.call(f"read object {bucket}/{key}", _raise, exc)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return self.conn.call(f"read object {bucket}/{key}", _raise, exc)
        meta = stat.metadata or {}
        sha = meta.get("x-amz-meta-" + SEED_METADATA_KEY) or meta.get(
            "X-Amz-Meta-" + SEED_METADATA_KEY.capitalize()
        )
        return {"sha256": sha, "etag": (stat.etag or "").strip('"')}


def _raise(exc):
    raise exc


def _admin_read(conn, what, method, *args):
    """The JSON an admin API read returns, or None when MinIO answers 404 (no such object)."""
    try:
        return json.loads(conn.call(what, method, *args))
    except ApiError as exc:
        if not _is_admin_404(exc):
            raise
        return None


def _is_admin_404(exc):
    cause = exc.__cause__
    return isinstance(cause, MinioAdminException) and admin_status(cause) == 404
