"""island_oci_backup's reading of the applied bundle's lock (the registry side is in
tests/integration/test_oci_backup.py, against the real registry)."""

from __future__ import annotations

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_oci_backup import (
    ImagesRefusedError,
    lock_targets,
)

DIGEST = "sha256:" + "a" * 64


def test_lock_images_map_to_the_repository_and_tag_seeding_gave_them():
    images = [
        {"reference": "docker.io/library/alpine:3.20", "digest": DIGEST},
        {"reference": "quay.io/org/tool:1", "digest": DIGEST},
        {"reference": "quay.io/org/pinned@" + DIGEST, "digest": DIGEST},  # no tag: nothing to leave out
    ]
    assert lock_targets(images) == {("library/alpine", "3.20"): DIGEST, ("org/tool", "1"): DIGEST}
    assert lock_targets(images, "keep_host", "mirror") == {
        ("mirror/docker.io/library/alpine", "3.20"): DIGEST,
        ("mirror/quay.io/org/tool", "1"): DIGEST,
    }


def test_a_lock_image_without_reference_or_digest_is_refused_naming_it():
    with pytest.raises(ImagesRefusedError) as caught:
        lock_targets([{"reference": "docker.io/library/alpine:3.20", "digest": DIGEST}, {"reference": "x"}])
    assert "lock image #1" in str(caught.value)
