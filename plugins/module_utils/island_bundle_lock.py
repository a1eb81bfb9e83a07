"""The island bundle's lock file: its schema, errors, parsing, validation and canonical dump.

Note that this module util is PRIVATE to this repository; it can change at any time.

``load_lock()`` parses and validates a lock (``validate_lock()`` reports every problem at once, each
naming the field at fault); ``dump_lock()`` writes the canonical form the signature covers. Every
error of the bundle code is a :class:`BundleError` (defined here, raised by ``island_bundle`` too).
See ``docs/bundle-format.md``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml
from ansible_collections.island.installer.plugins.module_utils.island_oci_common import (
    OCI_INDEX,
    ImageReference,
    OCIError,
)

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
LOCK_NAME = "island-bundle.yml"
SIGNATURE_NAME = "island-bundle.yml.sig"
NAMESPACE = "island-bundle"
# debs/: Debian packages, debs/<release>/<apt's file name> (island_bundle_debs, issue 17).
LAYOUT_DIRS = ("bin", "debs", "files", "git", "k3s", "oci")
OCI_LAYOUT_FILES = ("oci/index.json", "oci/oci-layout")
MAX_LOCK_BYTES = 64 * 1024 * 1024
MAX_PROBLEMS_IN_MESSAGE = 20
# A lock with problems in every entry must not make a result (lock_problems) as large as itself.
MAX_PROBLEMS_KEPT = 1000
# How much of a value a message quotes: enough to recognise it, never a signed megabyte.
MAX_QUOTED = 100

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_DIGEST_RE = re.compile(r"sha256:([0-9a-f]{64})")
_GIT_OBJECT_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
COMPONENT_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
_PLATFORM_RE = re.compile(r"[a-z0-9]+/[a-z0-9_]+(/[a-z0-9.]+)?")
_CREATED_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")
_OCI_BLOB_RE = re.compile(r"oci/blobs/sha256/([^/]+)")
# The builder's rules (island_bundle_build.load_spec), which the verifier applies to every name of
# the lock: a git repository's name is a file name on the Gitea host (<seed dir>/<name>.bundle) and a
# repository name in Gitea; the bundle's name and version, and each component's version, are
# written into the records on the controller and the hosts and shown in messages.
GIT_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,127}")
# A registry host as distribution's reference grammar has it (reference/regexp.go: domain components
# of letters, digits and inner '-', joined by '.', an optional :port; or a bracketed IPv6 address).
_REGISTRY_HOST_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)
# A media type (RFC 6838 section 4.2, restricted-name "/" restricted-name): sent as a Content-Type.
_MEDIA_TYPE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")


# --- quoting in messages -------------------------------------------------------------------------


def escaped(text: str, limit: int = MAX_QUOTED) -> str:
    """``text`` fit for one line of a message: every character that is not printable (control
    characters, U+0085, the U+2028 and U+2029 line and paragraph separators, format characters) as
    its Python escape (``\\u2028``), and no more than ``limit`` characters of it, saying how long it
    was. File names and values of the lock reach messages only through here or :func:`shown`."""
    cut = text[:limit]
    out = "".join(char if char.isprintable() else repr(char)[1:-1] for char in cut)
    if len(text) > limit:
        out += f"... ({len(text)} characters)"
    return out


def shown(value: Any, limit: int = MAX_QUOTED) -> str:
    """A value of the lock as a message quotes it: a string quoted and :func:`escaped`; a number or
    boolean as itself; a mapping or list by its kind only (never its content, which a YAML alias
    could make huge)."""
    if isinstance(value, str):
        return "'" + escaped(value, limit) + "'"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if value.bit_length() <= 64 else "a very large integer"
    if isinstance(value, float):
        return repr(value)
    return _kind(value)


# --- errors --------------------------------------------------------------------------------------


class BundleError(Exception):
    """Base of every error of this module. ``details()`` adds structured fields for a result."""

    def details(self) -> dict[str, Any]:
        return {}


class LockError(BundleError):
    """The lock file is unreadable or does not follow its schema."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        source = escaped(str(source), 4096)
        if len(problems) == 1:
            text = f"{source}: {problems[0]}"
        else:
            shown = problems[:MAX_PROBLEMS_IN_MESSAGE]
            if len(problems) > MAX_PROBLEMS_IN_MESSAGE:
                shown = [*shown, f"and {len(problems) - MAX_PROBLEMS_IN_MESSAGE} more (see lock_problems)"]
            text = f"{source} has {len(problems)} problems: " + "; ".join(shown)
        super().__init__(text)

    def details(self) -> dict[str, Any]:
        return {"lock_problems": list(self.problems)}


