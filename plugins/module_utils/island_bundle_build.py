"""The bundle builder (transfer zone): a bundle spec in, a signed bundle directory out.

Reads a spec (docs/bundle-spec.md), then
  - downloads every component file and extra file, checking each against its sha256 (given in the
    spec, or read from the upstream's published checksum file) while it streams, and keeps nothing
    of a download that does not match;
  - pulls every image into ONE OCI layout (oci/) with the exact upstream manifest and blob bytes,
    through the same module_utils client the registry seeding pushes with;
  - writes one `git bundle` per repository with the refs the spec names;
  - writes the lock file and signs it.

A rerun with the same spec downloads nothing that is present and verified: files are hashed in
place, archives and checksum files are kept in a cache directory beside the bundle, image blobs
already in the layout are not fetched again (a tag is still resolved to its digest, which is one
manifest request), and a git bundle whose heads already match is left alone. When nothing changed,
the lock and its signature are not rewritten.

Only this builder downloads; it runs in the transfer zone (DESIGN.md principle 1).
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from ansible_collections.island.installer.plugins.module_utils.island_bundle import build_lock, sign
from ansible_collections.island.installer.plugins.module_utils.island_bundle_debs import (
    check_debs,
    place_debs,
)
from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import (
    COMPONENT_RE,
    GIT_NAME_RE,
    LOCK_NAME,
    SIGNATURE_NAME,
    BundleError,
    dump_lock,
    load_lock,
    path_problem,
    version_problem,
)
from ansible_collections.island.installer.plugins.module_utils.island_io import (
    atomic_open,
    atomic_write,
    sha256_file,
)
from ansible_collections.island.installer.plugins.module_utils.island_oci import pull
from ansible_collections.island.installer.plugins.module_utils.island_oci_common import (
    DOCKER_HUB,
    ImageReference,
    OCIError,
)
from ansible_collections.island.installer.plugins.module_utils.island_oci_layout import OCILayout
from ansible_collections.island.installer.plugins.module_utils.island_oci_registry import RegistryClient

SPEC_KEYS = {
    "name",
    "version",
    "components",
    "images",
    "image_lists",
    "git",
    "files",
    "registry_mirrors",
    "debs",
}
FILE_KEYS = {"dest", "url", "sha256", "checksum_url", "checksum_name", "extract"}
IMAGE_LIST_KEYS = {"url", "sha256", "checksum_url", "checksum_name", "platforms"}
CHUNK = 1 << 20
# Docker Hub's API lives at registry-1.docker.io, not at the name images use.
REGISTRY_ENDPOINTS = {DOCKER_HUB: "registry-1.docker.io"}


class SpecError(BundleError):
    """The bundle spec is not valid; the message lists every problem."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"bundle spec {source} is not valid:\n  - " + "\n  - ".join(problems))


class DownloadError(BundleError):
    """A download failed or did not match its checksum; nothing of it was kept."""


# -- the spec ----------------------------------------------------------------------------------------


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _checksum_url_problem(url: Any) -> str | None:
    """A checksum file vouches for the download, so it must not travel where the download could be
    changed with it: https or file, or plain http from the builder's own machine (loopback)."""
    if not isinstance(url, str):
        return "must be an https or file URL"
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "http" and not _is_loopback(parts.hostname):
        return (
            f"{url} is plain http: anyone on the path could change the checksum along with the file; "
            f"use the https URL of the checksum file, or pin the file's sha256 in the spec instead"
        )
    if scheme not in ("https", "http", "file") or (scheme != "file" and not parts.hostname):
        return f"{url} must be an https or file URL"
    return None


def _check_file_entry(entry: Any, where: str, problems: list[str], keys: set[str] = FILE_KEYS) -> None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a mapping with url and sha256 or checksum_url")
        return
    for key in sorted(set(entry) - keys):
        problems.append(f"{where}: unknown key '{key}' (known: {', '.join(sorted(keys))})")
    if "dest" in keys:
        dest = entry.get("dest")
        if not isinstance(dest, str) or path_problem(dest):
            problems.append(f"{where}.dest: {path_problem(dest) if isinstance(dest, str) else 'is required'}")
        elif dest.split("/", 1)[0] in ("oci", "git", "debs") or dest in (LOCK_NAME, SIGNATURE_NAME):
            problems.append(f"{where}.dest: {dest} is reserved for the builder's own output")
    url = entry.get("url")
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("https", "http", "file"):
        problems.append(f"{where}.url: must be an https, http or file URL")
    has_sha = "sha256" in entry
    if has_sha == ("checksum_url" in entry):
        problems.append(f"{where}: give exactly one of sha256 and checksum_url")
    if "checksum_url" in entry:
        problem = _checksum_url_problem(entry["checksum_url"])
        if problem:
            problems.append(f"{where}.checksum_url: {problem}")
    if has_sha and not (
        isinstance(entry["sha256"], str)
        and len(entry["sha256"]) == 64
        and all(c in "0123456789abcdef" for c in entry["sha256"])
    ):
        problems.append(f"{where}.sha256: must be 64 lower-case hex digits")


