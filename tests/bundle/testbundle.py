"""The test bundle: built from what this machine has, through the real builder.

Upstream sources are stood in for on loopback only:
  - an HTTP server (127.0.0.1) serves release archives with their checksum files, plain files,
    and git repositories over git's "dumb" HTTP protocol;
  - Debian's CNCF distribution registry (TLS from a throwaway CA, htpasswd auth) serves small real
    OCI images: several sharing a base layer, and one multi-arch index.
The builder downloads, checks, pulls and signs exactly as it would in the transfer zone; the spec
maps the upstream registries (docker.io, ghcr.io) to the loopback registry with `registry_mirrors`.

Components carried, each shaped as its upstream release is (an archive with a checksum file, or a
bare binary with one):
  - registry: the real `docker-registry` binary (distribution 2.8.2), as a release archive;
  - prometheus, alertmanager, node_exporter, blackbox_exporter: Debian 12's real programs
    (packages prometheus, prometheus-alertmanager, prometheus-node-exporter,
    prometheus-blackbox-exporter; versions from `dpkg-query -W`), each shaped as promu publishes a
    release: <name>-<version>.linux-amd64.tar.gz holding <name>-<version>.linux-amd64/<name>, listed
    in the release's sha256sums.txt. Both releases carry the same programs (this machine has one
    version of each);
  - coredns, gitea, minio, k3s: the test doubles of tests/doubles/<name>/, each one file with the
    doubles' common base inlined (tests/support/doubles/build.py), under the versions they stand in
    for (MinIO's binary pinned by sha256 in the spec, as the default spec must pin it);
  - k3s's airgap image archive, `k3s-airgap-images-amd64.tar.zst`, shaped as k3s publishes it: a
    `docker save` tarball of the system images (k3s scripts/package-airgap, v1.36 branch:
    `docker save ${images} -o dist/artifacts/k3s-airgap-images-${ARCH}.tar`), compressed with
    `zstd -16 --long=25` as that script does and as the default bundle-spec.yml ships it, its
    sha256 listed in the release's sha256sum-amd64.txt beside the binary. Here it holds the system
    image of the test bundle (docker.io/islandtest/tool:2.0), written from the staged OCI layout:
    the same config bytes, and the same layers uncompressed (as docker stores and saves them), so each layer's
    sha256 is its diff_id. The layout is docker <= 24's (manifest.json, repositories,
    <config>.json, <layer>/layer.tar), which containerd's import (and so k3s's) reads.

Two releases, for the upgrade scenarios (issue #10); `--release` picks one (default 1):
  - release 1, bundle island-test 1.0.0: as above.
  - release 2, bundle island-test 2.0.0: every doubled component one release up (coredns 1.14.4,
    gitea 1.26.3, minio RELEASE.2025-10-15T17-29-55Z, k3s v1.37.1+k3s1, one Kubernetes minor up as
    upstream supports). Each double's binary is its script with exactly its version constant's line
    replaced (`K3S_VERSION = "..."` and so on; the build fails unless that line occurs exactly
    once) before the base is inlined, so the double reports the new version everywhere it reports
    one (`--version`, the node's kubeletVersion, Gitea's /api/v1/version). The files under
    tests/doubles/ are not changed.
    The registry is the one exception to "a real new release": this machine has only Debian's
    distribution 2.8.2. Release 2 LABELS it "2.8.3" and carries 2.8.2's binary with a short
    trailer appended (an ELF file runs unchanged with data after its sections), so the installer
    sees a new file under a new version. The binary itself still is, and says it is, 2.8.2: this
    exercises the installer's upgrade path, not distribution's behaviour across versions.
    Images: all of release 1, plus docker.io/islandtest/extra:1.0 (on the same base layer), and a
    MOVED TAG: docker.io/islandtest/app:1.0 rebuilt with other content, so its digest differs;
    base:1.0, tool:2.0 and multi:1.0 keep release 1's digests. Git: island-config's main gains a
    commit (a fast-forward of release 1's main) and a tag v1.1; v1.0 is unchanged. The airgap
    archive is made the same way (it holds tool:2.0, so it is byte for byte release 1's).
  Both releases are deterministic (fixed git dates, mtime 0 everywhere), so release 1 built
  beside release 2 is the same bundle, the lock's creation time aside.

Command line (used by tools/demo.sh and molecule/shared/bundle.yml):
    python tests/bundle/testbundle.py OUT_DIR --signing-key KEY --allowed-signers FILE [--release 2]
Python: build_test_bundle(out, signing_key, release=2) (returns the builder's result, lock included).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gzip
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support.doubles.build import double_source, inline_base, package
from tests.support.oci import ImageFactory, Registry, make_layer, make_pki

REGISTRY_BIN = Path("/usr/bin/docker-registry")
REGISTRY_VERSION = "2.8.2"  # Debian 12's docker-registry package
COREDNS_VERSION = "1.14.3"  # what tests/doubles/coredns stands in for
GITEA_VERSION = "1.26.2"  # what tests/doubles/gitea stands in for
MINIO_VERSION = "RELEASE.2025-09-07T16-13-09Z"  # what tests/doubles/minio stands in for
K3S_VERSION = "v1.36.3+k3s1"  # what tests/doubles/k3s stands in for
GIT_DATE = "2026-01-01T00:00:00+00:00"
# The Prometheus family: Debian 12's real programs (component -> (Debian package, its binary)).
PROMETHEUS_FAMILY = {
    "prometheus": ("prometheus", Path("/usr/bin/prometheus")),
    "alertmanager": ("prometheus-alertmanager", Path("/usr/bin/prometheus-alertmanager")),
    "node_exporter": ("prometheus-node-exporter", Path("/usr/bin/prometheus-node-exporter")),
    "blackbox_exporter": ("prometheus-blackbox-exporter", Path("/usr/bin/prometheus-blackbox-exporter")),
}


@functools.cache
def debian_version(package: str) -> str:
    """The upstream part of an installed Debian package's version (2.42.0+ds-5+deb12u1 -> 2.42.0)."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise RuntimeError(
            f"the test bundle carries Debian's {package}, which is not installed here: run "
            "tools/lib/setup.sh's island_setup (it installs the Prometheus family)"
        ) from exc
    upstream = out.split(":", 1)[-1].rsplit("-", 1)[0]
    return upstream.split("+", 1)[0]


