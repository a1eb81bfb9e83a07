"""Failures name the image and the cause, and leave the registry untouched."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_oci import (
    AuthenticationError,
    BlobCorruptError,
    BlobMissingError,
    RegistryClient,
    RegistryUnreachableError,
    TLSError,
    seed,
)

from tests.support.net import free_port
from tests.support.oci import Registry, make_pki, needs_registry

pytestmark = [needs_registry, pytest.mark.slow]


def _blob_of(layout, ref, index):
    desc = dict((str(r), d) for r, d in layout.images())[ref]
    manifest = json.loads(Path(layout.blob_path(desc["digest"])).read_bytes())
    return manifest["layers"][index]["digest"]


def test_a_wrong_password_is_reported_as_authentication_refused(registry, layout):
    client = registry.client(password="wrong")
    with pytest.raises(AuthenticationError) as caught:
        seed(client, layout)
    assert caught.value.status == 401
    assert registry.address in str(caught.value) and "'seeder'" in str(caught.value)
    assert registry.writes() == []


def test_missing_credentials_are_reported_as_authentication_refused(registry, layout):
    client = RegistryClient(registry.address, ca_file=str(registry.pki["ca"]))
    with pytest.raises(AuthenticationError, match="authentication refused"):
        seed(client, layout)


def test_a_ca_that_did_not_sign_the_registry_certificate_fails_tls(registry, layout, tmp_path):
    other = make_pki(tmp_path / "other-ca", common_name="some other CA")
    client = registry.client(ca_file=str(other["ca"]))
    with pytest.raises(TLSError) as caught:
        seed(client, layout)
    message = str(caught.value)
    assert registry.address in message and "not trusted by" in message and str(other["ca"]) in message
    assert registry.requests() == []


def test_a_certificate_for_another_name_fails_tls(tmp_path, layout):
    pki = make_pki(tmp_path / "pki", sans=("registry.elsewhere.test",))
    reg = Registry(tmp_path / "reg", pki).start()
    try:
        with pytest.raises(TLSError, match="name mismatch"):
            seed(reg.client(), layout)
    finally:
        reg.stop()


def test_an_unreachable_registry_names_host_and_port(layout, pki):
    address = f"127.0.0.1:{free_port()}"
    client = RegistryClient(address, ca_file=str(pki["ca"]), retries=2, backoff=0.01)
    with pytest.raises(RegistryUnreachableError, match=address.replace(".", r"\.")):
        seed(client, layout)


def test_a_blob_missing_from_the_layout_fails_before_anything_is_written(registry, layout):
    victim = _blob_of(layout, "quay.io/org/tool:1", 1)
    os.unlink(layout.blob_path(victim))
    with pytest.raises(BlobMissingError) as caught:
        seed(registry.client(), layout)
    assert "quay.io/org/tool:1" in str(caught.value) and victim in str(caught.value)
    assert registry.writes() == []


def test_a_corrupt_blob_in_the_layout_is_refused_and_its_image_not_tagged(registry, layout):
    victim = _blob_of(layout, "quay.io/org/tool:1", 1)
    path = Path(layout.blob_path(victim))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, other content
    path.write_bytes(bytes(data))
    with pytest.raises(BlobCorruptError) as caught:
        seed(registry.client(), layout, images=["quay.io/org/tool:1"])
    assert "quay.io/org/tool:1" in str(caught.value) and victim in str(caught.value)
    assert not [w for w in registry.writes() if "/manifests/" in w[1]]
