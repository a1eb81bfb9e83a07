"""Fixtures for the OCI client's integration tests: a real registry and real images."""

from __future__ import annotations

import pytest

from tests.support.oci import ImageFactory, Registry, make_layer, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def registry(tmp_path, pki):
    reg = Registry(tmp_path / "registry", pki).start()
    yield reg
    reg.stop()


@pytest.fixture
def layout(tmp_path):
    """An OCI layout with three single-platform images sharing a base layer in three repositories
    (two upstream hosts), and one two-platform image index."""
    from ansible_collections.island.installer.plugins.module_utils.island_oci import OCILayout

    lay = OCILayout(str(tmp_path / "layout"))
    factory = ImageFactory(lay)
    base = make_layer({"etc/os-release": b"ID=island-test\n" * 200})
    factory.image("docker.io/library/alpine:3.20", [base, make_layer({"bin/a": b"alpine"})], label="alpine")
    factory.image(
        "docker.io/library/busybox:1.36", [base, make_layer({"bin/b": b"busybox"})], label="busybox"
    )
    factory.image("quay.io/org/tool:1", [base, make_layer({"bin/t": b"tool"})], label="tool")
    factory.index(
        "docker.io/library/multi:1",
        ["linux/amd64", "linux/arm64"],
        {
            "linux/amd64": [base, make_layer({"bin/m": b"amd64"})],
            "linux/arm64": [make_layer({"etc/os-release": b"arm64"}), make_layer({"bin/m": b"arm64"})],
        },
    )
    lay.factory = factory
    return lay
