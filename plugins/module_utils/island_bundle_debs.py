"""Debian packages in the bundle (transfer zone): the spec's ``debs:`` section resolved with apt.

Note that this module util is PRIVATE to this repository; it can change at any time.

The island's hosts have no package source. A program the island needs as a Debian package
(systemd-journal-remote, issue 17) travels in the bundle as the packages it needs that the hosts'
minimal system lacks, each a ``.deb`` under ``debs/<release>/`` locked by sha256 like every other
file. Resolution uses apt's own resolver against the transfer-zone machine's apt sources (its
``sources.list``, already verified indices and keyrings: what apt trusts is what the bundle gets),
never the packages installed on that machine:

1. The baseline, the system every island host is assumed to run: each package of Priority
   ``required`` of the release (what ``debootstrap --variant=minbase`` installs), ``apt``, and the
   spec's ``baseline`` (default: systemd and python3, which the installer needs on every host).
   ``apt-get --simulate install`` of them against an EMPTY dpkg status gives their closure as apt
   resolves it, at the versions a host of the release gets today.
2. That closure is written as a dpkg status file (every package "install ok installed"), so apt
   believes exactly the baseline is installed.
3. ``apt-get install --print-uris`` of the spec's packages against that status lists the packages
   and dependencies the baseline lacks, with their URLs; ``apt-cache show <pkg>=<version>`` gives
   each one's SHA256 from the same signed index. Each is downloaded by the builder's fetcher,
   checked against that sha256 while it streams, into ``debs/<release>/<apt's file name>``.

Both apt calls use a scratch status and an empty archives directory, no package cache file, and
no lock, so they neither read nor change the machine's own package state, and run as any user.
A rerun resolves again (a security update in the release must reach the bundle) and downloads only
a file the bundle does not already hold with the right sha256.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import BundleError

DEBS_KEYS = {"release", "packages", "baseline"}
DEFAULT_BASELINE = ["systemd", "python3"]
# A Debian package name (Debian Policy 5.6.1: lowercase letters, digits, '+', '-', '.'; at least two
# characters, starting with a letter or digit) and a release codename (bookworm, trixie).
PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
RELEASE_RE = re.compile(r"[a-z][a-z0-9-]{0,40}")
# apt's archive file name: <package>_<version with ':' as %3a>_<architecture>.deb
DEB_NAME_RE = re.compile(
    r"(?P<package>[a-z0-9][a-z0-9+.-]+)_(?P<version>[A-Za-z0-9.+~%-]+)_(?P<arch>[a-z0-9-]+)\.deb"
)
# The fields of a Packages stanza that a dpkg status entry drops (where the archive keeps the file).
# Every other field stays: apt tells an installed version from the archive's one of the same number
# by a hash over control fields (apt-pkg/deb/deblistparser.cc, VersionHash), and with fields missing
# apt 2.6.1 (Debian 12) planned to reinstall every baseline package a wanted one depends on (seen).
_ARCHIVE_FIELDS = {"Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512", "Description-md5"}


class DebError(BundleError):
    """The debs section cannot be resolved or downloaded; the message names the package at fault."""


def check_debs(debs: Any, problems: list[str]) -> None:
    """The spec's ``debs:`` section: ``release`` (a codename), ``packages`` (names), ``baseline``."""
    if debs is None:
        return
    if not isinstance(debs, dict):
        problems.append("debs: must be a mapping with release and packages")
        return
    problems += [
        f"debs: unknown key '{key}' (known: {', '.join(sorted(DEBS_KEYS))})"
        for key in sorted(set(debs) - DEBS_KEYS)
    ]
    if not isinstance(debs.get("release"), str) or not RELEASE_RE.fullmatch(debs["release"]):
        problems.append("debs.release: the Debian release's codename, such as bookworm")
    for key in ("packages", "baseline"):
        value = debs.get(key, DEFAULT_BASELINE if key == "baseline" else None)
        if not isinstance(value, list) or (key == "packages" and not value):
            problems.append(f"debs.{key}: a list of Debian package names")
            continue
        for name in value:
            if not isinstance(name, str) or not PACKAGE_RE.fullmatch(name):
                problems.append(
                    f"debs.{key}: {name!r} is not a Debian package name"
                    " (lowercase letters, digits, '+', '-', '.')"
                )