def _mapping(value: Any, problem: str, problems: list[str]) -> dict[str, Any]:
    """``value`` if it is a mapping; else ``problem`` is reported and nothing is checked further."""
    if isinstance(value, dict):
        return value
    problems.append(problem)
    return {}


def _check_components(components: Any, problems: list[str]) -> None:
    message = "components: must map a component name to its version and files"
    for name, component in _mapping(components, message, problems).items():
        where = f"components.{name}"
        if not isinstance(name, str) or not COMPONENT_RE.fullmatch(name):
            problems.append(f"{where}: a component name is lowercase letters, digits, '.', '_' or '-'")
        if not isinstance(component, dict) or not isinstance(component.get("version"), str):
            problems.append(f"{where}: needs a version (a string) and files")
            continue
        version = version_problem(component["version"], f"{where}.version")
        if version:
            problems.append(f"{where}.version: {version}")
        problems += [f"{where}: unknown key '{key}'" for key in sorted(set(component) - {"version", "files"})]
        for i, entry in enumerate(component.get("files") or []):
            _check_file_entry(entry, f"{where}.files[{i}]", problems)


def _check_images(images: list[Any], problems: list[str]) -> None:
    for i, image in enumerate(images):
        where = f"images[{i}]"
        if not isinstance(image, dict) or not isinstance(image.get("reference"), str):
            problems.append(f"{where}: needs a reference")
            continue
        problems += [
            f"{where}: unknown key '{key}'" for key in sorted(set(image) - {"reference", "platforms"})
        ]
        try:
            ImageReference.parse(image["reference"])
        except OCIError as exc:
            problems.append(f"{where}.reference: {exc}")


def _check_git(repositories: list[Any], problems: list[str]) -> None:
    names = set()
    for i, repo in enumerate(repositories):
        where = f"git[{i}]"
        if not isinstance(repo, dict) or not all(isinstance(repo.get(k), str) for k in ("name", "url")):
            problems.append(f"{where}: needs a name and a url")
            continue
        # The verifier applies the same rule to the lock (island_bundle_lock.GIT_NAME_RE).
        if not GIT_NAME_RE.fullmatch(repo["name"]) or repo["name"] in names:
            problems.append(
                f"{where}.name: {repo['name']!r} must be unique and use letters, digits, '-', '_', '.'"
                " (at most 100, starting with a letter or digit)"
            )
        names.add(repo["name"])
        if repo["url"].startswith("-"):
            problems.append(
                f"{where}.url: '{repo['url']}' starts with '-', which git would read as an option"
            )
        refs = repo.get("refs")
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) and r for r in refs):
            problems.append(f"{where}.refs: list the branches and tags to carry (e.g. [main, v1.0])")
        elif any(r.startswith("-") for r in refs):
            problems.append(
                f"{where}.refs: a branch or tag name cannot start with '-' (git would read an option)"
            )


def _check_mirrors(mirrors: Any, problems: list[str]) -> None:
    message = "registry_mirrors: must map an upstream registry to {host, ca_file}"
    for upstream, mirror in _mapping(mirrors, message, problems).items():
        if not isinstance(mirror, dict) or not isinstance(mirror.get("host"), str):
            problems.append(f"registry_mirrors.{upstream}: needs a host (host:port)")


