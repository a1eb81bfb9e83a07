# Copyright: island installer contributors
# The island's ONE OCI client: seeding an island registry from the bundle (layout -> registry)
# and pulling images into the bundle in the transfer zone (registry -> layout).
#
# Public API (see docs/registry-seeding.md):
#   RegistryClient(registry, ca_file=None, username=None, password=None, retries=3, backoff=0.5)
#   OCILayout(path).init() / .images() / .set_image(ref, descriptor)
#   DockerArchive(path)
#   seed(client, sources, *, images=None, rule="strip_host", prefix="", check_mode=False, workers=4)
#       -> SeedResult (.changed, .images, .warnings, .diff(), .to_dict())
#   pull(client, reference, layout, *, platforms=None, repository=None, workers=4) -> dict
#   ImageReference.parse(text), target_repository(ref, rule, prefix)
#   errors: OCIError > LayoutError > BlobMissingError, BlobCorruptError; RegistryError >
#           AuthenticationError; TLSError; RegistryUnreachableError; DigestMismatchError
#
# Standard library only; Python 3.9+.
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.island.installer.plugins.module_utils.island_oci_common import (
    INDEX_TYPES,
    REPOSITORY_RULES,
    SOURCE_INDEX_ANNOTATION,
    AuthenticationError,
    BlobCorruptError,
    BlobMissingError,
    DigestMismatchError,
    ImageReference,
    LayoutError,
    OCIError,
    ReferenceError_,
    RegistryError,
    RegistryUnreachableError,
    TLSError,
    sha256_digest,
    target_repository,
)
from ansible_collections.island.installer.plugins.module_utils.island_oci_layout import (
    ContentSource,
    DockerArchive,
    HashingReader,
    OCILayout,
    canonical_json,
    image_children,
    manifest_media_type,
    parse_manifest,
)
from ansible_collections.island.installer.plugins.module_utils.island_oci_registry import RegistryClient

__all__ = [
    "REPOSITORY_RULES",
    "AuthenticationError",
    "BlobCorruptError",
    "BlobMissingError",
    "DigestMismatchError",
    "DockerArchive",
    "ImageReference",
    "LayoutError",
    "OCIError",
    "OCILayout",
    "ReferenceError_",
    "RegistryClient",
    "RegistryError",
    "RegistryUnreachableError",
    "SeedResult",
    "TLSError",
    "pull",
    "seed",
    "target_repository",
]


# === Seeding: layout -> registry =================================================================
class _Manifest:
    """One manifest of an image as stored in the source: exact bytes, and what it refers to."""

    __slots__ = ("blobs", "children", "data", "digest", "media_type")

    def __init__(self, digest, media_type, data, children, blobs):
        self.digest = digest
        self.media_type = media_type
        self.data = data
        self.children = children  # list of _Manifest (index only)
        self.blobs = blobs  # list of (digest, size) (image manifest only)


class _Image:
    __slots__ = ("manifest", "old_digest", "ref", "repository", "source", "tag")

    def __init__(self, ref, source, manifest, repository):
        self.ref = ref
        self.source = source
        self.manifest = manifest
        self.repository = repository
        self.tag = ref.tag
        self.old_digest = None

    @property
    def target(self):
        return self.tag or self.manifest.digest

    def manifests(self):
        """Children first, then the top manifest: the order they must be pushed in."""
        return [*list(self.manifest.children), self.manifest]

    def blobs(self):
        seen = {}
        for m in self.manifests():
            for digest, size in m.blobs:
                seen.setdefault(digest, size)
        return seen


