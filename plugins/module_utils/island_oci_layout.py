# Copyright: island installer contributors
# Content sources for the island OCI client: the OCI image layout (read and write) and legacy
# `docker save` archives (read only, converted on the fly).
#
# OCI image layout as specified by image-spec v1.1 `image-layout.md`: `oci-layout`, `index.json`,
# `blobs/sha256/<hex>`. One layout holds every image of a bundle; a blob shared by several images
# is stored once. Each index.json entry names its image with the annotation
# `org.opencontainers.image.ref.name` set to the FULL normalised reference
# (`docker.io/library/alpine:3.20`). The image-spec allows any string there; skopeo's `oci:dir:ref`
# stores whatever it is given and containerd stores only the tag (with the full name in
# `io.containerd.image.name`). A full reference is the only choice that is unambiguous in a layout
# holding many repositories, and skopeo reads it back with `oci:<dir>:<full reference>`.
from __future__ import annotations

import abc
import hashlib
import io
import json
import os
import tarfile
import threading

from ansible_collections.island.installer.plugins.module_utils.island_io import (
    atomic_open,
    atomic_write,
    sha256_file,
)
from ansible_collections.island.installer.plugins.module_utils.island_oci_common import (
    IMAGE_MANIFEST_TYPES,
    INDEX_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_LAYER_TAR,
    OCI_MANIFEST,
    REF_NAME_ANNOTATION,
    BlobCorruptError,
    BlobMissingError,
    ImageReference,
    LayoutError,
    OCIError,
    check_digest,
    sha256_digest,
)

CHUNK = 1024 * 1024
_CONTAINERD_NAME = "io.containerd.image.name"
_DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"


def canonical_json(obj):
    """Bytes for JSON documents this client creates itself (never used to re-serialise upstream)."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode("utf-8")


def parse_manifest(data, digest, image=None):
    try:
        doc = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise LayoutError(f"manifest {digest} is not JSON: {exc}", image=image) from None
    if not isinstance(doc, dict):
        raise LayoutError(f"manifest {digest} is not a JSON object", image=image)
    return doc


def manifest_media_type(doc, declared=None):
    """The media type of a manifest document: its own mediaType, else the descriptor's, else guess."""
    media_type = doc.get("mediaType") or declared
    if not media_type:
        media_type = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    return media_type


class HashingReader:
    """File-like wrapper that hashes what is read and reports a mismatch against the blob's name.

    Used to stream a blob to the registry while checking it against its own digest on the same
    pass, so nothing is read twice and memory stays flat.
    """

    def __init__(self, fileobj, digest, size=None, image=None):
        self._f = fileobj
        self._digest = digest
        self._size = size
        self._image = image
        self._h = hashlib.sha256()
        self.count = 0

    def read(self, n=-1):
        if self._size is not None:
            left = self._size - self.count
            n = left if n is None or n < 0 else min(n, left)
            if n <= 0:
                return b""
        data = self._f.read(n)
        self._h.update(data)
        self.count += len(data)
        return data

    def verify(self):
        actual = "sha256:" + self._h.hexdigest()
        if actual != self._digest or (self._size is not None and self.count != self._size):
            raise BlobCorruptError(
                f"blob {self._digest} is corrupt in the source: its content hashes to {actual} "
                f"({self.count} bytes)",
                image=self._image,
            )

    def close(self):
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Slice:
    """A read-only window onto an open file (a member of an uncompressed tar archive)."""

    def __init__(self, path, offset, size):
        self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._f.seek(offset)
        self._left = size

    def read(self, n=-1):
        if self._left <= 0:
            return b""
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._f.read(n)
        self._left -= len(data)
        return data

    def close(self):
        self._f.close()


class ContentSource(abc.ABC):
    """What the seeding engine reads from: images by reference, and blobs by digest."""

    name = "source"

    @abc.abstractmethod
    def images(self):
        """List of (ImageReference, descriptor dict) in source order."""

    @abc.abstractmethod
    def has_blob(self, digest):
        """Whether the source holds the blob."""

    @abc.abstractmethod
    def blob_size(self, digest):
        """The blob's size in bytes."""

    @abc.abstractmethod
    def open_blob(self, digest):
        """A readable file object with the blob's bytes (the caller closes it)."""

    def read_blob(self, digest, image=None):
        """Whole blob (manifests, configs), checked against its name."""
        if not self.has_blob(digest):
            raise BlobMissingError(f"blob {digest} is missing from {self.name}", image=image)
        with self.open_blob(digest) as f:
            data = f.read()
        if sha256_digest(data) != digest:
            raise BlobCorruptError(
                f"blob {digest} in {self.name} hashes to {sha256_digest(data)}", image=image
            )
        return data

    def warnings(self):
        return []


