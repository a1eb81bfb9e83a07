"""Image references and where they land in the island registry."""

from __future__ import annotations

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_oci import (
    ImageReference,
    LayoutError,
    OCILayout,
    seed,
    target_repository,
)
from ansible_collections.island.installer.plugins.module_utils.island_oci_common import ReferenceError_


@pytest.mark.parametrize(
    ("text", "full", "host", "path", "tag"),
    [
        ("alpine", "docker.io/library/alpine:latest", "docker.io", "library/alpine", "latest"),
        ("alpine:3.20", "docker.io/library/alpine:3.20", "docker.io", "library/alpine", "3.20"),
        ("rancher/pause:3.6", "docker.io/rancher/pause:3.6", "docker.io", "rancher/pause", "3.6"),
        ("index.docker.io/library/x:1", "docker.io/library/x:1", "docker.io", "library/x", "1"),
        ("quay.io/org/tool:1", "quay.io/org/tool:1", "quay.io", "org/tool", "1"),
        ("localhost:5000/a/b:c", "localhost:5000/a/b:c", "localhost:5000", "a/b", "c"),
        ("reg.example:8443/deep/er/path:v1.2_3", "reg.example:8443/deep/er/path:v1.2_3", "reg.example:8443",
         "deep/er/path", "v1.2_3"),
    ],
)  # fmt: skip
def test_references_are_normalised_as_docker_and_containerd_do(text, full, host, path, tag):
    ref = ImageReference.parse(text)
    assert (str(ref), ref.host, ref.path, ref.tag) == (full, host, path, tag)


def test_a_digest_reference_keeps_the_digest_and_has_no_implicit_tag():
    digest = "sha256:" + "a" * 64
    ref = ImageReference.parse(f"ghcr.io/o/r@{digest}")
    assert (ref.tag, ref.digest, str(ref)) == (None, digest, f"ghcr.io/o/r@{digest}")
    both = ImageReference.parse(f"ghcr.io/o/r:1@{digest}")
    assert (both.tag, both.digest) == ("1", digest)


@pytest.mark.parametrize(
    "text",
    ["", " alpine", "Alpine:1", "a//b", "a:b:c", "quay.io/x@sha256:123", "x:-bad", "x@md5:" + "a" * 32],
)
def test_malformed_references_are_refused(text):
    with pytest.raises(ReferenceError_):
        ImageReference.parse(text)


@pytest.mark.parametrize(
    ("text", "rule", "prefix", "repo"),
    [
        ("docker.io/library/alpine:3.20", "strip_host", "", "library/alpine"),
        ("quay.io/org/tool:1", "strip_host", "", "org/tool"),
        ("docker.io/library/alpine:3.20", "keep_host", "", "docker.io/library/alpine"),
        ("localhost:5000/a/b:1", "keep_host", "", "localhost/a/b"),
        ("quay.io/org/tool:1", "strip_host", "mirror/", "mirror/org/tool"),
    ],
)
def test_repository_rule_maps_upstream_references_into_the_island_registry(text, rule, prefix, repo):
    assert target_repository(ImageReference.parse(text), rule, prefix) == repo


def test_an_unknown_repository_rule_is_refused():
    with pytest.raises(ReferenceError_, match="unknown repository rule"):
        target_repository(ImageReference.parse("alpine"), "flatten")


class _NoNetwork:
    registry = "unused:1"

    def __getattr__(self, name):
        raise AssertionError(f"the registry must not be contacted ({name})")


def _layout_with(tmp_path, refs):
    layout = OCILayout(str(tmp_path / "layout")).init()
    for i, ref in enumerate(refs):
        config = layout.write_blob(b'{"n": %d}' % i)
        manifest = (
            b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":'
            b'{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":8},"layers":[]}'
            % config.encode()
        )
        digest = layout.write_blob(manifest)
        layout.set_image(
            ImageReference.parse(ref),
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": len(manifest),
            },
        )
    return layout


def test_two_upstream_hosts_colliding_under_strip_host_are_refused_before_any_request(tmp_path):
    layout = _layout_with(tmp_path, ["docker.io/org/tool:1", "quay.io/org/tool:1"])
    with pytest.raises(LayoutError, match="both map to org/tool:1"):
        seed(_NoNetwork(), layout)


def test_an_image_not_in_the_layout_is_named(tmp_path):
    layout = _layout_with(tmp_path, ["docker.io/library/alpine:3.20"])
    with pytest.raises(LayoutError, match=r"docker.io/library/alpine:3.19 is not in OCI layout"):
        seed(_NoNetwork(), layout, images=["alpine:3.19"])


def test_parallel_work_is_bounded_by_workers_and_waits_for_all_before_raising():
    import threading
    import time

    from ansible_collections.island.installer.plugins.module_utils.island_oci import _parallel

    lock = threading.Lock()
    state = {"now": 0, "max": 0, "done": 0}

    def work(i):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
            state["done"] += 1
        if i == 0:
            raise ValueError("first item fails")
        return i

    with pytest.raises(ValueError, match="first item fails"):
        _parallel(3, work, range(12))
    assert state["max"] == 3 and state["done"] == 12
    assert _parallel(3, lambda i: i * 2, range(5)) == [0, 2, 4, 6, 8]