def load_spec(path: str | Path) -> dict[str, Any]:
    """Load and validate a bundle spec; every problem is reported at once."""
    source = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(source, [f"cannot read it ({exc.strerror})"]) from exc
    except yaml.YAMLError as exc:
        raise SpecError(source, [f"is not valid YAML ({exc})"]) from exc
    if not isinstance(data, dict):
        raise SpecError(source, ["must be a mapping with name, version and components"])
    problems = [
        f"unknown key '{key}' (known: {', '.join(sorted(SPEC_KEYS))})"
        for key in sorted(set(data) - SPEC_KEYS)
    ]
    for key in ("name", "version"):
        if not isinstance(data.get(key), str) or not data[key]:
            problems.append(f"{key}: is required (a string)")
        elif version_problem(data[key], key):
            problems.append(f"{key}: {version_problem(data[key], key)}")
    for key, empty in (
        ("components", {}),
        ("files", []),
        ("images", []),
        ("image_lists", []),
        ("git", []),
        ("registry_mirrors", {}),
    ):
        if data.get(key) is None:
            data[key] = empty
    data["images"] = [{"reference": i} if isinstance(i, str) else i for i in data["images"]]
    _check_components(data["components"], problems)
    for i, entry in enumerate(data["files"]):
        _check_file_entry(entry, f"files[{i}]", problems)
    _check_images(data["images"], problems)
    for i, entry in enumerate(data["image_lists"]):
        _check_file_entry(entry, f"image_lists[{i}]", problems, IMAGE_LIST_KEYS)
    _check_git(data["git"], problems)
    _check_mirrors(data["registry_mirrors"], problems)
    check_debs(data.get("debs"), problems)
    if not problems:
        dests = [dest for dest, _ in _all_dests(data)]
        problems += [
            f"dest {d} is named more than once" for d in sorted({d for d in dests if dests.count(d) > 1})
        ]
    if problems:
        raise SpecError(source, problems)
    return data


# -- files -----------------------------------------------------------------------------------------


def _url_name(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])