class SignatureError(BundleError):
    """The lock's signature is missing, invalid, or by a key the island does not trust."""


class SigningError(BundleError):
    """The lock cannot be signed (key unreadable, wrong passphrase, not Ed25519, no lock)."""


@dataclass
class FileProblem:
    """One file of the bundle that does not match the lock."""

    path: str
    problem: str  # missing, extra, not_regular, size, sha256, unreadable
    message: str
    expected_size: int | None = None
    actual_size: int | None = None
    expected_sha256: str | None = None
    actual_sha256: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}


class ContentError(BundleError):
    """Files of the bundle do not match the lock: every problem is listed, not only the first."""

    def __init__(self, bundle_dir: Path, problems: list[FileProblem]) -> None:
        self.bundle_dir = bundle_dir
        self.problems = sorted(problems, key=lambda p: p.path)
        shown = [p.message for p in self.problems[:MAX_PROBLEMS_IN_MESSAGE]]
        if len(self.problems) > MAX_PROBLEMS_IN_MESSAGE:
            shown.append(f"and {len(self.problems) - MAX_PROBLEMS_IN_MESSAGE} more (see problems)")
        lines = "; ".join(shown)
        super().__init__(
            f"bundle {escaped(str(bundle_dir), 4096)} does not match its lock ({len(self.problems)} problem"
            f"{'s' if len(self.problems) != 1 else ''}): {lines}. Copy the bundle again from the"
            " transfer medium; do not edit the lock, it is signed"
        )

    def details(self) -> dict[str, Any]:
        return {"problems": [p.as_dict() for p in self.problems]}


# --- YAML ----------------------------------------------------------------------------------------


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LockLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe YAML, strings stay strings (no timestamp magic), duplicate keys are an error, and so is
    an alias (``*name``).

    The builder never writes an alias (``dump_lock`` dumps fresh objects, and PyYAML's dumper makes
    anchors only for an object met twice), so a lock with one was not written by it. Aliases cost
    nothing to parse, but they let a few signed lines stand for a structure of billions of nodes
    ("billion laughs") that any walk over the parsed lock (a message quoting a value, the module's
    JSON result) would expand. PyYAML's composer (C or Python) hands back the very node of the
    anchor for each alias, so an alias is a node met a second time.
    """

    yaml_implicit_resolvers: ClassVar[dict[Any, Any]] = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node in self.constructed_objects or node in self.recursive_objects:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "an alias (*name) repeats a node anchored (&name) earlier: a lock has no anchors or"
                " aliases (the builder never writes them); rebuild the bundle with the builder",
                node.start_mark,
            )
        return super().construct_object(node, deep)


def _construct_unique_mapping(loader: Any, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {shown(key)}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_LockLoader.add_constructor("tag:yaml.org,2002:map", _construct_unique_mapping)


class _LockDumper(yaml.SafeDumper):
    """Block style with indented sequences (what yamllint expects)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


# --- lock validation -----------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"a {type(value).__name__}"
    )


def _join(where: str, key: Any) -> str:
    key = escaped(key) if isinstance(key, str) else shown(key)
    return f"{where}.{key}" if where else key


