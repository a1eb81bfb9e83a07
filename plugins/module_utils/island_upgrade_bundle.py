# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which bundle the island last took, and whether a bundle may follow it (no silent rollback).

The signature proves who built a bundle, not that it is the newest: a validly signed older bundle
verifies. Applied, it would move images, git refs and seed objects back, even where every
component's version is the same. So the island records the last bundle it took, as
``{name, version, created, lock_sha256}`` (the lock's own fields and the sha256 of the lock's bytes
whose signature was checked), on the controller and on every host; ``decide()`` compares the new
bundle with every record it finds and refuses, unless the operator names the new bundle's exact
version as the one to roll back to (``upgrade_rollback_to``):

- an older version than one recorded;
- the same version as one recorded, but another lock (two different bundles under one version);
- a bundle of another name (another line of bundles, whose versions do not order with these).

The same lock as recorded, or a newer version, passes. With no record anywhere (day 1), it passes.

Bundle versions are ordered as semantic versions when both are (``2026.11.0`` < ``2026.12.0``,
``1.0.0-rc1`` < ``1.0.0``), otherwise by their runs of digits as numbers and of other characters
as text (``r9`` < ``r10``).
"""

from __future__ import annotations

import functools
import json
import re

__all__ = ["RECORD_FIELDS", "compare_versions", "decide", "record_problem", "semver_key"]

RECORD_FIELDS = ("name", "version", "created", "lock_sha256")
ROLLBACK_VARIABLE = "upgrade_rollback_to"

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def semver_key(version: str) -> tuple | None:
    """A key that orders semantic versions (``1.14.2``, ``v2.8.2``, ``1.0.0-rc.1``), or None."""
    match = _SEMVER.match(version)
    if not match:
        return None
    major, minor, patch, pre = match.groups()
    # A pre-release sorts before its release (semver.org item 11); identifiers compared in order.
    pre_key = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")) if pre else ()
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre_key)


def _natural_key(version: str) -> tuple:
    return tuple(
        (0, int(run), "") if run.isdigit() else (1, 0, run) for run in re.findall(r"\d+|\D+", version)
    )


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1 as bundle version ``left`` is older than, equal to or newer than ``right``."""
    if left == right:
        return 0
    key_a, key_b = semver_key(left), semver_key(right)
    if key_a is None or key_b is None:
        key_a, key_b = _natural_key(left), _natural_key(right)
    return (key_a > key_b) - (key_a < key_b)


def record_problem(record) -> str | None:
    """Why ``record`` (as read from a controller or host file) is not a bundle record, or None."""
    if not isinstance(record, dict):
        return "is not a JSON object (name, version, created, lock_sha256)"
    missing = [f for f in RECORD_FIELDS if not isinstance(record.get(f), str) or not record[f]]
    if missing:
        return f"lacks {', '.join(missing)}"
    if not _SHA256.fullmatch(record["lock_sha256"]):
        return "has a lock_sha256 that is not 64 lowercase hex characters"
    return None


def _describe(record: dict) -> str:
    return (
        f"{record['name']} {record['version']} (created {record['created']}, lock sha256"
        f" {record['lock_sha256'][:12]})"
    )


def _conflict(bundle: dict, record: dict, where: str) -> str | None:
    """Why ``bundle`` may not follow ``record`` without the operator's word, or None."""
    if record["lock_sha256"] == bundle["lock_sha256"]:
        return None
    order = compare_versions(bundle["version"], record["version"])
    if record["name"] != bundle["name"]:
        return (
            f"is a bundle of another name than {_describe(record)}, last applied here (recorded on"
            f" {where}): their versions do not order"
        )
    if order < 0:
        return (
            f"is older than {_describe(record)}, last applied here (recorded on {where}): it would move"
            " images, git refs and seed objects back"
        )
    if order == 0:
        return (
            f"is not the bundle {_describe(record)} last applied here under the same version (recorded"
            f" on {where}): two different bundles carry one version; build the new one under a new"
            " version"
        )
    return None


def _collect(applied: dict, refused: list[str]) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """The distinct records (by lock) of ``applied``, and where each was found; a record this
    installer did not write is refused."""
    where_by_lock: dict[str, list[str]] = {}
    records: dict[str, dict] = {}
    for source in sorted(applied):
        record = applied[source]
        if record is None:
            continue
        if isinstance(record, (str, bytes)):
            try:
                record = json.loads(record)
            except ValueError:
                record = None
        problem = record_problem(record)
        if problem:
            refused.append(
                f"the bundle record on {source} {problem}: this installer did not write it; restore it"
                " from a backup, or remove it if no bundle was ever applied there"
            )
            continue
        where_by_lock.setdefault(record["lock_sha256"], []).append(source)
        records.setdefault(record["lock_sha256"], {k: record[k] for k in RECORD_FIELDS})
    return records, where_by_lock


def _line(bundle: dict, newest_first: list[dict], action: str) -> str:
    if not newest_first:
        return f"bundle: {_describe(bundle)} (no bundle recorded yet: installed)"
    if action == "unchanged":
        return f"bundle: {_describe(bundle)} (unchanged)"
    return f"bundle: {_describe(newest_first[0])} -> {_describe(bundle)} ({action})"


def decide(bundle: dict, applied: dict, rollback_to: str | None = None) -> dict:
    """Whether ``bundle`` (the record of the verified bundle) may follow the ``applied`` records.

    ``applied`` maps where a record was read (``controller (<path>)``, a host name) to the record
    (a mapping, or the JSON text of the file), or to None where there is none. Returns ``action``
    (install: nothing recorded; unchanged: the same lock everywhere; upgrade; rollback: allowed by
    ``rollback_to``), ``refused`` (messages naming both bundles, where each record was found and
    the variable), ``line`` (the plan's line) and ``recorded`` (the distinct records found, newest
    first).
    """
    problem = record_problem(bundle)
    if problem:
        refusal = f"the verified bundle's record {problem}"
        return {"action": None, "refused": [refusal], "line": "", "recorded": []}
    refused: list[str] = []
    records, where_by_lock = _collect(applied, refused)
    newest_first = sorted(
        records.values(), key=functools.cmp_to_key(lambda a, b: compare_versions(b["version"], a["version"]))
    )
    wanted = "" if rollback_to is None else str(rollback_to)
    if wanted and wanted != bundle["version"]:
        refused.append(
            f"{ROLLBACK_VARIABLE} is {wanted!r} but the bundle to apply is {_describe(bundle)}: the"
            f" variable names the one version you roll back to on purpose; set it to"
            f" {bundle['version']!r} for this bundle, or leave it unset"
        )
    conflicts = [
        why
        for record in newest_first
        if (why := _conflict(bundle, record, ", ".join(where_by_lock[record["lock_sha256"]])))
    ]
    if not records:
        action = "install"
    elif conflicts:
        action = "rollback"
        if wanted != bundle["version"]:
            refused += [
                f"the bundle {_describe(bundle)} {why}. To apply it on purpose, name its version:"
                f" -e {ROLLBACK_VARIABLE}={bundle['version']} (docs/upgrades.md, 'Rolling back')"
                for why in conflicts
            ]
    elif all(lock == bundle["lock_sha256"] for lock in records):
        action = "unchanged"
    else:
        action = "upgrade"
    return {
        "action": action,
        "refused": refused,
        "line": _line(bundle, newest_first, action),
        "recorded": newest_first,
    }
