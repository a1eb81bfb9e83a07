# Copyright: island installer contributors
# What the previous receipt said about hosts a run did not reach (docs/receipt.md, "Hosts not
# reached"). A run with --limit, or a host that did not answer, must not turn the island-wide
# receipt into a partial one: each host not reached keeps the components and certificates the
# previous receipt recorded for it, marked `reached: false` with `last_seen`.
#
# The receipt stays deterministic: a rerun on an unchanged island writes nothing. So no time of the
# run goes in unless the document changes anyway:
#   - `written_at`: the time of the run that last changed the document. Computed last: when the
#     document without it equals the previous one, the previous `written_at` is kept.
#   - `hosts.<h>.last_seen` (hosts not reached only): the `written_at` of the last receipt in which
#     the host was reached, carried unchanged while it stays unreached. The host was seen then; it
#     may have been seen again, unchanged, by runs that wrote nothing (a lower bound, never later
#     than the truth).
from __future__ import annotations

import datetime
import json
import os
import stat

from ansible_collections.island.installer.plugins.module_utils.island_receipt import (
    SCHEMA_VERSION,
    component_summary,
    render,
)

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_now():
    return datetime.datetime.now(datetime.UTC).strftime(TIME_FORMAT)


def read_previous(path, domain):
    """(the receipt at ``path`` as a dict, or None; a note for the operator, or "").

    None without a note when there is no receipt yet (or no regular file: write_receipt refuses it,
    naming the fix). A file that is not a receipt of this schema, or the receipt of another island,
    is not carried from, with a note saying so: the new receipt then records the hosts not reached
    as `host not reached`, as a first receipt does.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None, ""
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return (
            None,
            f"the previous receipt {path} cannot be read ({exc.strerror}): nothing is carried from it",
        )
    except ValueError as exc:
        return None, f"the previous receipt {path} is not JSON ({exc}): nothing is carried from it"
    if not isinstance(doc, dict) or doc.get("schema_version") != SCHEMA_VERSION:
        problem = f"is not a receipt of schema version {SCHEMA_VERSION}"
    elif doc.get("island_domain") != domain:
        problem = (
            f"is the receipt of the island {doc.get('island_domain')!r}, not {domain!r} (set "
            "island_receipt_path to this island's receipt)"
        )
    elif not isinstance(doc.get("hosts"), dict):
        problem = "has no hosts mapping"
    else:
        return doc, ""
    return None, f"{path} {problem}: nothing is carried from it for the hosts this run did not reach"


def _previous_host(previous, name):
    entry = (previous or {}).get("hosts", {}).get(name)
    if not isinstance(entry, dict) or not isinstance(entry.get("components"), dict):
        return None
    return entry


def carried_certificates(hosts, previous):
    """The certificates the previous receipt recorded for the hosts not reached this run."""
    carried = {h["name"] for h in hosts if not h.get("reached", True) and _previous_host(previous, h["name"])}
    return [
        dict(c)
        for c in (previous or {}).get("certificates") or []
        if isinstance(c, dict) and c.get("host") in carried
    ]


def _carry_host(entry, before, previous):
    """``entry`` of a host not reached (its components all `host not reached`), with what
    ``before`` (its entry in the previous receipt) recorded, and when it was last seen."""
    if before is None:
        return {**entry, "last_seen": None}
    expected = set(entry["components"])
    components = {
        name: {**state, "expected": name in expected}
        for name, state in before["components"].items()
        if isinstance(state, dict) and isinstance(state.get("state"), str)
    }
    for name, state in entry["components"].items():
        components.setdefault(name, dict(state))
    # Reached in the previous receipt: seen when it was written. Not reached then either: as it said.
    last_seen = previous.get("written_at") if before.get("reached", True) else before.get("last_seen")
    return {**entry, "components": dict(sorted(components.items())), "last_seen": last_seen}


def carry_forward(doc, bundle_components, previous, now=None):
    """The receipt ``doc`` (from build_document) with the hosts it did not reach filled in from
    ``previous`` (read_previous), the component summary made again over them, and `written_at`:
    the previous one when nothing else changed, else ``now`` (utc_now() by default)."""
    hosts = {}
    for name, entry in doc["hosts"].items():
        hosts[name] = (
            entry if entry["reached"] else _carry_host(entry, _previous_host(previous, name), previous)
        )
    out = {**doc, "hosts": hosts, "components": component_summary(hosts, bundle_components or {})}
    out.pop("written_at", None)
    if previous and previous.get("written_at"):
        unchanged = {**out, "written_at": previous["written_at"]}
        if render(unchanged) == render(previous):
            return unchanged
    return {**out, "written_at": now or utc_now()}


def hosts_not_reached(doc):
    """Short phrases for the summary line: each host this run did not reach, and when it was seen."""
    return [
        f"{name} not reached (last seen {entry.get('last_seen') or 'never'})"
        for name, entry in doc["hosts"].items()
        if not entry["reached"]
    ]