# Images the test bundle carries: (reference, layers). Several share the base layer.
BASE = {"etc/island-release": b"island test base 1\n"}
IMAGES = {
    "docker.io/islandtest/base:1.0": [BASE],
    "docker.io/islandtest/app:1.0": [BASE, {"srv/app.txt": b"app 1.0\n"}],
    "docker.io/islandtest/tool:2.0": [BASE, {"usr/bin/tool": b"#!/bin/sh\necho tool 2.0\n"}],
}
# The ones the spec takes from an image list (as k3s's system images come from k3s-images.txt).
SYSTEM_IMAGES = ["docker.io/islandtest/tool:2.0"]
MULTI_ARCH = "ghcr.io/islandtest/multi:1.0"
MOVED_TAG = "docker.io/islandtest/app:1.0"
EXTRA_IMAGE = "docker.io/islandtest/extra:1.0"
# k3s's airgap image archive, named as k3s publishes it for amd64 and as the default bundle-spec.yml
# ships it (zstd); it holds SYSTEM_IMAGES.
AIRGAP_ARCHIVE = "k3s-airgap-images-amd64.tar.zst"


def zstd_compress(data: bytes) -> bytes:
    """``data`` compressed as k3s's scripts/package-airgap compresses the airgap tarball
    (`zstd --no-progress -T0 -16 -f --long=25`), by the zstd command line (Debian package zstd), one
    thread so the bytes depend on the input alone."""
    return subprocess.run(
        ["zstd", "--no-progress", "-q", "-16", "--long=25", "-c"], input=data, capture_output=True, check=True
    ).stdout


# Each double's version constant, as the line stands in its script (release 2 replaces that line).
DOUBLE_VERSION_LINES = {
    "coredns": ("VERSION", COREDNS_VERSION),
    "gitea": ("VERSION", GITEA_VERSION),
    "minio": ("RELEASE", MINIO_VERSION),
    "k3s": ("K3S_VERSION", K3S_VERSION),
}
REGISTRY_TRAILER = (
    b"\n# island test bundle, release 2: Debian's distribution 2.8.2 binary relabelled 2.8.3 "
    b"(tests/bundle/testbundle.py)\n"
)