class _Collector:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.dropped = 0

    def add(self, where: str, message: str) -> None:
        if len(self.items) < MAX_PROBLEMS_KEPT:
            self.items.append(f"{where}: {message}")
        else:
            self.dropped += 1

    def all(self) -> list[str]:
        if not self.dropped:
            return self.items
        return [*self.items, f"and {self.dropped} more problems (not listed)"]

    def mapping(
        self, value: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
    ) -> bool:
        if not isinstance(value, dict):
            self.add(where, f"must be a mapping, got {_kind(value)}")
            return False
        for key in required:
            if key not in value:
                self.add(_join(where, key), "is required")
        known = required + optional
        for key in value:
            if key not in known:
                self.add(
                    _join(where, key),
                    f"is not a field of schema version {SCHEMA_VERSION} (known: {', '.join(known)})",
                )
        return True

    def string(self, value: Any, where: str) -> bool:
        if not isinstance(value, str) or not value:
            self.add(where, f"must be a non-empty string, got {_kind(value)}")
            return False
        return True


def path_problem(path: str) -> str | None:
    """Why ``path`` is not an acceptable bundle path, or None."""
    if path.startswith("/"):
        return "must be relative to the bundle directory, not absolute"
    if "\\" in path:
        return "must use '/' as separator (no backslash)"
    if not path.isprintable():
        return "must not contain control characters or other non-printable ones (such as U+2028)"
    parts = path.split("/")
    if ".." in parts:
        return "must not contain '..'"
    if any(part in ("", ".") for part in parts):
        return "must be normalised (no empty or '.' components, no trailing '/')"
    return None


def _check_path(value: Any, where: str, problems: _Collector) -> str | None:
    if not problems.string(value, where):
        return None
    reason = path_problem(value)
    if reason:
        problems.add(where, f"{shown(value)} {reason}")
        return None
    return value


def _check_referenced(path: str, where: str, listed: set[str], problems: _Collector) -> None:
    if path not in listed:
        problems.add(
            where, f"{shown(path)} is not listed in files; every file the lock refers to must be listed"
        )


def _check_schema_version(data: dict[str, Any], source: str) -> None:
    supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
    if "schema_version" not in data:
        raise LockError(
            source, [f"schema_version: is required (this installer reads schema version {supported})"]
        )
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise LockError(source, [f"schema_version: must be an integer, got {_kind(version)}"])
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise LockError(
            source,
            [
                f"schema_version: {shown(version)} is not supported: this installer reads schema version"
                f" {supported}; use an installer release that reads schema version {shown(version)}, or"
                f" build the bundle with schema version {supported}"
            ],
        )


def version_problem(value: Any, where: str, problems: _Collector | None = None) -> str | None:
    """Why ``value`` is not a name or version the lock may carry (letters, digits, then also '.',
    '_', '+', '~', '-'; at most 128 characters), or None; reported to ``problems`` when given."""
    if not isinstance(value, str) or not value:
        problem = f"must be a non-empty string, got {_kind(value)}"
    elif not VERSION_RE.fullmatch(value):
        problem = (
            f"must be letters and digits, then also '.', '_', '+', '~' or '-' (at most 128), such as"
            f" 2026.11.0 or v1.36.3+k3s1, got {shown(value)}"
        )
    else:
        return None
    if problems is not None:
        problems.add(where, problem)
    return problem


def refname_problem(refname: str) -> str | None:
    """Why ``refname`` is not a git reference name as ``git check-ref-format`` accepts it (git's
    Documentation/git-check-ref-format.txt, rules 1-10; refs.c check_refname_component), or None.
    HEAD or a full name under refs/ (the builder records refs/heads/... and refs/tags/...)."""
    if refname == "HEAD":
        return None
    if not refname.startswith("refs/"):
        return "must be HEAD or a full refname (refs/heads/...)"
    if not refname.isprintable() or any(char in refname for char in " ~^:?*[\\\x7f"):
        return "must not contain spaces, control characters or any of ~ ^ : ? * [ \\"
    if ".." in refname or "@{" in refname or refname.endswith((".", "/")) or "//" in refname:
        return "must not contain '..', '@{' or '//', nor end with '.' or '/'"
    if any(part.startswith(".") or part.endswith(".lock") for part in refname.split("/")):
        return "no component may start with '.' or end with '.lock'"
    return None


