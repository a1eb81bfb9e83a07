"""A diff of a secret-bearing file that names the keys that change and never shows a value.

Note that this module util is PRIVATE to this repository; it can change at any time.

The roles write files that hold secrets (Gitea's app.ini with a database password, MinIO's root
credentials, the registry's configuration and htpasswd files, k3s's config.yaml with the join
token) with ``no_log``, so ``--check --diff`` shows only "censored" for them. ``masked_diff()``
parses the file on the host and the content the role would write in the file's own format and
returns one line per key that is added, removed or changed, every value replaced by a mask. It
runs on the controller (the ``island_masked_diff`` filter) from what ``slurp`` read; PyYAML
comes with ansible-core.

Formats: ``ini`` (``[section] KEY = value``, go-ini as Gitea reads it), ``env`` (``KEY=value``,
systemd EnvironmentFile), ``yaml`` (nested keys as a dotted path, list items by index),
``htpasswd`` (``user:hash``, one key per user).
"""

from __future__ import annotations

import re

import yaml

MASK = "********"
FORMATS = ("ini", "env", "yaml", "htpasswd")


class MaskedDiffError(ValueError):
    """A bad call (unknown format); never carries file content."""


def _ini(text):
    keys, section = {}, ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError("no key-value delimiter")
        name = f"[{section}] {key.strip()}" if section else key.strip()
        keys[name] = value.strip()
    return keys


def _env(text):
    keys = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError("no key-value delimiter")
        keys[re.sub(r"^export\s+", "", key.strip())] = value.strip()
    return keys


def _flatten(value, prefix, out):
    if isinstance(value, dict):
        if not value and prefix:
            out[prefix] = "{}"
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        if not value and prefix:
            out[prefix] = "[]"
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}[{index}]", out)
    else:
        out[prefix or "(document)"] = repr(value)
    return out


def _yaml(text):
    return _flatten(yaml.safe_load(text) if text.strip() else {}, "", {})


def _htpasswd(text):
    keys = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        user, sep, hashed = line.partition(":")
        if not sep:
            raise ValueError("no ':' between user and hash")
        keys[user] = hashed
    return keys


_PARSE_ERRORS = (ValueError, TypeError, yaml.YAMLError)
_PARSERS = {"ini": _ini, "env": _env, "yaml": _yaml, "htpasswd": _htpasswd}


def masked_diff(before, after, fmt, name):
    """Lines naming each key of ``name`` that ``after`` adds, removes or changes against
    ``before`` (None: the file does not exist yet); no line when nothing changes. Values never
    appear: a changed value shows as ``MASK -> MASK``. Content that does not parse in ``fmt``
    is reported as differing, without content."""
    if fmt not in _PARSERS:
        raise MaskedDiffError(
            f"masked diff of {name}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}"
        )
    before_text = None if before is None else str(before)
    after_text = str(after)
    if before_text == after_text:
        return []
    parse = _PARSERS[fmt]
    try:
        old = {} if before_text is None else parse(before_text)
    except _PARSE_ERRORS:  # its message may quote content: not passed on
        return [
            f"{name}: the file on the host is not readable as {fmt}; it would be replaced (values masked)"
        ]
    try:
        new = parse(after_text)
    except _PARSE_ERRORS:
        return [f"{name}: the new content is not readable as {fmt} (values masked)"]
    lines = []
    if before_text is None:
        lines.append(f"{name}: new file")
    for key in sorted(set(old) | set(new)):
        if key not in old:
            lines.append(f"{name}: + {key} = {MASK} (added)")
        elif key not in new:
            lines.append(f"{name}: - {key} = {MASK} (removed)")
        elif old[key] != new[key]:
            lines.append(f"{name}: ~ {key} = {MASK} -> {MASK} (changed)")
    if len(lines) == (1 if before_text is None else 0):
        lines.append(f"{name}: comments, order or layout change; no key changes (values masked)")
    return lines
