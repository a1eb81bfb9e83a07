"""The one renewal decision (needs_reissue) and what a rerun does end to end."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_pki import (
    CaStateError,
    cert_not_after,
    cert_pem,
    load_certificates,
    parse_sans,
    utcnow,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki_sign import (
    IssueRequest,
    needs_reissue,
    sign_csr,
)

from tests.support.island_pki import Service, make_ca, openssl_verify, snapshot, write_bundle

SANS = ["DNS:registry.island.internal", "IP:127.0.0.1"]


def _issued(tmp_path, **ca_kwargs):
    ca = make_ca(tmp_path / "ca", **ca_kwargs)
    svc = Service(tmp_path / "host")
    svc.issue(ca, SANS)
    return ca, svc


def _leaf(svc):
    return load_certificates(svc.current(), "installed certificate")[0]


def _decide(ca, svc, *, sans=SANS, now=None, usage=("server_auth",), renew_before_days=30):
    csr = svc.csr(sans)
    return sign_csr(
        csr.csr_pem,
        ca.intermediate,
        current_pem=svc.current(),
        usage=usage,
        renew_before_days=renew_before_days,
        now=now,
    )


def test_a_rerun_signs_nothing_and_leaves_key_and_certificate_byte_identical(tmp_path):
    ca, svc = _issued(tmp_path)
    before = snapshot(tmp_path)
    result = svc.issue(ca, SANS)
    assert not result.changed
    assert result.reason is None
    assert snapshot(tmp_path) == before


def test_a_certificate_far_from_expiry_is_kept(tmp_path):
    ca, svc = _issued(tmp_path)
    later = utcnow() + datetime.timedelta(days=300)
    assert _decide(ca, svc, now=later).reason is None


def test_a_certificate_expiring_within_the_threshold_is_renewed_with_the_days_left_in_the_reason(tmp_path):
    ca, svc = _issued(tmp_path)
    cert = _leaf(svc)
    now = cert_not_after(cert) - datetime.timedelta(days=12, hours=1)
    result = _decide(ca, svc, now=now)
    assert result.changed
    assert result.reason == "certificate expires in 12 days (threshold 30)"
    assert result.cert.serial_number != cert.serial_number
    assert cert_not_after(result.cert) > cert_not_after(cert)


def test_the_renewal_threshold_is_a_parameter(tmp_path):
    ca, svc = _issued(tmp_path)
    now = cert_not_after(_leaf(svc)) - datetime.timedelta(days=45, hours=1)
    assert _decide(ca, svc, now=now).reason is None
    assert (
        _decide(ca, svc, now=now, renew_before_days=60).reason
        == "certificate expires in 45 days (threshold 60)"
    )


def test_an_expired_certificate_is_renewed(tmp_path):
    ca, svc = _issued(tmp_path)
    now = cert_not_after(_leaf(svc)) + datetime.timedelta(days=3, hours=1)
    assert _decide(ca, svc, now=now).reason == "certificate expired 3 days ago"


def test_a_san_change_renews_and_the_reason_lists_what_was_added_and_removed(tmp_path):
    ca, svc = _issued(tmp_path)
    result = _decide(ca, svc, sans=["DNS:registry.island.internal", "DNS:git.island.internal"])
    assert result.reason == "SAN set differs: +dns:git.island.internal, -ip:127.0.0.1"
    assert result.after["subject_alt_names"] == ["dns:registry.island.internal", "dns:git.island.internal"]


def test_san_order_and_case_do_not_count_as_a_change(tmp_path):
    ca, svc = _issued(tmp_path)
    assert _decide(ca, svc, sans=["IP:127.0.0.1", "DNS:Registry.Island.Internal."]).reason is None


def test_an_extended_key_usage_change_renews(tmp_path):
    ca, svc = _issued(tmp_path)
    result = _decide(ca, svc, usage=["server_auth", "client_auth"])
    assert result.reason == "extended key usage differs: have server_auth, want client_auth,server_auth"


def test_rotating_the_intermediate_renews_because_the_issuer_changed_and_the_new_chain_validates(tmp_path):
    _, svc = _issued(tmp_path)
    rotated = make_ca(tmp_path / "ca", intermediate_generation=2)
    result = svc.issue(rotated, SANS)
    assert result.changed
    assert result.reason.startswith(
        "issuing CA changed: certificate issued by CN=Island Intermediate CA R1-I1"
    )
    assert "current intermediate is CN=Island Intermediate CA R1-I2" in result.reason
    bundle = write_bundle(tmp_path / "trust.pem", rotated)
    ok, out = openssl_verify(bundle, svc.cert, untrusted_file=svc.cert)
    assert ok, out
    assert svc.cert.read_text().endswith(cert_pem(rotated.intermediate.cert))
    assert not svc.issue(rotated, SANS).changed


def test_a_new_host_key_renews_because_the_certificate_no_longer_matches(tmp_path):
    ca, svc = _issued(tmp_path)
    svc.key.unlink()
    result = _decide(ca, svc)
    assert result.reason == "certificate does not match the host's private key"


def test_several_reasons_are_all_reported(tmp_path):
    _, svc = _issued(tmp_path)
    rotated = make_ca(tmp_path / "ca", intermediate_generation=2)
    result = _decide(rotated, svc, sans=["DNS:registry.island.internal"])
    assert "issuing CA changed" in result.reason
    assert "SAN set differs: -ip:127.0.0.1" in result.reason


def test_an_unreadable_current_certificate_is_replaced(tmp_path):
    ca, svc = _issued(tmp_path)
    svc.cert.write_text("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
    assert _decide(ca, svc).reason == "current certificate is not readable PEM"


def test_check_mode_runs_the_same_decision_signs_nothing_and_predicts_the_new_certificate(tmp_path):
    ca, svc = _issued(tmp_path)
    current = svc.current()
    csr = svc.csr(["DNS:registry.island.internal", "DNS:git.island.internal"])
    result = sign_csr(csr.csr_pem, ca.intermediate, current_pem=current, check_mode=True)
    assert result.changed
    assert result.reason.startswith("SAN set differs: +dns:git.island.internal")
    assert result.cert == _leaf(svc)
    assert svc.current() == current
    assert result.before["subject_alt_names"] == ["dns:registry.island.internal", "ip:127.0.0.1"]
    assert result.after["subject_alt_names"] == ["dns:registry.island.internal", "dns:git.island.internal"]
    assert result.after["subject"] == "CN=registry.island.internal"
    assert result.after["issuer"] == ca.intermediate.cert.subject.rfc4514_string()
    assert result.after["not_after"] >= result.before["not_after"]


def test_needs_reissue_is_none_for_a_matching_fresh_certificate(tmp_path):
    ca, svc = _issued(tmp_path)
    cert = _leaf(svc)
    request = IssueRequest(parse_sans(SANS))
    assert needs_reissue(cert, cert.public_key(), request, ca.intermediate.cert) is None
    assert needs_reissue(None, cert.public_key(), request, ca.intermediate.cert) == "no certificate yet"


def test_a_certificate_that_already_ends_with_the_intermediate_is_not_reissued_on_every_run(tmp_path):
    # The intermediate ends in 20 days, so no certificate it signs can last longer than that.
    ca, svc = _issued(tmp_path, intermediate_days=20)
    assert cert_not_after(_leaf(svc)) == cert_not_after(ca.intermediate.cert)
    before = snapshot(tmp_path)
    result = svc.issue(ca, SANS)
    assert not result.changed and result.reason is None
    assert snapshot(tmp_path) == before
    assert len(result.warnings) == 1
    assert "expires in 19 days" in result.warnings[0]
    assert "raise intermediate_generation" in result.warnings[0]

    rotated = make_ca(tmp_path / "ca", intermediate_generation=2)
    renewed = svc.issue(rotated, SANS)
    assert renewed.reason.startswith("issuing CA changed")
    assert renewed.warnings == []
    assert (cert_not_after(_leaf(svc)) - utcnow()).days >= 364


def test_signing_under_an_expired_intermediate_is_refused_with_rotation_advice(tmp_path):
    ca, svc = _issued(tmp_path)
    after_expiry = cert_not_after(ca.intermediate.cert) + datetime.timedelta(days=1)
    with pytest.raises(
        CaStateError, match=r"Intermediate CA R1-I1,O=Island has expired; raise intermediate_generation"
    ):
        _decide(ca, svc, now=after_expiry)