def _validate_bundle(value: Any, problems: _Collector) -> None:
    if not problems.mapping(value, "bundle", ("name", "version", "created")):
        return
    for key in ("name", "version"):
        if key in value:
            version_problem(value[key], f"bundle.{key}", problems)
    created = value.get("created")
    if "created" in value and problems.string(created, "bundle.created"):
        if not _CREATED_RE.fullmatch(created):
            problems.add(
                "bundle.created", f"{shown(created)} must be RFC 3339 UTC, e.g. 2026-11-21T12:00:00Z"
            )
        else:
            try:
                dt.datetime.fromisoformat(created[:19])
            except ValueError:
                problems.add("bundle.created", f"{shown(created)} is not a real date and time")


def _validate_files(value: Any, problems: _Collector) -> set[str]:
    listed: set[str] = set()
    if not isinstance(value, list):
        problems.add("files", f"must be a list, got {_kind(value)}")
        return listed
    for index, entry in enumerate(value):
        where = f"files[{index}]"
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            where = f"files[{index}] ({escaped(entry['path'])})"
        if not problems.mapping(entry, where, ("path", "sha256", "size")):
            continue
        path = _check_path(entry.get("path"), f"{where}.path", problems) if "path" in entry else None
        if path is not None:
            if path in listed:
                problems.add(f"{where}.path", f"{shown(path)} is listed twice")
            elif path in (LOCK_NAME, SIGNATURE_NAME):
                problems.add(
                    f"{where}.path", f"{shown(path)} is the lock or its signature and must not be listed"
                )
            elif path.split("/")[0] not in LAYOUT_DIRS or "/" not in path:
                problems.add(
                    f"{where}.path",
                    f"{shown(path)} is outside the bundle layout; put it under one of "
                    + ", ".join(f"{d}/" for d in LAYOUT_DIRS),
                )
            listed.add(path)
        sha = entry.get("sha256")
        if "sha256" in entry and not (isinstance(sha, str) and _SHA256_RE.fullmatch(sha)):
            problems.add(f"{where}.sha256", f"must be 64 lowercase hex characters, got {shown(sha)}")
            sha = None
        size = entry.get("size")
        if "size" in entry and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            problems.add(f"{where}.size", f"must be an integer >= 0, got {shown(size)}")
        blob = _OCI_BLOB_RE.fullmatch(path or "")
        if blob and sha and blob.group(1) != sha:
            problems.add(
                f"{where}.sha256",
                f"an OCI blob must be named after its own digest, but the lock gives sha256 {sha}",
            )
    return listed


def _validate_components(value: Any, listed: set[str], problems: _Collector) -> None:
    if not isinstance(value, dict):
        problems.add("components", f"must be a mapping of name to version and files, got {_kind(value)}")
        return
    for name, component in value.items():
        where = f"components.{escaped(name) if isinstance(name, str) else shown(name)}"
        if not isinstance(name, str) or not COMPONENT_RE.fullmatch(name):
            problems.add(where, "a component name must be lowercase letters, digits, '.', '_' or '-'")
        if not problems.mapping(component, where, ("version", "files")):
            continue
        if "version" in component:
            version_problem(component["version"], f"{where}.version", problems)
        files = component.get("files")
        if "files" not in component:
            continue
        if not isinstance(files, list) or not files:
            problems.add(f"{where}.files", f"must be a non-empty list of bundle paths, got {_kind(files)}")
            continue
        seen: set[str] = set()
        for index, path in enumerate(files):
            item = f"{where}.files[{index}]"
            if _check_path(path, item, problems) is None:
                continue
            if path in seen:
                problems.add(item, f"{shown(path)} is listed twice")
            seen.add(path)
            _check_referenced(path, item, listed, problems)


def _validate_platforms(platforms: Any, where: str, problems: _Collector) -> None:
    if not isinstance(platforms, list) or not platforms:
        problems.add(
            f"{where}.platforms", f"must be a non-empty list such as [linux/amd64], got {_kind(platforms)}"
        )
        return
    for index, platform in enumerate(platforms):
        if not isinstance(platform, str) or not _PLATFORM_RE.fullmatch(platform):
            problems.add(f"{where}.platforms[{index}]", f"must be os/arch[/variant], got {shown(platform)}")