def _run(args: list[str], what: str) -> str:
    try:
        result = subprocess.run(args, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise DebError(
            f"{what}: cannot run {args[0]} ({exc.strerror}); the builder resolves debs: with apt, "
            "run it on a Debian machine of the target release"
        ) from exc
    if result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
        raise DebError(f"{what}: {' '.join(args[:3])} ... failed: " + " / ".join(detail[-6:]))
    return result.stdout


def _apt_options(scratch: Path, status: Path) -> list[str]:
    archives = scratch / "archives"
    (archives / "partial").mkdir(parents=True, exist_ok=True)
    return [
        "-o", f"Dir::State::status={status}",
        "-o", f"Dir::Cache::archives={archives}",
        "-o", "Dir::Cache::pkgcache=",
        "-o", "Dir::Cache::srcpkgcache=",
        "-o", "Debug::NoLocking=true",
        "-o", "APT::Install-Recommends=false",
    ]  # fmt: skip


def _stanzas(text: str) -> list[dict[str, str]]:
    """deb822 stanzas (apt-cache show): field to value, continuation lines kept."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        fields: dict[str, str] = {}
        last = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and last:
                fields[last] += "\n" + line
            elif ":" in line:
                last, value = line.split(":", 1)
                fields[last] = value.strip()
        if fields.get("Package"):
            out.append(fields)
    return out


def release_problem(release: str) -> str | None:
    """Whether this machine's apt reads the release (a source whose Release file has n=<release>)."""
    policy = _run(["apt-cache", "policy"], "debs.release")
    codenames = sorted(set(re.findall(r"\bn=([A-Za-z0-9.-]+)", policy)))
    if release not in codenames:
        return (
            f"debs.release: this machine's apt has no source for {release} (it reads: "
            f"{', '.join(codenames) or 'none'}); add the release's suites to its sources and run "
            f"apt-get update, or build on a machine of that release"
        )
    return None


def _required(options: list[str]) -> list[str]:
    """Every package of Priority required that apt knows: what debootstrap's minbase installs."""
    names, package = set(), None
    for line in _run(["apt-cache", *options, "dumpavail"], "debs baseline").splitlines():
        if line.startswith("Package:"):
            package = line.split(":", 1)[1].strip()
        elif line.startswith("Priority:") and line.split(":", 1)[1].strip() == "required" and package:
            names.add(package)
    return sorted(names)


def _simulated(output: str) -> list[tuple[str, str]]:
    """``Inst <name> (<version> <release> [<arch>])`` lines of apt-get --simulate."""
    out = []
    for line in output.splitlines():
        match = re.match(r"Inst (\S+) (?:\[\S+\] )?\((\S+) ", line)
        if match:
            out.append((match.group(1), match.group(2)))
    return out


def resolve(debs: dict[str, Any], scratch: Path) -> list[dict[str, Any]]:
    """The packages the spec's debs need beyond the baseline, each with ``package``, ``version``,
    ``architecture``, ``file`` (apt's archive name), ``url``, ``size`` and ``sha256``."""
    problem = release_problem(debs["release"])
    if problem:
        raise DebError(problem)
    empty = scratch / "empty-status"
    empty.write_text("", encoding="utf-8")
    options = _apt_options(scratch, empty)
    baseline = sorted({*_required(options), "apt", *debs.get("baseline", DEFAULT_BASELINE)})
    installed = _simulated(
        _run(["apt-get", *options, "--simulate", "-qq", "install", *baseline], "debs.baseline")
    )
    show = _run(["apt-cache", *options, "show", *(f"{n}={v}" for n, v in installed)], "debs.baseline")
    status = scratch / "baseline-status"
    lines = []
    for stanza in _stanzas(show):
        lines += [f"{key}: {value}" for key, value in stanza.items() if key not in _ARCHIVE_FIELDS]
        lines += ["Status: install ok installed", ""]
    status.write_text("\n".join(lines), encoding="utf-8")
    options = _apt_options(scratch, status)
    uris = _run(
        ["apt-get", *options, "--print-uris", "-qq", "-y", "install", *debs["packages"]],
        f"debs.packages {' '.join(debs['packages'])}",
    )
    wanted = []
    for line in uris.splitlines():
        match = re.match(r"'(?P<url>[^']+)' (?P<file>\S+) (?P<size>\d+)", line)
        if not match:
            continue
        name = DEB_NAME_RE.fullmatch(match["file"])
        if not name:
            raise DebError(f"debs: apt names a download {match['file']!r} that is not a .deb archive name")
        wanted.append({"file": match["file"], "url": match["url"], "size": int(match["size"])})
    if not wanted:
        return []
    versions = [
        (stanza["Package"], stanza["Version"], stanza.get("Architecture", ""), stanza.get("SHA256", ""))
        for stanza in _stanzas(
            _run(
                ["apt-cache", *options, "show", *(_pin(entry["file"]) for entry in wanted)],
                "debs.packages",
            )
        )
    ]
    out = []
    for entry in wanted:
        name = DEB_NAME_RE.fullmatch(entry["file"])
        version = name["version"].replace("%3a", ":")
        found = [v for v in versions if v[0] == name["package"] and v[1] == version and v[2] == name["arch"]]
        if not found or not re.fullmatch(r"[0-9a-f]{64}", found[0][3]):
            raise DebError(
                f"debs: apt's index gives no SHA256 for {name['package']} {version} ({name['arch']}); "
                "run apt-get update and build again"
            )
        out.append(
            entry
            | {
                "package": name["package"],
                "version": version,
                "architecture": name["arch"],
                "sha256": found[0][3],
            }
        )
    return sorted(out, key=lambda e: e["file"])


def _pin(file: str) -> str:
    name = DEB_NAME_RE.fullmatch(file)
    return f"{name['package']}={name['version'].replace('%3a', ':')}"


def place_debs(debs: dict[str, Any], bundle: Path, cache: Path, fetcher: Any) -> tuple[list[str], list[dict]]:
    """Resolve the spec's debs and put each under debs/<release>/ in the bundle, checked by sha256.
    Returns the bundle paths and the resolved packages."""
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix="apt-") as scratch:
        packages = resolve(debs, Path(scratch))
    paths = []
    for entry in packages:
        path = f"debs/{debs['release']}/{entry['file']}"
        target = bundle / path
        target.parent.mkdir(parents=True, exist_ok=True)
        fetcher.fetch(entry["url"], target, entry["sha256"])
        paths.append(path)
    return paths, packages
