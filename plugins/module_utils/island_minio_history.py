# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A bucket's history kept from its writers: object lock default retention and the lifecycle rule
that expires noncurrent versions (island_minio's buckets[].retention_days and noncurrent_days).

What MinIO RELEASE.2025-09-07T16-13-09Z does, and why both are needed for k3s's snapshot bucket
(docs/backup.md, "The snapshot history"):

* Deleting a version (DELETE ?versionId=, or a DeleteObjects entry with a VersionId) is authorised
  as s3:DeleteObject; s3:DeleteObjectVersion is only checked for an explicit Deny (cmd/auth-handler.go
  authorizeRequest, ``DenyOnly: true``; minio/pkg v3.1.3 policy.Policy.IsAllowed). A policy that
  merely leaves s3:DeleteObjectVersion out lets the account delete every version: the tenant
  policy denies it explicitly.
* DELETE with ``x-minio-force-delete: true`` removes every version under the key as a prefix, gated
  by s3:DeleteObject alone (cmd/object-handlers.go DeleteObjectHandler, cmd/object-api-options.go
  delOpts, cmd/erasure-object.go deletePrefix), and is refused only in a bucket with object locking
  ("force-delete is forbidden on Object Locking enabled buckets"). Object locking is enabled only
  when a bucket is created (cmd/bucket-handlers.go PutBucketObjectLockConfigHandler,
  ErrObjectLockConfigurationNotAllowed).
* A default retention (GOVERNANCE, N days) locks each new version for N days; only an account
  allowed s3:BypassGovernanceRetention (root) can delete it sooner.
* Lifecycle: NoncurrentVersionExpiration with NoncurrentDays removes a version N days after it
  stopped being current; the rule needs an ID of at most 255 characters, Status Enabled or
  Disabled, and NoncurrentDays > 0 (internal/bucket/lifecycle lifecycle.go Validate, rule.go,
  noncurrentversion.go); PutBucketLifecycle needs Content-MD5 (cmd/bucket-lifecycle-handlers.go).
"""

from __future__ import annotations

from ansible_collections.island.installer.plugins.module_utils.island_minio_errors import SpecError

try:
    from minio.commonconfig import ENABLED, Filter
    from minio.error import S3Error
    from minio.lifecycleconfig import LifecycleConfig, NoncurrentVersionExpiration, Rule
    from minio.objectlockconfig import DAYS, GOVERNANCE, ObjectLockConfig
except ImportError:  # island_minio reports the missing SDK
    pass

# The rule the island owns in a bucket's lifecycle configuration.
RULE_ID = "island-noncurrent-expiry"


def check_spec(bucket):
    """Refuse settings MinIO would refuse, before anything changes."""
    name = bucket["name"]
    for key in ("retention_days", "noncurrent_days"):
        value = bucket.get(key)
        if value is not None and value < 1:
            raise SpecError(f"bucket {name!r}: {key} must be at least 1 day (MinIO refuses 0), not {value}")
    if bucket.get("retention_days") and not bucket.get("object_lock"):
        raise SpecError(
            f"bucket {name!r}: retention_days needs object_lock (a default retention locks versions)"
        )
    if bucket.get("noncurrent_days") and not (bucket.get("versioning") or bucket.get("object_lock")):
        raise SpecError(
            f"bucket {name!r}: noncurrent_days expires older versions, which only a versioned bucket "
            "keeps: set versioning (or object_lock)"
        )


def read(conn, name):
    """{'retention_days', 'noncurrent_days'} as MinIO holds them for an existing bucket."""
    retention = None
    try:
        lock = conn.s3.get_object_lock_config(bucket_name=name)
        if lock.mode == GOVERNANCE and lock.duration_unit == DAYS:
            retention = lock.duration
        elif lock.mode is not None:
            retention = f"{lock.mode} {lock.duration} {lock.duration_unit}"
    except S3Error as exc:
        if exc.code not in ("ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound"):
            conn.call(f"read the object lock of bucket {name}", _raise, exc)
    config = conn.call(f"read the lifecycle of bucket {name}", conn.s3.get_bucket_lifecycle, bucket_name=name)
    noncurrent = None
    for rule in config.rules if config else []:
        if rule.rule_id == RULE_ID and rule.status == ENABLED and rule.noncurrent_version_expiration:
            noncurrent = rule.noncurrent_version_expiration.noncurrent_days
    return {"retention_days": retention, "noncurrent_days": noncurrent, "_lifecycle": config}


def _raise(exc):
    raise exc


def converge(state, bucket, exists):
    """Make the bucket's default retention and noncurrent expiry those of ``bucket`` (only the ones
    given; unset leaves MinIO's as they are). ``state`` is island_minio's MinioState."""
    conn, result, name = state.conn, state.result, bucket["name"]
    want_retention, want_noncurrent = bucket.get("retention_days"), bucket.get("noncurrent_days")
    if want_retention is None and want_noncurrent is None:
        return
    have = (
        read(conn, name) if exists else {"retention_days": None, "noncurrent_days": None, "_lifecycle": None}
    )
    result.before["buckets"][name].update(
        retention_days=have["retention_days"], noncurrent_days=have["noncurrent_days"]
    )
    result.after["buckets"][name].update(
        retention_days=want_retention if want_retention is not None else have["retention_days"],
        noncurrent_days=want_noncurrent if want_noncurrent is not None else have["noncurrent_days"],
    )
    if want_retention is not None and have["retention_days"] != want_retention:
        result.change(
            "bucket",
            name,
            "retention",
            f"default retention {have['retention_days']} -> GOVERNANCE {want_retention} days",
        )
        if not state.check_mode:
            conn.call(
                f"set the default retention of bucket {name}",
                conn.s3.set_object_lock_config,
                bucket_name=name,
                config=ObjectLockConfig(GOVERNANCE, want_retention, DAYS),
            )
    if want_noncurrent is not None and have["noncurrent_days"] != want_noncurrent:
        result.change(
            "bucket",
            name,
            "lifecycle",
            f"noncurrent versions expire after {have['noncurrent_days']} -> {want_noncurrent} days",
        )
        if not state.check_mode:
            # The island's rule replaces its earlier self; other rules of the bucket are kept.
            others = [
                r for r in (have["_lifecycle"].rules if have["_lifecycle"] else []) if r.rule_id != RULE_ID
            ]
            rule = Rule(
                ENABLED,
                rule_filter=Filter(prefix=""),
                rule_id=RULE_ID,
                noncurrent_version_expiration=NoncurrentVersionExpiration(noncurrent_days=want_noncurrent),
            )
            conn.call(
                f"set the lifecycle of bucket {name}",
                conn.s3.set_bucket_lifecycle,
                bucket_name=name,
                config=LifecycleConfig([*others, rule]),
            )