def _validate_image(
    image: Any, where: str, listed: set[str], references: set[str], problems: _Collector
) -> None:
    if not problems.mapping(image, where, ("reference", "digest", "media_type"), ("platforms",)):
        return
    reference = image.get("reference")
    if "reference" in image and problems.string(reference, f"{where}.reference"):
        where = f"{where} ({escaped(reference)})"
        reason = reference_problem(reference)
        if reason:
            problems.add(f"{where}.reference", reason)
        if reference in references:
            problems.add(f"{where}.reference", f"{shown(reference)} is listed twice")
        references.add(reference)
    digest = image.get("digest")
    if "digest" in image:
        match = _DIGEST_RE.fullmatch(digest) if isinstance(digest, str) else None
        if not match:
            problems.add(f"{where}.digest", f"must be sha256:<64 lowercase hex>, got {shown(digest)}")
        else:
            _check_referenced(f"oci/blobs/sha256/{match.group(1)}", f"{where}.digest", listed, problems)
    media_type = image.get("media_type")
    a_string = "media_type" in image and problems.string(media_type, f"{where}.media_type")
    if a_string and not _MEDIA_TYPE_RE.fullmatch(media_type):
        problems.add(
            f"{where}.media_type", f"must be a media type such as {OCI_INDEX}, got {shown(media_type)}"
        )
    if "platforms" in image:
        _validate_platforms(image["platforms"], where, problems)


def reference_problem(reference: str) -> str | None:
    """Why ``reference`` is not an image reference as the builder records it (the normalised form
    of island_oci_common.ImageReference, such as docker.io/library/alpine:3.20), or None."""
    try:
        parsed = ImageReference.parse(reference)
    except OCIError:
        parsed = None
    if parsed is None or not _REGISTRY_HOST_RE.fullmatch(parsed.host) or str(parsed) != reference:
        return (
            f"{shown(reference)} must be a normalised image reference such as"
            " docker.io/library/alpine:3.20 (host/repository:tag), as the builder records it"
        )
    return None


def _validate_images(value: Any, listed: set[str], problems: _Collector) -> None:
    if not isinstance(value, list):
        problems.add("images", f"must be a list, got {_kind(value)}")
        return
    references: set[str] = set()
    for index, image in enumerate(value):
        _validate_image(image, f"images[{index}]", listed, references, problems)
    if value:
        for path in OCI_LAYOUT_FILES:
            _check_referenced(path, "images", listed, problems)


def _validate_refs(refs: Any, where: str, problems: _Collector) -> None:
    if not isinstance(refs, dict) or not refs:
        problems.add(f"{where}.refs", f"must be a non-empty mapping of refname to commit, got {_kind(refs)}")
        return
    for refname, commit in refs.items():
        reason = refname_problem(refname) if isinstance(refname, str) else "must be a string"
        if reason:
            problems.add(f"{where}.refs", f"{shown(refname)} {reason}")
        if not isinstance(commit, str) or not _GIT_OBJECT_RE.fullmatch(commit):
            problems.add(
                f"{where}.refs.{escaped(refname) if isinstance(refname, str) else shown(refname)}",
                f"must be a 40 or 64 lowercase hex commit id, got {shown(commit)}",
            )


def _validate_repo_file(
    value: Any, where: str, listed: set[str], files: set[str], problems: _Collector
) -> None:
    path = _check_path(value, f"{where}.file", problems)
    if path is None:
        return
    if not path.startswith("git/"):
        problems.add(f"{where}.file", f"{shown(path)} must be a git bundle under git/")
    if path in files:
        problems.add(f"{where}.file", f"{shown(path)} is used by two repositories")
    files.add(path)
    _check_referenced(path, f"{where}.file", listed, problems)


