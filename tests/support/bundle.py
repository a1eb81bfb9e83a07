"""Helpers for the bundle tests: small bundles, signing keys and allowed_signers files in tmp_path."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from ansible_collections.island.installer.plugins.module_utils.island_bundle import sign, write_lock
from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import (
    LOCK_NAME,
    SIGNATURE_NAME,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

CREATED = "2026-11-21T12:00:00Z"
GIT_COMMIT = "3f786850e387550fdab836ed7e6dc881de23001b"


@dataclass
class Key:
    private_path: Path
    public_line: str  # "ssh-ed25519 AAAA..."


def make_key(directory: Path, name: str = "signer", passphrase: bytes | None = None) -> Key:
    """An Ed25519 key pair in OpenSSH format, as ``ssh-keygen -t ed25519`` writes it."""
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    encryption = BestAvailableEncryption(passphrase) if passphrase else NoEncryption()
    private_path = directory / name
    private_path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, encryption))
    private_path.chmod(0o600)
    public_line = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    (directory / f"{name}.pub").write_text(f"{public_line} {name}\n")
    return Key(private_path, public_line)


def write_allowed_signers(path: Path, *lines: tuple[str, Key, str]) -> Path:
    """allowed_signers with one ``principals [options] key`` line per (principals, key, options)."""
    text = "# signers trusted to sign island bundles\n"
    for principals, key, options in lines:
        text += " ".join(part for part in (principals, options, key.public_line) if part) + "\n"
    path.write_text(text)
    return path


def blob(data: bytes) -> tuple[str, bytes]:
    return hashlib.sha256(data).hexdigest(), data


def default_content() -> tuple[dict[str, bytes], dict[str, Any]]:
    """Files of a small but complete bundle, and the lock sections that describe them."""
    config_hex, config = blob(b'{"architecture":"amd64","os":"linux"}')
    layer_hex, layer = blob(b"layer bytes " * 100)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{config_hex}",
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": f"sha256:{layer_hex}"}
            ],
        }
    ).encode()
    manifest_hex = hashlib.sha256(manifest).hexdigest()
    index = json.dumps({"schemaVersion": 2, "manifests": [{"digest": f"sha256:{manifest_hex}"}]}).encode()
    files = {
        "bin/k3s": b"\x7fELF k3s binary " + bytes(range(256)) * 40,
        "bin/coredns": b"\x7fELF coredns " * 300,
        "k3s/install.sh": b"#!/bin/sh\necho install\n",
        "oci/oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
        "oci/index.json": index,
        f"oci/blobs/sha256/{config_hex}": config,
        f"oci/blobs/sha256/{layer_hex}": layer,
        f"oci/blobs/sha256/{manifest_hex}": manifest,
        "git/app.bundle": b"# v2 git bundle\n" + b"\0" * 500,
        "files/minio/seed/readme.txt": b"seed object\n",
        "files/empty": b"",
    }
    sections: dict[str, Any] = {
        "components": {
            "k3s": {"version": "v1.31.2+k3s1", "files": ["bin/k3s", "k3s/install.sh"]},
            "coredns": {"version": "1.11.3", "files": ["bin/coredns"]},
        },
        "images": [
            {
                "reference": "docker.io/library/alpine:3.20",
                "digest": f"sha256:{manifest_hex}",
                "media_type": "application/vnd.oci.image.manifest.v1+json",
                "platforms": ["linux/amd64"],
            }
        ],
        "git": [{"name": "app", "file": "git/app.bundle", "refs": {"refs/heads/main": GIT_COMMIT}}],
    }
    return files, sections


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def make_bundle(root: Path, files: dict[str, bytes] | None = None, **sections: Any) -> dict[str, Any]:
    """Write a bundle and its lock under ``root``; return the lock."""
    default_files, default_sections = default_content()
    write_files(root, default_files if files is None else files)
    if files is not None:
        default_sections = {"components": {}, "images": [], "git": []}
    default_sections.update(sections)
    return write_lock(root, name="island", version="2026.11.0", created=CREATED, **default_sections)


@dataclass
class SignedBundle:
    root: Path
    key: Key
    allowed_signers: Path
    lock: dict[str, Any]

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_NAME

    @property
    def signature_path(self) -> Path:
        return self.root / SIGNATURE_NAME


def make_signed_bundle(tmp_path: Path, **kwargs: Any) -> SignedBundle:
    """A bundle signed by a key that the island's allowed_signers file trusts."""
    root = tmp_path / "bundle"
    lock = make_bundle(root, **kwargs)
    key = make_key(tmp_path / "keys", "release")
    sign(root, key.private_path)
    signers = write_allowed_signers(
        tmp_path / "allowed_signers", ("release@island.example", key, 'namespaces="island-bundle"')
    )
    return SignedBundle(root, key, signers, lock)


def rewrite_lock(root: Path, change: Any) -> None:
    """Edit the lock file in place (as an attacker or careless hand would), keeping it valid YAML."""
    path = root / LOCK_NAME
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