def _load_manifest(source, descriptor, image, depth=0):
    digest = descriptor.get("digest")
    if not digest:
        raise LayoutError("descriptor without digest", image=image)
    if not source.has_blob(digest):
        raise BlobMissingError(f"manifest {digest} is missing from {source.name}", image=image)
    data = source.read_blob(digest, image=image)
    doc = parse_manifest(data, digest, image=image)
    media_type = manifest_media_type(doc, descriptor.get("mediaType"))
    children_desc, blob_desc = image_children(doc, media_type)
    if media_type in INDEX_TYPES and depth > 0:
        raise LayoutError(f"nested image index {digest} is not supported", image=image)
    children = [_load_manifest(source, d, image, depth + 1) for d in children_desc]
    blobs = []
    for d in blob_desc:
        if d.get("urls"):  # foreign / non-distributable layer: the registry need not hold it
            continue
        if not source.has_blob(d["digest"]):
            raise BlobMissingError(
                "blob {} (of manifest {}) is missing from {}".format(d["digest"], digest, source.name),
                image=image,
            )
        size = source.blob_size(d["digest"])
        if d.get("size") is not None and size != d["size"]:
            raise BlobCorruptError(
                "blob {} in {} has {} bytes, the manifest says {}".format(
                    d["digest"], source.name, size, d["size"]
                ),
                image=image,
            )
        blobs.append((d["digest"], size))
    return _Manifest(digest, media_type, data, children, blobs)


def _select_images(sources, wanted, rule, prefix):
    available = []
    for source in sources:
        for ref, descriptor in source.images():
            available.append((ref, descriptor, source))
    if wanted:
        by_name = {}
        for ref, descriptor, source in available:
            by_name.setdefault(str(ref), (ref, descriptor, source))
        chosen = []
        for text in wanted:
            ref = ImageReference.parse(text)
            if str(ref) not in by_name:
                raise LayoutError(
                    "image {} is not in {}".format(ref, ", ".join(s.name for s in sources) or "any source")
                )
            chosen.append(by_name[str(ref)])
    else:
        chosen = available
    images = []
    targets = {}
    for ref, descriptor, source in chosen:
        if ref.digest and ref.digest != descriptor["digest"]:
            raise LayoutError(
                "reference pins {} but {} holds {}".format(ref.digest, source.name, descriptor["digest"]),
                image=str(ref),
            )
        repo = target_repository(ref, rule, prefix)
        manifest = _load_manifest(source, descriptor, str(ref))
        image = _Image(ref, source, manifest, repo)
        key = (repo, image.target)
        other = targets.get(key)
        if other is not None:
            if other.manifest.digest != manifest.digest:
                raise LayoutError(
                    f"{other.ref} and {ref} both map to {repo}:{image.target} in the island registry "
                    f"with different digests (repository rule {rule!r})"
                )
            continue
        targets[key] = image
        images.append(image)
    return images


class SeedResult:
    """What seeding did (or would do, in check mode)."""

    def __init__(self, registry, check_mode):
        self.registry = registry
        self.check_mode = check_mode
        self.images = []
        self.warnings = []

    @property
    def changed(self):
        return any(r["changed"] for r in self.images)

    def diff(self):
        before, after = {}, {}
        for r in self.images:
            where = ":" + r["tag"] if r["tag"] else "@" + r["digest"]
            key = "{}/{}{}".format(self.registry, r["repository"], where)
            before[key] = r["old_digest"]
            after[key] = r["digest"]
        return {"before": before, "after": after}

    def to_dict(self):
        return {
            "changed": self.changed,
            "images": self.images,
            "warnings": self.warnings,
            "blobs_uploaded": sum(len(r["blobs_uploaded"]) for r in self.images),
            "blobs_mounted": sum(len(r["blobs_mounted"]) for r in self.images),
            "bytes_uploaded": sum(r["bytes_uploaded"] for r in self.images),
        }


