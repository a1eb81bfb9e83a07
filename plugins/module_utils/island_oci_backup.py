# Copyright: island installer contributors
# The images pushed inside the island, out of its registry into an OCI layout (a backup's part
# `oci-images`) and back (docs/backup.md), on the island OCI client (island_oci: pull and seed).
#
# Public API:
#   backup_images(registries, layout, lock_images, *, reference_host, rule, prefix, workers, page_size)
#       -> dict: every tag of every repository the registries serve, copied into ``layout`` (an
#          image index with all its children, every blob checked against its digest as written),
#          except the tags the applied bundle's lock put there with the lock's digest.
#   restore_images(client, layout, *, rule, prefix, check_mode, workers) -> dict
#   errors: ImagesRefusedError (an OCIError), plus those of the OCI client.
#
# Standard library only; Python 3.9+.
from __future__ import annotations

from ansible_collections.island.installer.plugins.module_utils.island_oci import (
    DigestMismatchError,
    ImageReference,
    OCIError,
    pull,
    seed,
    target_repository,
)
from ansible_collections.island.installer.plugins.module_utils.island_oci_common import (
    REF_NAME_ANNOTATION,
)

# On the index.json entry of an image whose tag the island moved away from the digest the applied
# bundle's lock gave it: that lock digest. After a registry is rebuilt, seeding puts the lock's
# digest back under the tag; restore may move the tag from exactly that digest, and from no other.
LOCK_DIGEST_ANNOTATION = "io.island.backup.lock-digest"


class ImagesRefusedError(OCIError):
    """A backup or restore refused before it wrote anything; ``problems`` lists every cause."""

    def __init__(self, message, problems=()):
        self.problems = list(problems)
        super().__init__(message + ("\n" + "\n".join(self.problems) if self.problems else ""))


def lock_targets(lock_images, rule="strip_host", prefix=""):
    """``{(repository, tag): digest}`` where seeding put the lock's tagged images."""
    targets = {}
    for index, image in enumerate(lock_images or []):
        if not isinstance(image, dict) or not image.get("reference") or not image.get("digest"):
            raise ImagesRefusedError(
                f"lock image #{index} has no reference and digest: pass the images of the applied "
                "bundle's lock (island-bundle.yml, images)"
            )
        ref = ImageReference.parse(image["reference"])
        if ref.tag:
            targets[(target_repository(ref, rule, prefix), ref.tag)] = image["digest"]
    return targets


def _reference(host, repository, tag):
    """The full reference an image gets in the layout: ``<registry name>/<repository>:<tag>``."""
    ref = ImageReference(host, repository, tag)
    parsed = ImageReference.parse(str(ref))
    if parsed.host != host or parsed.path != repository:
        raise ImagesRefusedError(
            f"reference_host {host!r} does not read back as a registry host in {ref} (it needs a dot, "
            "a port or to be localhost): give the registry's island name, e.g. registry.<island_domain>"
        )
    return parsed


