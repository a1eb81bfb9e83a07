# Copyright: island installer contributors
# Shared vocabulary of the island OCI client: media types, digests, references and typed errors.
#
# Runs on Python 3.9+ with the standard library only (module_utils may be shipped to hosts).
from __future__ import annotations

import hashlib
import re

# --- Media types ---------------------------------------------------------------------------------
# OCI image-spec v1.1 and Docker image manifest v2 schema 2 (distribution 2.8.2 accepts all four
# manifest kinds below on PUT, keyed on the Content-Type header, which must equal the mediaType).
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
IMAGE_MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
MANIFEST_TYPES = IMAGE_MANIFEST_TYPES + INDEX_TYPES
# Sent on every manifest GET/HEAD; without it distribution 2.8.2 answers a schema1 conversion or 404
# for OCI content (it only serves what the client declares it accepts).
MANIFEST_ACCEPT = ", ".join(MANIFEST_TYPES)

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
# Set on index.json entries whose index was narrowed to some platforms by the pull engine: the
# digest of the upstream index the entry was derived from (the entry's own digest is new).
SOURCE_INDEX_ANNOTATION = "io.island.image.source-index.digest"

DOCKER_HUB = "docker.io"
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")
_NAME_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"^{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


# --- Errors --------------------------------------------------------------------------------------
class OCIError(Exception):
    """Base of every error the island OCI client raises; ``str()`` is a message for an operator."""

    def __init__(self, message, image=None):
        self.image = image
        if image:
            message = f"{image}: {message}"
        super().__init__(message)


class ReferenceError_(OCIError):
    """An image reference or repository name that does not parse."""


class LayoutError(OCIError):
    """An OCI layout or docker archive that is malformed or lacks a blob."""


class BlobMissingError(LayoutError):
    """A blob the image needs is absent from the layout."""


class BlobCorruptError(LayoutError):
    """A blob's bytes do not hash to its name."""


class RegistryError(OCIError):
    """The registry answered with an error; ``status`` and ``codes`` hold the details."""

    def __init__(self, message, image=None, status=None, codes=()):
        self.status = status
        self.codes = tuple(codes)
        super().__init__(message, image=image)


class AuthenticationError(RegistryError):
    """The registry refused our credentials (401) or the permission (403)."""


class TLSError(OCIError):
    """The TLS handshake failed: certificate not trusted by the CA file, or a name mismatch."""


class RegistryUnreachableError(OCIError):
    """No connection to host:port after all retries."""


class DigestMismatchError(OCIError):
    """The registry reports another digest than the one we pushed or asked for."""


# --- Digests -------------------------------------------------------------------------------------
def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest):
    """Return the hex part of a sha256 digest, or raise: we only store and push sha256 content."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        raise LayoutError(f"unsupported or malformed digest {digest!r} (expected sha256:<64 hex>)")
    return digest.split(":", 1)[1]


# --- References ----------------------------------------------------------------------------------
class ImageReference:
    """A parsed image reference, normalised as docker/containerd normalise it.

    ``alpine`` -> ``docker.io/library/alpine:latest``; ``host:5000/a/b@sha256:..`` keeps host and
    digest. ``str()`` gives the full normalised reference, which is what the layout records.
    """

    __slots__ = ("digest", "host", "path", "tag")

    def __init__(self, host, path, tag=None, digest=None):
        self.host = host
        self.path = path
        self.tag = tag
        self.digest = digest

    @classmethod
    def parse(cls, text):
        if not isinstance(text, str) or not text or text != text.strip():
            raise ReferenceError_(f"invalid image reference {text!r}")
        rest, digest = text, None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            try:
                check_digest(digest)
            except LayoutError:
                raise ReferenceError_(f"invalid digest in image reference {text!r}") from None
        tag = None
        last = rest.rsplit("/", 1)[-1]
        if ":" in last:
            rest, tag = rest.rsplit(":", 1)
            if not _TAG_RE.match(tag):
                raise ReferenceError_(f"invalid tag in image reference {text!r}")
        first, sep, remainder = rest.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            host, path = first, remainder
        else:
            host, path = DOCKER_HUB, rest
        if host in ("index.docker.io", "registry-1.docker.io"):
            host = DOCKER_HUB
        if host == DOCKER_HUB and "/" not in path:
            path = "library/" + path
        if not _NAME_RE.match(path):
            raise ReferenceError_(f"invalid repository name in image reference {text!r}")
        if tag is None and digest is None:
            tag = "latest"
        return cls(host, path, tag, digest)

    @property
    def name(self):
        return f"{self.host}/{self.path}"

    def __str__(self):
        text = self.name
        if self.tag:
            text += ":" + self.tag
        if self.digest:
            text += "@" + self.digest
        return text

    def __repr__(self):
        return f"ImageReference({str(self)!r})"

    def __eq__(self, other):
        return isinstance(other, ImageReference) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))


def check_repository(name):
    if not _NAME_RE.match(name or ""):
        raise ReferenceError_(f"invalid repository name {name!r}")
    return name


# Repository mapping rules: where an upstream reference lives in the island registry.
#
# strip_host (default): docker.io/library/alpine -> library/alpine. containerd, configured with
#   the island registry as mirror for docker.io (registries.yaml `mirrors`), asks the mirror for
#   /v2/library/alpine/manifests/3.20: it keeps the upstream path and drops the upstream host
#   (containerd 1.7 hosts.toml/mirror semantics, as k3s uses them). Two upstream hosts with the same
#   path would collide; the seeding engine refuses such a set of images.
# keep_host: docker.io/library/alpine -> docker.io/library/alpine, for registries.yaml `rewrite`
#   rules of the form "^(.*)$": "docker.io/$1" (one namespace per upstream host, no collisions).
REPOSITORY_RULES = ("strip_host", "keep_host")


def target_repository(ref, rule="strip_host", prefix=""):
    if rule == "strip_host":
        repo = ref.path
    elif rule == "keep_host":
        repo = ref.host.split(":", 1)[0] + "/" + ref.path
    else:
        raise ReferenceError_(f"unknown repository rule {rule!r} (one of {REPOSITORY_RULES})")
    if prefix:
        repo = prefix.strip("/") + "/" + repo
    return check_repository(repo)