def _parallel(workers, func, items):
    """Run func over items on a bounded pool; re-raise the first error after all finished."""
    items = list(items)
    if not items:
        return []
    if workers <= 1 or len(items) == 1:
        return [func(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures = [pool.submit(func, i) for i in items]
        results, error = [], None
        for f in futures:
            try:
                results.append(f.result())
            except Exception as exc:  # collect, so that every thread is done before we raise
                error = error or exc
                results.append(None)
    if error is not None:
        raise error
    return results


def seed(client, sources, *, images=None, rule="strip_host", prefix="", check_mode=False, workers=4):
    """Make the registry hold every selected image under its digest, pushing only what is missing.

    ``sources``: OCILayout / DockerArchive objects (or one of them). ``images``: references to seed
    (default: every image of every source). Decisions are made by digest: HEAD the manifest by tag;
    when the digest differs (or the tag is missing) HEAD child manifests and blobs in the target
    repository, mount blobs the registry holds in another repository (seen during this run),
    upload the rest, then PUT child manifests by digest and the top manifest by tag, as the exact
    bytes from the source. Check mode stops after the HEAD requests. Returns a SeedResult.
    """
    if isinstance(sources, ContentSource):
        sources = [sources]
    result = SeedResult(client.registry, check_mode)
    for source in sources:
        result.warnings.extend(source.warnings())
    selected = _select_images(sources, images, rule, prefix)
    if selected:
        client.ping()
        seeder = _Seeder(client, selected, workers)
        seeder.inspect()
        seeder.plan()
        if not check_mode:
            seeder.write()
        result.images = seeder.report()
    return result


class _Seeder:
    """The phases of one seeding run, sharing what the registry is known to hold."""

    def __init__(self, client, images, workers):
        self.client = client
        self.images = images
        self.workers = workers
        self.known = {}  # blob digest -> a repository known to hold it (mount source)
        self.present = set()  # (repo, digest) of blobs and manifests the registry holds
        self.lock = threading.Lock()
        self.pending = []
        self.uploads = {}  # digest -> (repo, image, size): each missing blob is uploaded once
        self.mounts = []  # (repo, digest, from_repo, image, size): and mounted everywhere else
        self.stats = {id(i): {"uploaded": [], "mounted": [], "present": 0, "bytes": 0} for i in images}

    def _have(self, repo, digest, blob=False):
        with self.lock:
            self.present.add((repo, digest))
            if blob:
                self.known.setdefault(digest, repo)

    def inspect(self):
        """HEAD requests only: tags, then child manifests and blobs of the images that differ."""
        client = self.client

        def head_tag(image):
            found = client.head_manifest(image.repository, image.target, image=str(image.ref))
            image.old_digest = found[0] if found else None

        _parallel(self.workers, head_tag, self.images)
        for image in self.images:
            if image.old_digest == image.manifest.digest:
                # distribution verifies references on manifest PUT, so the blobs of a manifest the
                # registry holds are in that repository: known without asking.
                for digest in image.blobs():
                    self._have(image.repository, digest, blob=True)
            else:
                self.pending.append(image)

        checks = {(i.repository, m.digest): (i, m) for i in self.pending for m in i.manifests()}

        def head_manifest(item):
            image, m = item
            if client.head_manifest(image.repository, m.digest, image=str(image.ref)):
                self._have(image.repository, m.digest)

        _parallel(self.workers, head_manifest, list(checks.values()))

        blob_checks = {}
        for image in self.pending:
            for m in self._missing_manifests(image):
                for digest, _size in m.blobs:
                    if (image.repository, digest) not in self.present:
                        blob_checks.setdefault((image.repository, digest), image)

        def head_blob(item):
            (repo, digest), image = item
            if client.head_blob(repo, digest, image=str(image.ref)):
                self._have(repo, digest, blob=True)

        _parallel(self.workers, head_blob, list(blob_checks.items()))

    def _missing_manifests(self, image):
        return [m for m in image.manifests() if (image.repository, m.digest) not in self.present]

    def plan(self):
        """Decide per missing blob: upload once (first repository needing it), mount elsewhere."""
        planned = set(self.present)
        for image in self.pending:
            stats = self.stats[id(image)]
            for m in self._missing_manifests(image):
                for digest, size in m.blobs:
                    key = (image.repository, digest)
                    if key in planned:
                        stats["present"] += 1
                        continue
                    planned.add(key)
                    source_repo = self.known.get(digest)
                    if source_repo is None and digest not in self.uploads:
                        self.uploads[digest] = (image.repository, image, size)
                        stats["uploaded"].append(digest)
                        stats["bytes"] += size
                    else:
                        from_repo = source_repo or self.uploads[digest][0]
                        self.mounts.append((image.repository, digest, from_repo, image, size))
                        stats["mounted"].append(digest)

    def write(self):
        """Uploads (largest first), then mounts, then manifests: children by digest, top by tag."""
        client = self.client

        def upload(item):
            digest, (repo, image, size) = item
            _upload(client, image, repo, digest, size)

        _parallel(self.workers, upload, sorted(self.uploads.items(), key=lambda kv: -kv[1][2]))

        def mount(item):
            repo, digest, from_repo, image, size = item
            mounted, location = client.mount_blob(repo, digest, from_repo, image=str(image.ref))
            if not mounted:  # 202: the registry opened an upload session instead; use it
                _upload(client, image, repo, digest, size, location=location)
                with self.lock:
                    stats = self.stats[id(image)]
                    stats["mounted"].remove(digest)
                    stats["uploaded"].append(digest)
                    stats["bytes"] += size

        _parallel(self.workers, mount, self.mounts)

        def push(images):
            for image in images:
                for m in image.manifests():
                    if m is image.manifest:
                        reference = image.target
                    elif (image.repository, m.digest) not in self.present:
                        reference = m.digest
                    else:
                        continue
                    client.put_manifest(
                        image.repository, reference, m.data, m.media_type, image=str(image.ref)
                    )

        # Images of one repository push in order (indexes in it may share children).
        by_repo = {}
        for image in self.pending:
            by_repo.setdefault(image.repository, []).append(image)
        _parallel(self.workers, push, list(by_repo.values()))

    def report(self):
        rows = []
        for image in self.images:
            stats = self.stats[id(image)]
            unchanged = image.old_digest == image.manifest.digest
            if unchanged:
                action, pushed = "unchanged", []
            else:
                action = "create" if image.old_digest is None else "update"
                pushed = [
                    m.digest
                    for m in image.manifests()
                    if m is image.manifest or (image.repository, m.digest) not in self.present
                ]
            rows.append(
                {
                    "image": str(image.ref),
                    "repository": image.repository,
                    "tag": image.tag,
                    "digest": image.manifest.digest,
                    "media_type": image.manifest.media_type,
                    "old_digest": image.old_digest,
                    "changed": not unchanged,
                    "action": action,
                    "manifests_pushed": pushed,
                    "blobs_uploaded": sorted(stats["uploaded"]),
                    "blobs_mounted": sorted(stats["mounted"]),
                    "blobs_present": len(image.blobs()) if unchanged else stats["present"],
                    "bytes_uploaded": stats["bytes"],
                    "source": image.source.name,
                }
            )
        return rows


def _upload(client, image, repo, digest, size, *, location=None):
    source = image.source

    def opener():
        return HashingReader(source.open_blob(digest), digest, size=size, image=str(image.ref))

    client.upload_blob(repo, digest, size, opener, image=str(image.ref), location=location)


# === Pulling: registry -> layout =================================================================
def _platform_matches(platform, wanted):
    if not platform:
        return False
    parts = wanted.split("/")
    if platform.get("os") != parts[0] or (len(parts) > 1 and platform.get("architecture") != parts[1]):
        return False
    return len(parts) < 3 or platform.get("variant") == parts[2]


def _narrow_index(doc, children, platforms, image):
    """(selected child descriptors, bytes of the narrowed index or None when all were selected)."""
    selected = [c for c in children if any(_platform_matches(c.get("platform"), p) for p in platforms)]
    if not selected:
        raise OCIError(f"the image index has no manifest for the platforms {platforms}", image=image)
    if len(selected) == len(children):
        return children, None
    narrowed = {k: v for k, v in doc.items() if k != "manifests"}
    narrowed["manifests"] = selected
    return selected, canonical_json(narrowed)


def pull(
    client, reference, layout, *, platforms=None, repository=None, workers=4, digest=None, annotations=None
):
    """Copy ``reference`` (tag or digest) from ``client``'s registry into ``layout``.

    ``digest`` fetches the manifest by that digest (one a tag was seen to have) and records it under
    ``reference``; ``annotations`` are added to its index.json entry.

    Manifests and blobs are stored as the exact bytes the registry serves, each verified against
    its digest while streamed to a temp file and then renamed; blobs already present and valid are
    skipped. The layout's index.json entry carries the full reference.

    ``platforms`` (e.g. ["linux/amd64", "linux/arm64"]) narrows an image index. The upstream index
    cannot be kept then: it would point at children the layout lacks, and distribution 2.8.2
    refuses to store an index whose children are missing (MANIFEST_BLOB_UNKNOWN). So a NEW index
    holding only the selected child descriptors (unchanged, so every platform manifest keeps its
    upstream digest) is written; the entry records the upstream index digest in the annotation
    `io.island.image.source-index.digest`, and the result carries a warning that the index digest
    changed. Without ``platforms`` the original index is kept with all children (as
    `skopeo copy --multi-arch=all` does).
    """
    ref = reference if isinstance(reference, ImageReference) else ImageReference.parse(reference)
    repo = repository or ref.path
    image = str(ref)
    layout.init()
    stats = {"downloaded": [], "present": 0, "bytes": 0}
    lock = threading.Lock()
    warnings = []

    data, media_type, digest = client.get_manifest(repo, digest or ref.digest or ref.tag, image=image)
    doc = parse_manifest(data, digest, image=image)
    media_type = manifest_media_type(doc, media_type)
    source_digest = digest
    manifests = []  # (digest, bytes, doc, media_type)
    extra = dict(annotations or {})
    if media_type in INDEX_TYPES:
        children = doc.get("manifests") or []
        if platforms:
            children, narrowed = _narrow_index(doc, children, platforms, image)
            if narrowed is not None:
                data, digest = narrowed, sha256_digest(narrowed)
                extra[SOURCE_INDEX_ANNOTATION] = source_digest
                warnings.append(
                    f"{image}: index narrowed to {', '.join(platforms)}; its digest changed from "
                    f"{source_digest} to {digest} (platform manifests keep their upstream digests)"
                )
        for child in children:
            cdata, ctype, cdigest = client.get_manifest(repo, child["digest"], image=image)
            cdoc = parse_manifest(cdata, cdigest, image=image)
            if manifest_media_type(cdoc, child.get("mediaType")) in INDEX_TYPES:
                raise OCIError(f"nested image index {cdigest} is not supported", image=image)
            manifests.append(
                (cdigest, cdata, cdoc, manifest_media_type(cdoc, child.get("mediaType") or ctype))
            )
    else:
        manifests.append((digest, data, doc, media_type))

    blobs = {}
    for _d, _data, mdoc, mtype in manifests:
        for desc in image_children(mdoc, mtype)[1]:
            if not desc.get("urls"):
                blobs.setdefault(desc["digest"], desc.get("size"))

    def fetch(item):
        bdigest, size = item
        if layout.has_valid_blob(bdigest, size):
            with lock:
                stats["present"] += 1
            return
        count = layout.write_blob_stream(
            bdigest, client.get_blob_chunks(repo, bdigest, image=image), size=size, image=image
        )
        with lock:
            stats["downloaded"].append(bdigest)
            stats["bytes"] += count

    _parallel(workers, fetch, sorted(blobs.items(), key=lambda kv: -(kv[1] or 0)))
    # Manifests after blobs, the top one last: an interrupted pull never leaves a manifest whose
    # content is missing, and a rerun resumes by skipping valid blobs.
    for mdigest, mdata, _doc, _type in manifests:
        if mdigest != digest:
            layout.write_blob(mdata, mdigest)
    layout.write_blob(data, digest)
    descriptor = {"mediaType": media_type, "digest": digest, "size": len(data)}
    previous = layout.set_image(ref, descriptor, extra)
    return {
        "image": image,
        "digest": digest,
        "source_digest": source_digest,
        "previous_digest": previous,
        "changed": previous != digest or bool(stats["downloaded"]),
        "media_type": media_type,
        "manifests": [m[0] for m in manifests],
        "blobs_downloaded": sorted(stats["downloaded"]),
        "blobs_present": stats["present"],
        "bytes_downloaded": stats["bytes"],
        "warnings": warnings,
    }