@dataclass(frozen=True)
class Release:
    """What one release of the test bundle carries."""

    number: int
    version: str
    components: dict[str, str]
    images: dict[str, list[dict[str, bytes]]]
    git_refs: list[str]
    # commits on main after release 1's, each (file, content, message), and tags on the last
    git_commits: list[tuple[str, str, str]] = field(default_factory=list)
    git_tags: list[str] = field(default_factory=list)


RELEASES = {
    1: Release(
        number=1,
        version="1.0.0",
        components={
            "coredns": COREDNS_VERSION,
            "gitea": GITEA_VERSION,
            "minio": MINIO_VERSION,
            "k3s": K3S_VERSION,
            "registry": REGISTRY_VERSION,
            **{name: debian_version(package) for name, (package, _) in PROMETHEUS_FAMILY.items()},
        },
        images=IMAGES,
        git_refs=["main", "v1.0"],
    ),
    2: Release(
        number=2,
        version="2.0.0",
        components={
            "coredns": "1.14.4",
            "gitea": "1.26.3",
            "minio": "RELEASE.2025-10-15T17-29-55Z",
            "k3s": "v1.37.1+k3s1",
            "registry": "2.8.3",
            # The same programs as release 1: this machine has one version of each.
            **{name: debian_version(package) for name, (package, _) in PROMETHEUS_FAMILY.items()},
        },
        images={
            **IMAGES,
            MOVED_TAG: [BASE, {"srv/app.txt": b"app 1.0 rebuilt\n"}],
            EXTRA_IMAGE: [BASE, {"srv/extra.txt": b"extra 1.0\n"}],
        },
        git_refs=["main", "v1.0", "v1.1"],
        git_commits=[("apps.yaml", "apps:\n  - app\n", "List the app")],
        git_tags=["v1.1"],
    ),
}


def release_of(number: int) -> Release:
    if number not in RELEASES:
        raise ValueError(f"the test bundle has releases {sorted(RELEASES)}, not {number!r}")
    return RELEASES[number]


def double_binary(name: str, version: str) -> bytes:
    """tests/doubles/<name>/<name> as the binary of `version`: only its version line replaced, then
    built into one file with the doubles' common base (tests/support/doubles/build.py)."""
    script = double_source(name)
    where = f"tests/doubles/{name}/{name}"
    constant, pinned = DOUBLE_VERSION_LINES[name]
    if version == pinned:
        return package(name, inline_base(script, where))
    old = f'{constant} = "{pinned}"\n'.encode()
    lines = script.splitlines(keepends=True)
    found = lines.count(old)
    if found != 1:
        raise RuntimeError(
            f"{where}: the line {old.decode().strip()!r} occurs {found} times, "
            "expected exactly once: update DOUBLE_VERSION_LINES in tests/bundle/testbundle.py to the "
            "double's version constant"
        )
    replaced = b"".join(f'{constant} = "{version}"\n'.encode() if line == old else line for line in lines)
    return package(name, inline_base(replaced, where))


def registry_binary(version: str) -> bytes:
    """Debian's docker-registry for release 1; the same bytes plus a trailer for a later label."""
    binary = REGISTRY_BIN.read_bytes()
    return binary if version == REGISTRY_VERSION else binary + REGISTRY_TRAILER


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        self.server.requests.append(self.path)


class SourceServer:
    """A plain HTTP server on 127.0.0.1 serving one directory; records every path requested."""

    def __init__(self, directory: Path):
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.requests = []
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _git(*args, cwd):
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="Island Test",
        GIT_AUTHOR_EMAIL="test@island.internal",
        GIT_COMMITTER_NAME="Island Test",
        GIT_COMMITTER_EMAIL="test@island.internal",
        GIT_AUTHOR_DATE=GIT_DATE,
        GIT_COMMITTER_DATE=GIT_DATE,
    )
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def make_git_repository(
    work: Path, served: Path, name: str = "island-config", release: Release | None = None
) -> Path:
    """A small repository (main with two commits, tag v1.0, and the release's later commits and
    tags), published for dumb-HTTP clones."""
    repo = work / name
    repo.mkdir(parents=True)
    _git("init", "--quiet", "--initial-branch=main", cwd=repo)
    (repo / "README.md").write_text("# island configuration\n")
    _git("add", "README.md", cwd=repo)
    _git("commit", "--quiet", "-m", "Start the island configuration", cwd=repo)
    _git("tag", "-a", "v1.0", "-m", "first release", cwd=repo)
    (repo / "apps.yaml").write_text("apps: []\n")
    _git("add", "apps.yaml", cwd=repo)
    _git("commit", "--quiet", "-m", "List no apps yet", cwd=repo)
    later = release or RELEASES[1]
    for path, content, message in later.git_commits:
        (repo / path).write_text(content)
        _git("add", path, cwd=repo)
        _git("commit", "--quiet", "-m", message, cwd=repo)
    for tag in later.git_tags:
        _git("tag", "-a", tag, "-m", f"release {tag}", cwd=repo)
    publish_git_repository(repo, served / "git" / f"{name}.git")
    return repo