class Fetcher:
    """Downloads through urllib into a cache directory, hashing as the bytes stream."""

    def __init__(self, cache_dir: Path, timeout: float = 120.0):
        self.cache_dir = cache_dir
        self.timeout = timeout
        self.downloaded: list[str] = []

    def _stream(self, url: str, target: Path, expected: str | None) -> str:
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        try:
            # 0644: readable by whoever carries and verifies the bundle
            with (
                atomic_open(target, 0o644, suffix=".partial") as out,
                urllib.request.urlopen(url, timeout=self.timeout) as response,  # noqa: S310 (URLs come from the operator's spec; file:// is allowed on purpose)
            ):
                for chunk in iter(lambda: response.read(CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
                actual = digest.hexdigest()
                if expected is not None and actual != expected:
                    raise DownloadError(
                        f"{url}: downloaded content has sha256 {actual}, the spec expects {expected}; "
                        f"nothing of it was kept. Check the URL and the checksum in the spec"
                    )
        except (urllib.error.URLError, OSError) as exc:
            raise DownloadError(
                f"{url}: download failed ({getattr(exc, 'reason', exc)}); nothing was kept"
            ) from exc
        self.downloaded.append(url)
        return actual

    def checksum_for(self, entry: dict[str, Any]) -> str:
        """The expected sha256 of an entry: given, or read from the upstream checksum file."""
        if "sha256" in entry:
            return entry["sha256"]
        url = entry["checksum_url"]
        cached = self.cache_dir / "checksums" / hashlib.sha256(url.encode()).hexdigest()
        if not cached.exists():
            self._stream(url, cached, None)
        wanted = entry.get("checksum_name") or _url_name(entry["url"])
        for line in cached.read_text(encoding="utf-8", errors="replace").splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[1].lstrip("*").rsplit("/", 1)[-1] == wanted:
                return fields[0].lower()
            if len(fields) == 1 and len(fields[0]) == 64 and "checksum_name" not in entry:
                return fields[0].lower()  # a <file>.sha256 holding the digest alone
        raise DownloadError(
            f"{url} lists no checksum for {wanted}; set checksum_name to the name it uses, or give sha256"
        )

    def fetch(self, url: str, target: Path, expected: str) -> bool:
        """Make `target` hold the verified content of `url`; True when it had to be downloaded."""
        if target.exists() and sha256_file(target, follow_symlinks=True)[1] == expected:
            return False
        self._stream(url, target, expected)
        return True


def _extract(archive: Path, member: str, target: Path, url: str) -> None:
    try:
        with tarfile.open(archive) as tar:
            try:
                info = tar.getmember(member)
            except KeyError:
                names = ", ".join(tar.getnames()[:10])
                raise DownloadError(
                    f"{url}: the archive has no member '{member}' (it has: {names})"
                ) from None
            if not info.isfile():
                raise DownloadError(f"{url}: archive member '{member}' is not a regular file")
            source = tar.extractfile(info)
            # 0644: readable by whoever carries and verifies the bundle
            with atomic_open(target, 0o644, suffix=".partial") as out:
                shutil.copyfileobj(source, out, CHUNK)
    except tarfile.TarError as exc:
        raise DownloadError(f"{url}: cannot read the archive ({exc})") from exc


def place_file(entry: dict[str, Any], bundle: Path, fetcher: Fetcher) -> str:
    """Put one spec file into the bundle; returns 'downloaded', 'extracted' or 'present'."""
    expected = fetcher.checksum_for(entry)
    target = bundle / entry["dest"]
    target.parent.mkdir(parents=True, exist_ok=True)
    if "extract" not in entry:
        return "downloaded" if fetcher.fetch(entry["url"], target, expected) else "present"
    archive = fetcher.cache_dir / "downloads" / expected
    fetched = fetcher.fetch(entry["url"], archive, expected)
    if not fetched and target.exists():
        # The archive is unchanged; re-extract only if the member in the bundle was altered.
        with tempfile.TemporaryDirectory(dir=fetcher.cache_dir) as scratch:
            probe = Path(scratch) / "member"
            _extract(archive, entry["extract"], probe, entry["url"])
            if sha256_file(probe)[1] == sha256_file(target, follow_symlinks=True)[1]:
                return "present"
    _extract(archive, entry["extract"], target, entry["url"])
    return "extracted"


# -- images ---------------------------------------------------------------------------------------


def images_from_lists(spec: dict[str, Any], fetcher: Fetcher) -> list[dict[str, Any]]:
    """The spec's images plus those of its image lists (a text file of references, one a line,
    such as k3s's k3s-images.txt), each list checked by sha256 like any download."""
    images = list(spec["images"])
    seen = {str(ImageReference.parse(image["reference"])) for image in images}
    for entry in spec["image_lists"]:
        expected = fetcher.checksum_for(entry)
        cached = fetcher.cache_dir / "image-lists" / expected
        fetcher.fetch(entry["url"], cached, expected)
        for number, raw in enumerate(cached.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                reference = str(ImageReference.parse(line))
            except OCIError as exc:
                raise DownloadError(f"{entry['url']} line {number}: {exc}") from exc
            if reference not in seen:
                seen.add(reference)
                image = {"reference": reference}
                if entry.get("platforms"):
                    image["platforms"] = entry["platforms"]
                images.append(image)
    return images


def pull_images(
    spec: dict[str, Any], images: list[dict[str, Any]], layout: OCILayout, workers: int
) -> tuple[list[dict], list[str]]:
    clients: dict[str, RegistryClient] = {}
    entries, warnings = [], []
    for image in images:
        ref = ImageReference.parse(image["reference"])
        mirror = spec["registry_mirrors"].get(ref.host) or {}
        endpoint = mirror.get("host") or REGISTRY_ENDPOINTS.get(ref.host, ref.host)
        if endpoint not in clients:
            clients[endpoint] = RegistryClient(
                endpoint,
                ca_file=mirror.get("ca_file"),
                username=mirror.get("username"),
                password=mirror.get("password"),
            )
        result = pull(clients[endpoint], ref, layout, platforms=image.get("platforms"), workers=workers)
        warnings += result["warnings"]
        entry = {"reference": str(ref), "digest": result["digest"], "media_type": result["media_type"]}
        if image.get("platforms"):
            entry["platforms"] = list(image["platforms"])
        entries.append(entry)
    for client in clients.values():
        client.close()
    return entries, warnings


# -- git -------------------------------------------------------------------------------------------


def _git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DownloadError(f"git {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def _heads(bundle_file: Path) -> dict[str, str]:
    out = _git("bundle", "list-heads", str(bundle_file))
    return {name: sha for sha, name in (line.split() for line in out.splitlines() if line.strip())}


def place_repository(repo: dict[str, Any], bundle: Path, cache: Path) -> tuple[dict[str, Any], str]:
    mirror = cache / "git" / f"{repo['name']}.git"
    # `--` before the URL: a URL that starts with '-' (--upload-pack=...) is then a URL, never an
    # option (git's parse-options: "--" ends the options; rev-parse takes --end-of-options, 2.24+).
    if mirror.exists():
        _git("remote", "set-url", "--", "origin", repo["url"], cwd=mirror)
        _git("fetch", "--prune", "--tags", "origin", "+refs/heads/*:refs/heads/*", cwd=mirror)
    else:
        mirror.parent.mkdir(parents=True, exist_ok=True)
        _git("clone", "--quiet", "--mirror", "--", repo["url"], str(mirror))
    refs = {}
    for short in repo["refs"]:
        for full in (f"refs/heads/{short}", f"refs/tags/{short}", short):
            found = subprocess.run(
                ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", full],
                cwd=mirror,
                capture_output=True,
                text=True,
                check=False,
            )
            if found.returncode == 0 and full.startswith("refs/"):
                refs[full] = found.stdout.strip()
                break
        else:
            raise DownloadError(
                f"git repository {repo['name']} ({repo['url']}) has no branch or tag '{short}'"
            )
    path = f"git/{repo['name']}.bundle"
    target = bundle / path
    if target.exists() and _heads(target) == refs:
        return {"name": repo["name"], "file": path, "refs": refs}, "present"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial")
    _git("bundle", "create", "--quiet", str(tmp), *refs, cwd=mirror)
    _git("bundle", "verify", "--quiet", str(tmp), cwd=mirror)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return {"name": repo["name"], "file": path, "refs": refs}, "written"


def prune(bundle: Path, keep: set[str]) -> list[str]:
    """Remove files the spec no longer produces (an older version's binary, an interrupted
    download), so the lock lists exactly what the spec asks for. oci/ is the layout's own."""
    removed = []
    for path in sorted(bundle.rglob("*"), reverse=True):
        rel = path.relative_to(bundle).as_posix()
        if rel == "oci" or rel.startswith("oci/") or rel in keep or rel in (LOCK_NAME, SIGNATURE_NAME):
            continue
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        else:
            path.unlink()
            removed.append(rel)
    return sorted(removed)


# -- the whole build -------------------------------------------------------------------------------


def _comparable(lock: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in lock.items() if key != "bundle"} | {
        "bundle": {k: v for k, v in lock["bundle"].items() if k != "created"}
    }


def _all_dests(spec: dict[str, Any]):
    for name, component in spec["components"].items():
        for entry in component.get("files") or []:
            yield entry["dest"], name
    for entry in spec["files"]:
        yield entry["dest"], None


def build(
    spec_path: str | Path,
    bundle_dir: str | Path,
    *,
    signing_key: str | Path,
    passphrase: str | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 4,
) -> dict[str, Any]:
    """Build or bring up to date the bundle in `bundle_dir` from the spec; sign it when it changed."""
    spec = load_spec(spec_path)
    bundle = Path(bundle_dir)
    bundle.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir) if cache_dir else bundle.with_name(bundle.name + ".cache")
    cache.mkdir(parents=True, exist_ok=True)
    fetcher = Fetcher(cache)

    outcome: dict[str, list[str]] = {"downloaded": [], "extracted": [], "present": []}
    components = {}
    for name, component in sorted(spec["components"].items()):
        paths = []
        for entry in component.get("files") or []:
            outcome[place_file(entry, bundle, fetcher)].append(entry["dest"])
            paths.append(entry["dest"])
        components[name] = {"version": component["version"], "files": paths}
    for entry in spec["files"]:
        outcome[place_file(entry, bundle, fetcher)].append(entry["dest"])

    wanted = images_from_lists(spec, fetcher)
    images, warnings = (
        pull_images(spec, wanted, OCILayout(str(bundle / "oci")), workers) if wanted else ([], [])
    )

    git, git_written = [], []
    for repo in spec["git"]:
        entry, state = place_repository(repo, bundle, cache)
        git.append(entry)
        if state == "written":
            git_written.append(entry["file"])

    # Debian packages (debs:): resolved by apt in this transfer zone, each under debs/<release>/.
    debs, deb_packages = place_debs(spec["debs"], bundle, cache, fetcher) if spec.get("debs") else ([], [])

    keep = {dest for dest, _ in _all_dests(spec)} | {entry["file"] for entry in git} | set(debs)
    removed = prune(bundle, keep)

    lock = build_lock(
        bundle,
        name=spec["name"],
        version=spec["version"],
        components=components,
        images=images,
        git=git,
        workers=workers,
    )
    previous = None
    lock_path = bundle / LOCK_NAME
    if lock_path.exists():
        try:
            previous = load_lock(lock_path.read_bytes(), str(lock_path))
        except BundleError:
            previous = None
    signed = (bundle / SIGNATURE_NAME).exists()
    changed = previous is None or _comparable(previous) != _comparable(lock) or not signed
    if changed:
        data = dump_lock(lock)
        (bundle / SIGNATURE_NAME).unlink(missing_ok=True)
        atomic_write(lock_path, data, 0o644)
        sign(bundle, signing_key, passphrase)
    else:
        lock = previous
    return {
        "changed": changed,
        "bundle_dir": str(bundle),
        "lock": lock,
        "downloaded": fetcher.downloaded,
        "files": outcome,
        "git_written": git_written,
        "removed": removed,
        "debs": [{k: p[k] for k in ("package", "version", "architecture", "file")} for p in deb_packages],
        "warnings": warnings,
    }
