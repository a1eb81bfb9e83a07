"""Renewal rotates host keys when asked (issue 15, item 16; pki_rotate_host_keys, island_csr's
rotate_with_renewal): the new key waits beside the current one until its certificate is installed
with it, so a service never has a key without its certificate; false keeps today's behaviour."""

from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

from ansible_collections.island.installer.plugins.module_utils.island_pki import (
    cert_not_after,
    cert_pem,
    load_certificates,
    public_key_der,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki_host import (
    ensure_certificate_file,
    ensure_key_and_csr,
    load_host_key,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki_sign import sign_csr

from tests.support.island_pki import Service, make_ca

SANS = ["DNS:minio.island.internal", "IP:127.0.0.1"]


def _issued(tmp_path):
    ca = make_ca(tmp_path / "ca")
    svc = Service(tmp_path / "host")
    svc.issue(ca, SANS)
    return ca, svc


def _round(ca, svc, now, *, rotate=True, install=True):
    """One run of the issue task file: island_csr, island_cert_sign, island_cert."""
    csr = ensure_key_and_csr(
        str(svc.key), SANS, rotate_certificate_path=str(svc.cert) if rotate else None, now=now
    )
    signed = sign_csr(csr.csr_pem, ca.intermediate, current_pem=svc.current(), now=now)
    installed = None
    if signed.changed and install:
        installed = ensure_certificate_file(
            str(svc.cert),
            cert_pem(signed.cert),
            chain=[cert_pem(ca.intermediate.cert)],
            key_path=str(svc.key),
        )
    return csr, signed, installed


def _near_expiry(svc, days=10):
    cert = load_certificates(svc.cert.read_bytes(), "cert")[0]
    return cert_not_after(cert) - datetime.timedelta(days=days, hours=1)


def _cert_key(svc):
    return public_key_der(load_certificates(svc.cert.read_bytes(), "cert")[0].public_key())


def test_renewal_with_rotation_replaces_the_key_together_with_the_certificate(tmp_path):
    ca, svc = _issued(tmp_path)
    old_key = public_key_der(load_host_key(str(svc.key)))
    now = _near_expiry(svc)
    csr, signed, installed = _round(ca, svc, now)
    assert csr.changed and csr.pending == "created"
    assert csr.reason == "key rotated with the renewal: certificate expires in 10 days (threshold 30)"
    assert signed.changed
    assert "the rotated key" in installed.reason
    new_key = public_key_der(load_host_key(str(svc.key)))
    assert new_key != old_key
    assert _cert_key(svc) == new_key
    assert not os.path.exists(f"{svc.key}.next")
    assert stat.S_IMODE(os.stat(svc.key).st_mode) == 0o600
    # The next run finds a fresh certificate for the new key: nothing changes.
    csr, signed, _ = _round(ca, svc, now)
    assert not csr.changed and not signed.changed


def test_without_rotation_renewal_keeps_the_key(tmp_path):
    ca, svc = _issued(tmp_path)
    old_key = public_key_der(load_host_key(str(svc.key)))
    csr, signed, _ = _round(ca, svc, _near_expiry(svc), rotate=False)
    assert signed.changed and not csr.changed
    assert public_key_der(load_host_key(str(svc.key))) == old_key == _cert_key(svc)


def test_a_certificate_far_from_expiry_keeps_its_key_even_with_rotation_on(tmp_path):
    ca, svc = _issued(tmp_path)
    now = _near_expiry(svc, days=200)
    csr, signed, _ = _round(ca, svc, now)
    assert not csr.changed and csr.pending is None and not signed.changed
    assert not os.path.exists(f"{svc.key}.next")


def test_until_its_certificate_is_installed_the_service_keeps_its_key_and_a_rerun_keeps_the_next_one(
    tmp_path,
):
    ca, svc = _issued(tmp_path)
    before_key, before_cert = svc.key.read_bytes(), svc.cert.read_bytes()
    now = _near_expiry(svc)
    _round(ca, svc, now, install=False)  # the signing failed, say
    assert svc.key.read_bytes() == before_key and svc.cert.read_bytes() == before_cert
    pending = Path(f"{svc.key}.next").read_bytes()
    assert stat.S_IMODE(os.stat(f"{svc.key}.next").st_mode) == 0o600
    again, _, installed = _round(ca, svc, now)
    assert again.pending == "kept" and not again.changed
    assert svc.key.read_bytes() == pending
    assert installed is not None


def test_check_mode_predicts_the_rotation_and_writes_nothing(tmp_path):
    ca, svc = _issued(tmp_path)
    before = {p.name: p.read_bytes() for p in svc.dir.iterdir()}
    now = _near_expiry(svc)
    csr = ensure_key_and_csr(
        str(svc.key), SANS, rotate_certificate_path=str(svc.cert), now=now, check_mode=True
    )
    assert csr.changed and csr.pending == "created"
    signed = sign_csr(csr.csr_pem, ca.intermediate, current_pem=svc.current(), now=now, check_mode=True)
    assert signed.changed
    assert {p.name: p.read_bytes() for p in svc.dir.iterdir()} == before


def test_a_leftover_next_key_is_removed_when_no_rotation_is_due(tmp_path):
    ca, svc = _issued(tmp_path)
    _round(ca, svc, _near_expiry(svc), install=False)
    assert os.path.exists(f"{svc.key}.next")
    csr, _, _ = _round(ca, svc, _near_expiry(svc), rotate=False, install=False)
    assert csr.changed and csr.pending == "removed"
    assert not os.path.exists(f"{svc.key}.next")