def publish_git_repository(repo: Path, bare: Path) -> None:
    """(Re)publish `repo` as a bare repository that a dumb-HTTP server can serve."""
    if bare.exists():
        _git("push", "--quiet", "--force", "--mirror", str(bare), cwd=repo)
    else:
        bare.parent.mkdir(parents=True, exist_ok=True)
        _git("clone", "--quiet", "--bare", str(repo), str(bare), cwd=repo)
    _git("update-server-info", cwd=bare)


def make_release_archive(served: Path, name: str, member: str, content: bytes) -> tuple[str, str]:
    """A .tar.gz release with one executable member, and its `<archive>.sha256` checksum file."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo(member)
        info.size, info.mode, info.mtime = len(content), 0o755, 0
        tar.addfile(info, io.BytesIO(content))
    data = raw.getvalue()
    (served / "releases").mkdir(parents=True, exist_ok=True)
    (served / "releases" / name).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (served / "releases" / f"{name}.sha256").write_text(f"{digest}  {name}\n")
    return f"releases/{name}", f"releases/{name}.sha256"


def make_promu_release(served: Path, name: str, version: str, content: bytes) -> tuple[str, str, str]:
    """A release as promu publishes one: <name>-<version>.linux-amd64.tar.gz holding the binary as
    <name>-<version>.linux-amd64/<name>, listed in the release's sha256sums.txt. Returns the
    archive's and the checksum file's paths and the member."""
    stem = f"{name}-{version}.linux-amd64"
    folder = served / "promu" / name / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for member, data, mode in ((f"{stem}/", None, 0o755), (f"{stem}/{name}", content, 0o755)):
            info = tarfile.TarInfo(member.rstrip("/"))
            info.mtime, info.mode = 0, mode
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    data = raw.getvalue()
    (folder / f"{stem}.tar.gz").write_bytes(data)
    (folder / "sha256sums.txt").write_text(f"{hashlib.sha256(data).hexdigest()}  {stem}.tar.gz\n")
    where = f"promu/{name}/v{version}"
    return f"{where}/{stem}.tar.gz", f"{where}/sha256sums.txt", f"{stem}/{name}"


def make_release_binary(served: Path, name: str, content: bytes) -> tuple[str, str]:
    """A bare release binary with its `<binary>.sha256` checksum file (as Gitea publishes them)."""
    (served / "releases").mkdir(parents=True, exist_ok=True)
    (served / "releases" / name).write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    (served / "releases" / f"{name}.sha256").write_text(f"{digest}  {name}\n")
    return f"releases/{name}", f"releases/{name}.sha256"


def make_release_checksums(served: Path, directory: str, files: dict[str, bytes], checksums: str) -> None:
    """Release assets in one directory with one checksum file listing them (as k3s publishes
    sha256sum-<arch>.txt beside its binary and archives)."""
    folder = served / directory
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, content in sorted(files.items()):
        (folder / name).write_bytes(content)
        lines.append(f"{hashlib.sha256(content).hexdigest()}  {name}\n")
    (folder / checksums).write_text("".join(lines))


def docker_familiar_name(reference: str) -> str:
    """The name `docker save` records in RepoTags: docker.io/ and library/ dropped, as docker shows it."""
    if reference.startswith("docker.io/"):
        reference = reference[len("docker.io/") :]
        if reference.startswith("library/") and reference.count("/") == 1:
            reference = reference[len("library/") :]
    return reference


def docker_save_archive(layout_path: Path, references: list[str]) -> bytes:
    """`references` from the OCI layout as one `docker save` tarball (docker <= 24 layout).

    Each image keeps its config bytes (so its image ID is the config's sha256); each layer is
    stored uncompressed as <diff_id hex>/layer.tar, checked against the config's diff_ids.
    Deterministic: members sorted, mtime 0, USTAR headers.
    """
    from ansible_collections.island.installer.plugins.module_utils.island_oci_layout import OCILayout

    layout = OCILayout(str(layout_path))
    entries = {str(ref): entry for ref, entry in layout.images()}
    members: dict[str, bytes] = {}
    manifest, repositories = [], {}
    for reference in references:
        if reference not in entries:
            raise ValueError(f"{reference} is not in the staged layout {layout_path}: stage it first")
        image = json.loads(layout.read_blob(entries[reference]["digest"]))
        config_digest = image["config"]["digest"]
        config = layout.read_blob(config_digest)
        diff_ids = json.loads(config)["rootfs"]["diff_ids"]
        layer_names = []
        for descriptor, diff_id in zip(image["layers"], diff_ids, strict=True):
            layer = gzip.decompress(layout.read_blob(descriptor["digest"]))
            if "sha256:" + hashlib.sha256(layer).hexdigest() != diff_id:
                raise ValueError(f"{reference}: layer {descriptor['digest']} is not {diff_id} uncompressed")
            hex_id = diff_id.split(":", 1)[1]
            members[f"{hex_id}/layer.tar"] = layer
            members[f"{hex_id}/VERSION"] = b"1.0"
            members[f"{hex_id}/json"] = json.dumps({"id": hex_id}, sort_keys=True).encode()
            layer_names.append(f"{hex_id}/layer.tar")
        config_name = config_digest.split(":", 1)[1] + ".json"
        members[config_name] = config
        tag = docker_familiar_name(reference)
        manifest.append({"Config": config_name, "RepoTags": [tag], "Layers": layer_names})
        repository, _, name = tag.rpartition(":")
        repositories.setdefault(repository, {})[name] = layer_names[-1].split("/", 1)[0]
    members["manifest.json"] = json.dumps(manifest).encode()
    members["repositories"] = json.dumps(repositories, sort_keys=True).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def stage_images(work: Path, registry: Registry, images: dict | None = None) -> None:
    """Write the test images into a layout, then push them to the loopback registry."""
    from ansible_collections.island.installer.plugins.module_utils.island_oci import seed
    from ansible_collections.island.installer.plugins.module_utils.island_oci_layout import OCILayout

    layout = OCILayout(str(work / "staging-oci"))
    factory = ImageFactory(layout)
    layers = {}
    for ref, files_list in (images or IMAGES).items():
        built = []
        for files in files_list:
            key = tuple(sorted(files.items()))
            layers.setdefault(key, make_layer(files))
            built.append(layers[key])
        factory.image(ref, built)
    factory.index(
        MULTI_ARCH,
        ["linux/amd64", "linux/arm64"],
        {
            "linux/amd64": [layers[tuple(sorted(BASE.items()))], make_layer({"arch": b"amd64\n"})],
            "linux/arm64": [layers[tuple(sorted(BASE.items()))], make_layer({"arch": b"arm64\n"})],
        },
    )
    client = registry.client()
    try:
        seed(client, [layout])
    finally:
        client.close()


class Sources:
    """Every upstream source of the test bundle, up while the context is open."""

    def __init__(self, work: Path, release: int = 1):
        self.release = release_of(release)
        self.work = work
        self.served = work / "served"
        self.served.mkdir(parents=True, exist_ok=True)
        self.pki = make_pki(work / "pki")
        self.registry = Registry(work / "registry", self.pki)
        self.server = SourceServer(self.served)
        self.git_repo: Path | None = None

    def __enter__(self):
        versions = self.release.components
        self.registry_archive = make_release_archive(
            self.served,
            f"registry_{versions['registry']}_linux_amd64.tar.gz",
            "registry",
            registry_binary(versions["registry"]),
        )
        self.coredns_archive = make_release_archive(
            self.served,
            f"coredns_{versions['coredns']}_linux_amd64.tgz",
            "coredns",
            double_binary("coredns", versions["coredns"]),
        )
        self.gitea_binary = make_release_binary(
            self.served, f"gitea-{versions['gitea']}-linux-amd64", double_binary("gitea", versions["gitea"])
        )
        self.promu_releases = {
            name: make_promu_release(self.served, name, versions[name], binary.read_bytes())
            for name, (_, binary) in PROMETHEUS_FAMILY.items()
        }
        self.minio_binary = double_binary("minio", versions["minio"])
        (self.served / "releases" / f"minio.{versions['minio']}").write_bytes(self.minio_binary)
        # An image list as k3s publishes one (k3s-images.txt), with a checksum file beside it.
        listed = self.served / "lists" / "system-images.txt"
        listed.parent.mkdir(parents=True, exist_ok=True)
        listed.write_text("".join(f"{ref}\n" for ref in SYSTEM_IMAGES))
        digest = hashlib.sha256(listed.read_bytes()).hexdigest()
        (listed.parent / "sha256sum.txt").write_text(f"{digest}  system-images.txt\n")
        seed_file = self.served / "files" / "minio-seed" / "welcome.txt"
        seed_file.parent.mkdir(parents=True, exist_ok=True)
        seed_file.write_text("Welcome to the island.\n")
        self.git_repo = make_git_repository(self.work / "git-work", self.served, release=self.release)
        self.registry.start()
        stage_images(self.work, self.registry, self.release.images)
        # k3s's release: the binary and the airgap image archive, both in sha256sum-amd64.txt.
        make_release_checksums(
            self.served,
            "k3s-release",
            {
                "k3s": double_binary("k3s", versions["k3s"]),
                AIRGAP_ARCHIVE: zstd_compress(docker_save_archive(self.work / "staging-oci", SYSTEM_IMAGES)),
            },
            "sha256sum-amd64.txt",
        )
        self.server.__enter__()
        return self

    def __exit__(self, *exc):
        self.server.__exit__(*exc)
        self.registry.stop()

    def spec(self, name: str = "island-test", version: str | None = None, debs: dict | None = None) -> dict:
        """The test bundle's spec; with ``debs``, that section too (journal_debs())."""
        if debs:
            return {**self.spec(name, version), "debs": debs}
        base = self.server.base
        versions = self.release.components
        version = version or self.release.version
        archive, checksum = self.registry_archive
        mirror = {
            "host": self.registry.address,
            "ca_file": str(self.pki["ca"]),
            "username": self.registry.user,
            "password": self.registry.password,
        }
        seed = self.served / "files" / "minio-seed" / "welcome.txt"
        return {
            "name": name,
            "version": version,
            "registry_mirrors": {"docker.io": mirror, "ghcr.io": mirror},
            "components": {
                "coredns": {
                    "version": versions["coredns"],
                    "files": [
                        {
                            "dest": "bin/coredns",
                            "url": f"{base}/{self.coredns_archive[0]}",
                            "checksum_url": f"{base}/{self.coredns_archive[1]}",
                            "extract": "coredns",
                        }
                    ],
                },
                "gitea": {
                    "version": versions["gitea"],
                    "files": [
                        {
                            "dest": "bin/gitea",
                            "url": f"{base}/{self.gitea_binary[0]}",
                            "checksum_url": f"{base}/{self.gitea_binary[1]}",
                        }
                    ],
                },
                "k3s": {
                    "version": versions["k3s"],
                    "files": [
                        {
                            "dest": "bin/k3s",
                            "url": f"{base}/k3s-release/k3s",
                            "checksum_url": f"{base}/k3s-release/sha256sum-amd64.txt",
                        },
                        {
                            "dest": f"k3s/{AIRGAP_ARCHIVE}",
                            "url": f"{base}/k3s-release/{AIRGAP_ARCHIVE}",
                            "checksum_url": f"{base}/k3s-release/sha256sum-amd64.txt",
                        },
                    ],
                },
                "minio": {
                    "version": versions["minio"],
                    "files": [
                        {
                            "dest": "bin/minio",
                            "url": f"{base}/releases/minio.{versions['minio']}",
                            "sha256": hashlib.sha256(self.minio_binary).hexdigest(),
                        }
                    ],
                },
                "registry": {
                    "version": versions["registry"],
                    "files": [
                        {
                            "dest": "bin/registry",
                            "url": f"{base}/{archive}",
                            "checksum_url": f"{base}/{checksum}",
                            "extract": "registry",
                        }
                    ],
                },
                **{
                    name: {
                        "version": versions[name],
                        "files": [
                            {
                                "dest": f"bin/{name}",
                                "url": f"{base}/{tarball}",
                                "checksum_url": f"{base}/{sums}",
                                "extract": member,
                            }
                        ],
                    }
                    for name, (tarball, sums, member) in self.promu_releases.items()
                },
            },
            "images": [
                *(ref for ref in self.release.images if ref not in SYSTEM_IMAGES),
                {"reference": MULTI_ARCH},
            ],
            "image_lists": [
                {"url": f"{base}/lists/system-images.txt", "checksum_url": f"{base}/lists/sha256sum.txt"}
            ],
            "git": [
                {
                    "name": "island-config",
                    "url": f"{base}/git/island-config.git",
                    "refs": list(self.release.git_refs),
                }
            ],
            "files": [
                {
                    "dest": "files/minio-seed/welcome.txt",
                    "url": f"{base}/files/minio-seed/welcome.txt",
                    "sha256": hashlib.sha256(seed.read_bytes()).hexdigest(),
                }
            ],
        }

    def write_spec(self, path: Path, **kwargs) -> Path:
        path.write_text(yaml.safe_dump(self.spec(**kwargs), sort_keys=False))
        return path


def journal_debs() -> dict:
    """The journal's Debian packages (issue 17), the bundle's debs section: systemd-journal-remote
    (journal-remote and journal-upload, systemd 252 in Debian 12), socat (the TLS front that checks
    the uploaders' client certificates) and whatever a minimal Debian 12 with systemd and python3
    lacks for them (libmicrohttpd12, libcurl4 and its libraries, libwrap0), resolved by the builder
    with this machine's apt, whose sources are Debian 12's, like the test image's."""
    return {"release": "bookworm", "packages": ["systemd-journal-remote", "socat"]}


def ensure_signing_key(key: Path, allowed_signers: Path, identity: str = "island-test") -> None:
    """An Ed25519 signing key (made once) and the island-side allowed_signers file naming it."""
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", identity, "-f", str(key)],
            check=True,
            stdin=subprocess.DEVNULL,
        )
    public = Path(f"{key}.pub").read_text().split()
    allowed_signers.parent.mkdir(parents=True, exist_ok=True)
    allowed_signers.write_text(f'{identity} namespaces="island-bundle" {public[0]} {public[1]}\n')