def _validate_git(value: Any, listed: set[str], problems: _Collector) -> None:
    if not isinstance(value, list):
        problems.add("git", f"must be a list, got {_kind(value)}")
        return
    names: set[str] = set()
    files: set[str] = set()
    for index, repo in enumerate(value):
        where = f"git[{index}]"
        if not problems.mapping(repo, where, ("name", "file", "refs")):
            continue
        name = repo.get("name")
        if "name" in repo and problems.string(name, f"{where}.name"):
            where = f"git[{index}] ({escaped(name)})"
            if not GIT_NAME_RE.fullmatch(name):
                problems.add(
                    f"{where}.name",
                    f"{shown(name)} must be letters, digits, '-', '_' or '.', starting with a letter or"
                    " digit (at most 100): it names a file on the Gitea host and a Gitea repository",
                )
                name = None
            elif name in names:
                problems.add(f"{where}.name", f"{shown(name)} is listed twice")
            names.add(name)
        if "file" in repo:
            _validate_repo_file(repo["file"], where, listed, files, problems)
            if isinstance(name, str) and repo["file"] != f"git/{name}.bundle":
                problems.add(
                    f"{where}.file",
                    f"{shown(repo['file'])} must be git/{name}.bundle, as the builder writes it",
                )
        if "refs" in repo:
            _validate_refs(repo["refs"], where, problems)


def validate_lock(data: Any, source: str = LOCK_NAME) -> dict[str, Any]:
    """Check a parsed lock against the schema; raise :class:`LockError` listing every problem.

    Returns the lock with the optional sections filled in (``components``, ``images``, ``git``).
    """
    if not isinstance(data, dict):
        raise LockError(source, [f"must be a YAML mapping, got {_kind(data)}"])
    _check_schema_version(data, source)
    problems = _Collector()
    problems.mapping(data, "", ("schema_version", "bundle", "files"), ("components", "images", "git"))
    if "bundle" in data:
        _validate_bundle(data["bundle"], problems)
    listed = _validate_files(data.get("files", []), problems)
    _validate_components(data.get("components", {}), listed, problems)
    _validate_images(data.get("images", []), listed, problems)
    _validate_git(data.get("git", []), listed, problems)
    if problems.items:
        raise LockError(source, problems.all())
    lock = dict(data)
    lock.setdefault("components", {})
    lock.setdefault("images", [])
    lock.setdefault("git", [])
    return lock


def load_lock(data: bytes, source: str = LOCK_NAME) -> dict[str, Any]:
    """Parse and validate the bytes of a lock file (the very bytes whose signature was checked)."""
    try:
        parsed = yaml.load(data, Loader=_LockLoader)  # noqa: S506 - _LockLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise LockError(source, [f"is not valid YAML: {escaped(' '.join(str(exc).split()), 1000)}"]) from exc
    return validate_lock(parsed, source)


def canonical_lock(lock: dict[str, Any]) -> dict[str, Any]:
    bundle = lock["bundle"]
    images = []
    for image in sorted(lock.get("images", []), key=lambda i: i["reference"]):
        entry = {
            "reference": image["reference"],
            "digest": image["digest"],
            "media_type": image["media_type"],
        }
        if image.get("platforms"):
            entry["platforms"] = sorted(image["platforms"])
        images.append(entry)
    return {
        "schema_version": lock["schema_version"],
        "bundle": {"name": bundle["name"], "version": bundle["version"], "created": bundle["created"]},
        "files": [
            {"path": f["path"], "sha256": f["sha256"], "size": f["size"]}
            for f in sorted(lock["files"], key=lambda f: f["path"])
        ],
        "components": {
            name: {"version": c["version"], "files": sorted(c["files"])}
            for name, c in sorted(lock.get("components", {}).items())
        },
        "images": images,
        "git": [
            {"name": g["name"], "file": g["file"], "refs": dict(sorted(g["refs"].items()))}
            for g in sorted(lock.get("git", []), key=lambda g: g["name"])
        ],
    }


def dump_lock(lock: dict[str, Any]) -> bytes:
    """The lock as YAML bytes: validated, sorted, stable (same lock, same bytes)."""
    validate_lock(lock, "lock to write")
    layout = {"sort_keys": False, "default_flow_style": False, "allow_unicode": True, "width": 4096}
    body = yaml.dump(canonical_lock(lock), Dumper=_LockDumper, **layout)
    header = (
        f"# Island bundle lock, schema version {SCHEMA_VERSION} (docs/bundle-format.md).\n"
        f"# Signed by {SIGNATURE_NAME}: any edit invalidates the signature.\n"
    )
    return (header + body).encode("utf-8")