def backup_images(
    registries, layout, lock_images, *, reference_host, rule="strip_host", prefix="", workers=4, page_size=100
):
    """Copy every image the registries serve, but the lock's, into ``layout``.

    ``registries``: ``[(name, RegistryClient)]``, several when each registry host keeps its own
    storage (their images land in the one layout; a tag with two digests is refused, naming both).
    A tag whose digest is the lock's for it is left out (the bundle brings it back); a tag the island
    moved to another digest is copied, its entry annotated with the lock digest. Returns what was
    copied and left out.
    """
    locked = lock_targets(lock_images, rule, prefix)
    # First every registry's tags and digests, so that a disagreement is refused before any copy.
    found = {}  # str(reference) -> (repository, tag, digest, registry name, client)
    left_out, problems = [], []
    for name, client in registries:
        try:
            client.ping()
        except OCIError as exc:
            raise type(exc)(
                f"registry {name} did not answer for the backup of its images: {exc}. The controller "
                "reaches it over TLS with the island CA and the read-only account: start it (systemctl "
                "status island-registry on its host), or leave its host out with --limit"
            ) from None
        for repository in sorted(client.list_repositories(page_size=page_size)):
            for tag in sorted(client.list_tags(repository)):
                head = client.head_manifest(repository, tag)
                if head is None:  # the tag went away between the listing and now
                    continue
                digest, ref = head[0], _reference(reference_host, repository, tag)
                if locked.get((repository, tag)) == digest:
                    left_out.append({"image": str(ref), "digest": digest, "registry": name})
                    continue
                seen = found.setdefault(str(ref), (repository, tag, digest, name, client))
                if seen[2] != digest:
                    problems.append(
                        f"{repository}:{tag} is {seen[2]} on {seen[3]} but {digest} on {name}: push the "
                        "image meant to stay to every registry host, then back up again"
                    )
    if problems:
        raise ImagesRefusedError("the registry hosts disagree on tags; nothing was backed up:", problems)
    layout.init()
    copied = []
    for text, (repository, tag, digest, name, client) in sorted(found.items()):
        lock_digest = locked.get((repository, tag))
        extra = {LOCK_DIGEST_ANNOTATION: lock_digest} if lock_digest else None
        result = pull(
            client,
            ImageReference.parse(text),
            layout,
            repository=repository,
            workers=workers,
            digest=digest,
            annotations=extra,
        )
        copied.append(
            {
                "image": text,
                "repository": repository,
                "tag": tag,
                "digest": result["digest"],
                "media_type": result["media_type"],
                "lock_digest": lock_digest,
                "registry": name,
                "manifests": result["manifests"],
                "blobs_downloaded": len(result["blobs_downloaded"]),
                "bytes_downloaded": result["bytes_downloaded"],
            }
        )
    return {"images": copied, "left_out": left_out}


def restore_images(client, layout, *, rule="strip_host", prefix="", check_mode=False, workers=4):
    """Push the layout's images back: blobs, then manifests by digest, then tags; then check each tag.

    Refused before anything is pushed: a tag the registry holds with another digest than the
    backup's, unless it is the lock digest the backup recorded for it (seeding put it back after the
    registry was rebuilt). An image already there with the backup's digest is left alone.
    """
    entries = {str(ref): entry for ref, entry in layout.images()}
    for text in entries:
        if ImageReference.parse(text).tag is None:
            raise ImagesRefusedError(
                f"{layout.name}: image {text} has no tag; this is not an oci-images part"
            )
    plan = seed(client, layout, rule=rule, prefix=prefix, check_mode=True, workers=workers)
    problems = []
    for row in plan.images:
        old, allowed = row["old_digest"], (entries[row["image"]].get("annotations") or {})
        if old and old != row["digest"] and old != allowed.get(LOCK_DIGEST_ANNOTATION):
            problems.append(
                f"{client.registry}/{row['repository']}:{row['tag']} is {old}, "
                f"the backup has {row['digest']}: "
                "the tag was pushed again after the backup. Keep the registry's image and leave oci-images "
                "out of restore_parts, or copy the backup's image under another tag by hand (skopeo copy "
                f"oci:<part>:{row['image']} ...)"
            )
    if problems:
        raise ImagesRefusedError(
            f"restore of images to {client.registry} refused; nothing was pushed:", problems
        )
    if check_mode:
        return {"changed": plan.changed, "images": plan.images, "diff": plan.diff()}
    result = seed(client, layout, rule=rule, prefix=prefix, workers=workers)
    for row in result.images:
        head = client.head_manifest(row["repository"], row["tag"], image=row["image"])
        if head is None or head[0] != row["digest"]:
            raise DigestMismatchError(
                f"after the restore {client.registry}/{row['repository']}:{row['tag']} resolves to "
                f"{head[0] if head else 'nothing'}, not the backup's {row['digest']}",
                image=row["image"],
            )
    return {"changed": result.changed, "images": result.images, "diff": result.diff()}


__all__ = [
    "LOCK_DIGEST_ANNOTATION",
    "REF_NAME_ANNOTATION",
    "ImagesRefusedError",
    "backup_images",
    "lock_targets",
    "restore_images",
]