def build_test_bundle(out: Path, signing_key: Path, work: Path | None = None, release: int = 1) -> dict:
    """Build (or update) release `release` of the test bundle in `out`, signed with `signing_key`.

    Returns the builder's result ({"changed", "lock", ...}). Each call starts its own sources on
    free loopback ports, so two releases can be built one after the other into two directories.
    """
    from ansible_collections.island.installer.plugins.module_utils.island_bundle_build import build

    release_of(release)
    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="island-test-bundle-")))
        sources = stack.enter_context(Sources(work, release=release))
        spec = sources.write_spec(work / "bundle-spec.yml", debs=journal_debs())
        return build(spec, out, signing_key=signing_key, cache_dir=work / "cache")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="bundle directory to build or update")
    parser.add_argument("--signing-key", type=Path, required=True, help="Ed25519 key (made if missing)")
    parser.add_argument("--allowed-signers", type=Path, required=True, help="allowed_signers file to write")
    parser.add_argument(
        "--release",
        type=int,
        choices=sorted(RELEASES),
        default=1,
        help="which release of the test bundle (default 1: island-test 1.0.0; 2: island-test 2.0.0)",
    )
    args = parser.parse_args()
    ensure_signing_key(args.signing_key, args.allowed_signers)
    result = build_test_bundle(args.out, args.signing_key, release=args.release)
    lock = result["lock"]
    state = "updated and signed" if result["changed"] else "unchanged"
    print(
        f"test bundle {lock['bundle']['name']} {lock['bundle']['version']} in {args.out}: {state}; "
        f"{len(lock['files'])} files, {len(lock['images'])} images, {len(lock['git'])} git repositories"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