class OCILayout(ContentSource):
    """An OCI image layout directory, for reading (seeding) and writing (pulling)."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.name = f"OCI layout {self.path}"
        self._lock = threading.Lock()

    # -- structure --------------------------------------------------------------------------------
    def blob_path(self, digest):
        return os.path.join(self.path, "blobs", "sha256", check_digest(digest))

    def exists(self):
        return os.path.isfile(os.path.join(self.path, "oci-layout"))

    def init(self):
        """Create an empty layout, or check an existing one; idempotent."""
        os.makedirs(os.path.join(self.path, "blobs", "sha256"), exist_ok=True)
        if not self.exists():
            atomic_write(os.path.join(self.path, "oci-layout"), b'{"imageLayoutVersion":"1.0.0"}', 0o644)
        if not os.path.isfile(os.path.join(self.path, "index.json")):
            self._write_index({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        self.read_index()
        return self

    def read_index(self):
        marker = os.path.join(self.path, "oci-layout")
        try:
            with open(marker, "rb") as f:
                version = json.loads(f.read().decode("utf-8")).get("imageLayoutVersion")
        except (OSError, ValueError) as exc:
            raise LayoutError(f"{self.path} is not an OCI image layout (oci-layout: {exc})") from None
        if version != "1.0.0":
            raise LayoutError(f"{self.path}: unsupported imageLayoutVersion {version!r}")
        try:
            with open(os.path.join(self.path, "index.json"), "rb") as f:
                index = json.loads(f.read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise LayoutError(f"{self.path}: cannot read index.json: {exc}") from None
        if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
            raise LayoutError(f"{self.path}: index.json is not an image index")
        index.setdefault("manifests", [])
        return index

    def _write_index(self, index):
        data = json.dumps(index, indent=2, sort_keys=False).encode("utf-8") + b"\n"
        atomic_write(os.path.join(self.path, "index.json"), data, 0o644)

    # -- images -----------------------------------------------------------------------------------
    def images(self):
        result = []
        for entry in self.read_index()["manifests"]:
            annotations = entry.get("annotations") or {}
            name = annotations.get(REF_NAME_ANNOTATION, "")
            ref = _full_reference(name) or _full_reference(annotations.get(_CONTAINERD_NAME, ""))
            if ref is None:
                raise LayoutError(
                    "{}: index.json entry {} has no full image reference in {} (got {!r})".format(
                        self.path, entry.get("digest"), REF_NAME_ANNOTATION, name
                    )
                )
            result.append((ref, entry))
        return result

    def set_image(self, ref, descriptor, extra_annotations=None):
        """Record (or move) the index.json entry for ``ref``; returns the previous digest or None."""
        ref_text = str(ref)
        entry = {
            "mediaType": descriptor["mediaType"],
            "digest": descriptor["digest"],
            "size": descriptor["size"],
        }
        if descriptor.get("platform"):
            entry["platform"] = descriptor["platform"]
        annotations = {REF_NAME_ANNOTATION: ref_text}
        annotations.update(extra_annotations or {})
        entry["annotations"] = annotations
        with self._lock:
            index = self.read_index()
            previous = None
            kept = []
            for old in index["manifests"]:
                if (old.get("annotations") or {}).get(REF_NAME_ANNOTATION) == ref_text:
                    previous = old.get("digest")
                else:
                    kept.append(old)
            kept.append(entry)
            index["manifests"] = kept
            self._write_index(index)
        return previous

    # -- blobs ------------------------------------------------------------------------------------
    def has_blob(self, digest):
        return os.path.isfile(self.blob_path(digest))

    def blob_size(self, digest):
        try:
            return os.path.getsize(self.blob_path(digest))
        except OSError:
            raise BlobMissingError(f"blob {digest} is missing from {self.name}") from None

    def open_blob(self, digest):
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise BlobMissingError(f"blob {digest} is missing from {self.name}") from None

    def has_valid_blob(self, digest, size=None):
        """True if the blob is present, of the expected size, and hashes to its name."""
        path = self.blob_path(digest)
        try:
            if size is not None and os.path.getsize(path) != size:
                return False
            _size, hexdigest = sha256_file(path, follow_symlinks=True)
        except OSError:
            return False
        return "sha256:" + hexdigest == digest

    def write_blob(self, data, digest=None):
        """Store bytes as a blob (atomic); returns its digest."""
        actual = sha256_digest(data)
        if digest is not None and digest != actual:
            raise BlobCorruptError(f"refusing to store {actual} under the name {digest}")
        path = self.blob_path(actual)
        if not (os.path.isfile(path) and os.path.getsize(path) == len(data)):
            atomic_write(path, data, 0o644)
        return actual

    def write_blob_stream(self, digest, chunks, size=None, image=None):
        """Stream chunks into a temp file beside the blob, verify sha256 and size, then rename."""
        path = self.blob_path(digest)
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        h = hashlib.sha256()
        count = 0
        with atomic_open(path, 0o644) as f:
            for chunk in chunks:
                h.update(chunk)
                count += len(chunk)
                f.write(chunk)
            actual = "sha256:" + h.hexdigest()
            if actual != digest or (size is not None and count != size):
                raise BlobCorruptError(
                    f"downloaded blob {digest} hashes to {actual} ({count} bytes, expected {size})",
                    image=image,
                )
        return count


class DockerArchive(ContentSource):
    """A `docker save` archive (tar file), read in place without unpacking.

    Docker >= 25 writes an OCI image layout inside the archive (`oci-layout`, `index.json`,
    `blobs/sha256/..`) beside the legacy `manifest.json`. Its manifests and indexes are read as
    they are, so their digests are kept: with docker's containerd image store they are the
    upstream digests (compressed original layers, full multi-arch index, moby
    `daemon/containerd/image_exporter.go`). Platforms whose blobs docker did not have are named in
    the index but absent; seeding such an image fails, naming the missing blob. With the older
    graphdriver store the layers are uncompressed re-exports and :meth:`warnings` says that the
    digests cannot be the upstream ones.

    A legacy archive (docker <= 24, `podman save`) holds configs and uncompressed layer tars but no
    registry manifest, so one OCI image manifest per image is synthesised: config as
    `application/vnd.oci.image.config.v1+json` (Docker's image config is a superset of the OCI
    config), layers as `application/vnd.oci.image.layer.v1.tar` (or `+gzip` if a layer is gzip
    already). Layer digests are the sha256 of the tar members, reproducible from the archive but
    NOT the digests the upstream registry served: such images cannot keep their upstream digests,
    and :meth:`warnings` says so for each.
    """

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.name = f"docker archive {self.path}"
        self._blobs = {}  # digest -> (offset, size)
        self._images = []
        self._manifests = {}  # digest -> synthesised manifest bytes
        self._warnings = []
        self._load()

    def _load(self):
        try:
            tar = tarfile.open(self.path, "r:")  # noqa: SIM115 - closed below
        except (OSError, tarfile.TarError) as exc:
            raise LayoutError(f"cannot read {self.name}: {exc}") from None
        with tar:
            members = {(m.name[2:] if m.name.startswith("./") else m.name): m for m in tar.getmembers()}
            if "index.json" in members and "oci-layout" in members:
                self._load_oci(tar, members)
                return
            if "manifest.json" not in members:
                raise LayoutError(f"{self.name} has no manifest.json (not a docker-archive)")
            entries = json.loads(tar.extractfile(members["manifest.json"]).read().decode("utf-8"))
            if not isinstance(entries, list):
                raise LayoutError(f"{self.name}: manifest.json is not a list")
            for entry in entries:
                self._load_entry(tar, members, entry)

    def _load_oci(self, tar, members):
        """Docker >= 25: the OCI layout inside the archive is the source of truth."""
        for name, member in members.items():
            if name.startswith("blobs/sha256/") and member.isfile():
                self._blobs["sha256:" + name.rsplit("/", 1)[1]] = (member.offset_data, member.size)
        try:
            index = json.loads(tar.extractfile(members["index.json"]).read().decode("utf-8"))
        except ValueError as exc:
            raise LayoutError(f"{self.name}: index.json is not JSON: {exc}") from None
        for entry in index.get("manifests") or []:
            annotations = entry.get("annotations") or {}
            ref = _full_reference(annotations.get(_CONTAINERD_NAME, "")) or _full_reference(
                annotations.get(REF_NAME_ANNOTATION, "")
            )
            if ref is None:
                self._warnings.append(
                    f"{self.name}: index.json entry {entry.get('digest')} has no image name; skipped"
                )
                continue
            self._images.append((ref, entry))
            if self._uncompressed(entry, str(ref)):
                self._warnings.append(
                    f"{ref} comes from a docker-archive ({self.path}) exported with uncompressed layers "
                    f"(docker's graphdriver store): it cannot keep the upstream digest (seeded as "
                    f"{entry.get('digest')})"
                )

    def _uncompressed(self, descriptor, image):
        """True if the image (or any platform present) has plain-tar layers: a re-export."""
        digest = descriptor.get("digest")
        if not self.has_blob(digest):
            return False
        doc = parse_manifest(self.read_blob(digest, image=image), digest, image=image)
        children, blobs = image_children(doc, manifest_media_type(doc, descriptor.get("mediaType")))
        if any(self._uncompressed(child, image) for child in children):
            return True
        return any(b.get("mediaType") in (OCI_LAYER_TAR, _DOCKER_LAYER_TAR) for b in blobs[1:])

    def _member_blob(self, tar, members, name):
        member = members.get(name)
        if member is None or not member.isfile():
            raise BlobMissingError(f"{self.name} lacks the member {name}")
        h = hashlib.sha256()
        f = tar.extractfile(member)
        head = f.read(2)
        h.update(head)
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
        digest = "sha256:" + h.hexdigest()
        self._blobs[digest] = (member.offset_data, member.size)
        return digest, member.size, head == b"\x1f\x8b"

    def _load_entry(self, tar, members, entry):
        tags = entry.get("RepoTags") or []
        if not tags:
            self._warnings.append(
                "{}: image with config {} has no RepoTags and is skipped".format(
                    self.name, entry.get("Config")
                )
            )
            return
        config_digest, config_size, _ = self._member_blob(tar, members, entry["Config"])
        layers = []
        for layer_name in entry.get("Layers") or []:
            digest, size, gzipped = self._member_blob(tar, members, layer_name)
            layers.append(
                {"mediaType": OCI_LAYER_GZIP if gzipped else OCI_LAYER_TAR, "digest": digest, "size": size}
            )
        manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
                "layers": layers,
            }
        )
        digest = sha256_digest(manifest)
        self._manifests[digest] = manifest
        for tag in tags:
            ref = ImageReference.parse(tag)
            self._images.append((ref, {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)}))
            self._warnings.append(
                f"{ref} comes from a docker-archive ({self.path}): its manifest was synthesised with "
                f"uncompressed "
                f"layers, so it cannot keep the upstream digest (seeded as {digest})"
            )

    def images(self):
        return list(self._images)

    def warnings(self):
        return list(self._warnings)

    def has_blob(self, digest):
        return digest in self._blobs or digest in self._manifests

    def blob_size(self, digest):
        if digest in self._manifests:
            return len(self._manifests[digest])
        try:
            return self._blobs[digest][1]
        except KeyError:
            raise BlobMissingError(f"blob {digest} is missing from {self.name}") from None

    def open_blob(self, digest):
        if digest in self._manifests:
            return io.BytesIO(self._manifests[digest])
        try:
            offset, size = self._blobs[digest]
        except KeyError:
            raise BlobMissingError(f"blob {digest} is missing from {self.name}") from None
        return _ClosingSlice(self.path, offset, size)


class _ClosingSlice(_Slice):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def image_children(doc, media_type):
    """Descriptors an image manifest or index refers to: (child manifests, blobs)."""
    if media_type in INDEX_TYPES:
        return list(doc.get("manifests") or []), []
    if media_type in IMAGE_MANIFEST_TYPES:
        blobs = []
        if doc.get("config"):
            blobs.append(doc["config"])
        blobs.extend(doc.get("layers") or [])
        return [], blobs
    raise OCIError(f"unsupported manifest media type {media_type!r}")


def _full_reference(text):
    """An ImageReference if ``text`` is a full reference with a registry host; else None."""
    if not text or "/" not in text:
        return None
    first = text.split("/", 1)[0]
    if not ("." in first or ":" in first or first == "localhost"):
        return None
    try:
        return ImageReference.parse(text)
    except OCIError:
        return None
