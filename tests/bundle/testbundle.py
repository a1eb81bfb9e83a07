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
  - coredns, gitea, minio, k3s: the test doubles of tests/doubles/<name>/, under the versions they
    stand in for (MinIO's binary pinned by sha256 in the spec, as the default spec must pin it);
  - k3s's airgap image archive, `k3s-airgap-images-amd64.tar`, shaped as k3s publishes it: a
    `docker save` tarball of the system images (k3s scripts/package-airgap, v1.36 branch:
    `docker save ${images} -o dist/artifacts/k3s-airgap-images-${ARCH}.tar`), its sha256 listed in
    the release's sha256sum-amd64.txt beside the binary. Here it holds the system image of the test
    bundle (docker.io/islandtest/tool:2.0), written from the staged OCI layout: the same config
    bytes, and the same layers uncompressed (as docker stores and saves them), so each layer's
    sha256 is its diff_id. The layout is docker <= 24's (manifest.json, repositories,
    <config>.json, <layer>/layer.tar), which containerd's import (and so k3s's) reads.

Command line (used by tools/demo.sh):
    python tests/bundle/testbundle.py OUT_DIR --signing-key KEY --allowed-signers FILE
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
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
if __name__ == "__main__":
    import ansible.module_utils

    ansible.module_utils.__path__.append(str(ROOT / "plugins" / "module_utils"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from oci_fixtures import ImageFactory, Registry, make_layer, make_pki  # noqa: E402

REGISTRY_BIN = Path("/usr/bin/docker-registry")
REGISTRY_VERSION = "2.8.2"  # Debian 12's docker-registry package
DOUBLES = ROOT / "tests" / "doubles"
COREDNS_VERSION = "1.14.2"  # what tests/doubles/coredns stands in for
GITEA_VERSION = "1.26.2"  # what tests/doubles/gitea stands in for
MINIO_VERSION = "RELEASE.2025-09-07T16-13-09Z"  # what tests/doubles/minio stands in for
K3S_VERSION = "v1.36.3+k3s1"  # what tests/doubles/k3s stands in for
GIT_DATE = "2026-01-01T00:00:00+00:00"

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
# k3s's airgap image archive, named as k3s publishes it for amd64; it holds SYSTEM_IMAGES.
AIRGAP_ARCHIVE = "k3s-airgap-images-amd64.tar"


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


def make_git_repository(work: Path, served: Path, name: str = "island-config") -> Path:
    """A small repository (main with two commits, tag v1.0), published for dumb-HTTP clones."""
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
    from ansible.module_utils.island_oci_layout import OCILayout

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


def stage_images(work: Path, registry: Registry) -> None:
    """Write the test images into a layout, then push them to the loopback registry."""
    from ansible.module_utils.island_oci import seed
    from ansible.module_utils.island_oci_layout import OCILayout

    layout = OCILayout(str(work / "staging-oci"))
    factory = ImageFactory(layout)
    layers = {}
    for ref, files_list in IMAGES.items():
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

    def __init__(self, work: Path):
        self.work = work
        self.served = work / "served"
        self.served.mkdir(parents=True, exist_ok=True)
        self.pki = make_pki(work / "pki")
        self.registry = Registry(work / "registry", self.pki)
        self.server = SourceServer(self.served)
        self.git_repo: Path | None = None

    def __enter__(self):
        self.registry_archive = make_release_archive(
            self.served,
            f"registry_{REGISTRY_VERSION}_linux_amd64.tar.gz",
            "registry",
            REGISTRY_BIN.read_bytes(),
        )
        self.coredns_archive = make_release_archive(
            self.served,
            f"coredns_{COREDNS_VERSION}_linux_amd64.tgz",
            "coredns",
            (DOUBLES / "coredns" / "coredns").read_bytes(),
        )
        self.gitea_binary = make_release_binary(
            self.served, f"gitea-{GITEA_VERSION}-linux-amd64", (DOUBLES / "gitea" / "gitea").read_bytes()
        )
        self.minio_binary = (DOUBLES / "minio" / "minio").read_bytes()
        (self.served / "releases" / f"minio.{MINIO_VERSION}").write_bytes(self.minio_binary)
        # An image list as k3s publishes one (k3s-images.txt), with a checksum file beside it.
        listed = self.served / "lists" / "system-images.txt"
        listed.parent.mkdir(parents=True, exist_ok=True)
        listed.write_text("".join(f"{ref}\n" for ref in SYSTEM_IMAGES))
        digest = hashlib.sha256(listed.read_bytes()).hexdigest()
        (listed.parent / "sha256sum.txt").write_text(f"{digest}  system-images.txt\n")
        seed_file = self.served / "files" / "minio-seed" / "welcome.txt"
        seed_file.parent.mkdir(parents=True, exist_ok=True)
        seed_file.write_text("Welcome to the island.\n")
        self.git_repo = make_git_repository(self.work / "git-work", self.served)
        self.registry.start()
        stage_images(self.work, self.registry)
        # k3s's release: the binary and the airgap image archive, both in sha256sum-amd64.txt.
        make_release_checksums(
            self.served,
            "k3s-release",
            {
                "k3s": (DOUBLES / "k3s" / "k3s").read_bytes(),
                AIRGAP_ARCHIVE: docker_save_archive(self.work / "staging-oci", SYSTEM_IMAGES),
            },
            "sha256sum-amd64.txt",
        )
        self.server.__enter__()
        return self

    def __exit__(self, *exc):
        self.server.__exit__(*exc)
        self.registry.stop()

    def spec(self, name: str = "island-test", version: str = "1.0.0") -> dict:
        base = self.server.base
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
                    "version": COREDNS_VERSION,
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
                    "version": GITEA_VERSION,
                    "files": [
                        {
                            "dest": "bin/gitea",
                            "url": f"{base}/{self.gitea_binary[0]}",
                            "checksum_url": f"{base}/{self.gitea_binary[1]}",
                        }
                    ],
                },
                "k3s": {
                    "version": K3S_VERSION,
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
                    "version": MINIO_VERSION,
                    "files": [
                        {
                            "dest": "bin/minio",
                            "url": f"{base}/releases/minio.{MINIO_VERSION}",
                            "sha256": hashlib.sha256(self.minio_binary).hexdigest(),
                        }
                    ],
                },
                "registry": {
                    "version": REGISTRY_VERSION,
                    "files": [
                        {
                            "dest": "bin/registry",
                            "url": f"{base}/{archive}",
                            "checksum_url": f"{base}/{checksum}",
                            "extract": "registry",
                        }
                    ],
                },
            },
            "images": [*(ref for ref in IMAGES if ref not in SYSTEM_IMAGES), {"reference": MULTI_ARCH}],
            "image_lists": [
                {"url": f"{base}/lists/system-images.txt", "checksum_url": f"{base}/lists/sha256sum.txt"}
            ],
            "git": [
                {"name": "island-config", "url": f"{base}/git/island-config.git", "refs": ["main", "v1.0"]}
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


def build_test_bundle(out: Path, signing_key: Path, work: Path | None = None) -> dict:
    from ansible.module_utils.island_bundle_build import build

    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="island-test-bundle-")))
        sources = stack.enter_context(Sources(work))
        spec = sources.write_spec(work / "bundle-spec.yml")
        return build(spec, out, signing_key=signing_key, cache_dir=work / "cache")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="bundle directory to build or update")
    parser.add_argument("--signing-key", type=Path, required=True, help="Ed25519 key (made if missing)")
    parser.add_argument("--allowed-signers", type=Path, required=True, help="allowed_signers file to write")
    args = parser.parse_args()
    ensure_signing_key(args.signing_key, args.allowed_signers)
    result = build_test_bundle(args.out, args.signing_key)
    lock = result["lock"]
    state = "updated and signed" if result["changed"] else "unchanged"
    print(
        f"test bundle {lock['bundle']['name']} {lock['bundle']['version']} in {args.out}: {state}; "
        f"{len(lock['files'])} files, {len(lock['images'])} images, {len(lock['git'])} git repositories"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
