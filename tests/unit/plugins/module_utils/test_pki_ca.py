"""The island CA on the controller: hierarchy, constraints, idempotence, failures, rotation."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_pki import (
    CaStateError,
    NameConstraintError,
    ParameterError,
    PassphraseError,
    cert_not_after,
    utcnow,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki_ca import ensure_ca
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.island_pki import (
    PASSPHRASE,
    Service,
    ca_spec,
    make_ca,
    openssl_verify,
    snapshot,
    write_bundle,
)


def _ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


def test_new_ca_is_a_root_and_an_intermediate_with_path_lengths_key_usage_and_key_ids(tmp_path):
    ca = make_ca(tmp_path / "ca")
    root, inter = ca.root.cert, ca.intermediate.cert

    assert root.issuer == root.subject
    assert inter.issuer == root.subject
    assert _ext(root, x509.BasicConstraints).critical
    assert _ext(root, x509.BasicConstraints).value.ca is True
    assert _ext(root, x509.BasicConstraints).value.path_length == 1
    assert _ext(inter, x509.BasicConstraints).value.path_length == 0
    for cert in (root, inter):
        usage = _ext(cert, x509.KeyUsage)
        assert usage.critical
        assert usage.value.key_cert_sign and usage.value.crl_sign
        assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
        assert cert.public_key().curve.name == "secp256r1"
    ski_root = _ext(root, x509.SubjectKeyIdentifier).value.digest
    assert _ext(root, x509.AuthorityKeyIdentifier).value.key_identifier == ski_root
    assert _ext(inter, x509.AuthorityKeyIdentifier).value.key_identifier == ski_root
    root_years = (cert_not_after(root) - utcnow()).days / 365
    inter_years = (cert_not_after(inter) - utcnow()).days / 365
    assert 9.9 < root_years <= 10.1
    assert 2.9 < inter_years <= 3.1


def test_both_ca_certificates_carry_critical_name_constraints_for_the_island_only(tmp_path):
    ca = make_ca(tmp_path / "ca", ip_ranges=["10.20.0.0/16", "fd00:1::/64"])
    for cert in (ca.root.cert, ca.intermediate.cert):
        nc = _ext(cert, x509.NameConstraints)
        assert nc.critical
        permitted = {str(n.value) for n in nc.value.permitted_subtrees}
        assert permitted == {"island.internal", "10.20.0.0/16", "fd00:1::/64"}
        assert nc.value.excluded_subtrees is None


def test_without_ip_ranges_the_ca_excludes_every_ip_address(tmp_path):
    ca = make_ca(tmp_path / "ca", ip_ranges=[])
    nc = _ext(ca.intermediate.cert, x509.NameConstraints).value
    assert {str(n.value) for n in nc.excluded_subtrees} == {"0.0.0.0/0", "::/0"}
    svc = Service(tmp_path / "host")
    with pytest.raises(NameConstraintError, match=r"ip:127\.0\.0\.1"):
        svc.issue(ca, ["DNS:git.island.internal", "IP:127.0.0.1"])
    assert not svc.cert.exists()


def test_ca_keys_are_encrypted_at_rest_and_0600_in_a_0700_directory(tmp_path):
    ca = make_ca(tmp_path / "ca")
    assert stat.S_IMODE(os.stat(tmp_path / "ca").st_mode) == 0o700
    for pair in (ca.root, ca.intermediate):
        data = Path(pair.key_path).read_bytes()
        assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        assert stat.S_IMODE(os.stat(pair.key_path).st_mode) == 0o600
        with pytest.raises(TypeError):
            serialization.load_pem_private_key(data, password=None)
        key = serialization.load_pem_private_key(data, password=PASSPHRASE.encode())
        assert key.public_key().public_numbers() == pair.cert.public_key().public_numbers()
        assert PASSPHRASE.encode() not in data


def test_rerunning_the_ca_changes_nothing_files_byte_identical_and_mtime_unchanged(tmp_path):
    first = make_ca(tmp_path / "ca")
    assert first.changed
    before = snapshot(tmp_path / "ca")
    again = make_ca(tmp_path / "ca")
    assert not again.changed, again.changes
    assert again.changes == []
    assert snapshot(tmp_path / "ca") == before
    assert again.trust_bundle == first.trust_bundle


def test_ca_check_mode_reports_what_it_would_create_and_writes_nothing(tmp_path):
    result = ensure_ca(ca_spec(tmp_path / "ca"), check_mode=True)
    assert result.changed
    assert "created root CA R1" in result.changes
    assert "created intermediate CA R1-I1" in result.changes
    assert not (tmp_path / "ca").exists()


def test_wrong_passphrase_is_a_clear_error_and_the_ca_is_untouched(tmp_path):
    make_ca(tmp_path / "ca")
    before = snapshot(tmp_path / "ca")
    with pytest.raises(PassphraseError) as err:
        make_ca(tmp_path / "ca", passphrase="not the passphrase")
    assert "root-r1.key" in str(err.value)
    assert "wrong passphrase" in str(err.value)
    assert "not the passphrase" not in str(err.value)
    assert snapshot(tmp_path / "ca") == before


def test_wrong_passphrase_with_a_new_intermediate_generation_creates_nothing(tmp_path):
    make_ca(tmp_path / "ca")
    before = snapshot(tmp_path / "ca")
    with pytest.raises(PassphraseError):
        make_ca(tmp_path / "ca", passphrase="wrong", intermediate_generation=2)
    assert snapshot(tmp_path / "ca") == before


def test_a_file_where_the_ca_directory_should_be_is_a_clear_error_and_is_left_alone(tmp_path):
    path = tmp_path / "ca"
    path.write_bytes(b"not a directory\n")
    with pytest.raises(CaStateError, match=r"CA directory .*/ca is not a directory"):
        make_ca(path)
    assert path.read_bytes() == b"not a directory\n"


def test_a_corrupt_root_certificate_is_a_clear_error_and_never_replaced(tmp_path):
    make_ca(tmp_path / "ca")
    root_crt = tmp_path / "ca" / "root-r1.crt"
    root_crt.write_bytes(b"-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    before = snapshot(tmp_path / "ca")
    with pytest.raises(CaStateError) as err:
        make_ca(tmp_path / "ca")
    assert "root-r1.crt" in str(err.value)
    assert "not a valid PEM certificate" in str(err.value)
    assert snapshot(tmp_path / "ca") == before


def _corrupt_intermediate_key(ca_dir):
    (ca_dir / "intermediate-r1-i1.key").write_bytes(b"junk")


def _drop_root_certificate(ca_dir):
    (ca_dir / "root-r1.crt").unlink()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_corrupt_intermediate_key, r"intermediate-r1-i1\.key is not a valid PEM private key"),
        (_drop_root_certificate, r"root-r1\.key exists but .*root-r1\.crt is missing"),
    ],
    ids=["corrupt_intermediate_key", "root_key_without_its_certificate"],
)
def test_a_damaged_ca_is_a_clear_error_and_never_regenerated(tmp_path, damage, message):
    make_ca(tmp_path / "ca")
    damage(tmp_path / "ca")
    before = snapshot(tmp_path / "ca")
    with pytest.raises(CaStateError, match=message):
        make_ca(tmp_path / "ca")
    assert snapshot(tmp_path / "ca") == before


def test_changing_the_domains_of_an_existing_root_is_refused_with_roll_advice(tmp_path):
    make_ca(tmp_path / "ca")
    before = snapshot(tmp_path / "ca")
    with pytest.raises(CaStateError, match=r"roll to a new root generation"):
        make_ca(tmp_path / "ca", domains=["island.internal", "lab.internal"])
    assert snapshot(tmp_path / "ca") == before


def test_invalid_parameters_are_refused_before_touching_anything(tmp_path):
    with pytest.raises(ParameterError, match="cannot be retired"):
        ca_spec(tmp_path / "ca", retired_root_generations=[1])
    with pytest.raises(ParameterError, match="not a valid DNS name"):
        ca_spec(tmp_path / "ca", domains=["island internal"])
    with pytest.raises(ParameterError, match="CIDR"):
        ca_spec(tmp_path / "ca", ip_ranges=["10.0.0.1/8"])
    with pytest.raises(ParameterError, match="passphrase"):
        ca_spec(tmp_path / "ca", passphrase="")
    assert not (tmp_path / "ca").exists()


def test_a_loosened_key_mode_is_fixed_and_reported(tmp_path):
    ca = make_ca(tmp_path / "ca")
    os.chmod(ca.root.key_path, 0o644)
    again = make_ca(tmp_path / "ca")
    assert again.changed
    assert any("0644 -> 0600" in c for c in again.changes)
    assert stat.S_IMODE(os.stat(ca.root.key_path).st_mode) == 0o600


def test_rotating_the_intermediate_keeps_the_root_and_the_old_intermediate(tmp_path):
    first = make_ca(tmp_path / "ca")
    rotated = make_ca(tmp_path / "ca", intermediate_generation=2)
    assert rotated.changes == ["created intermediate CA R1-I2"]
    assert rotated.root.cert == first.root.cert
    assert rotated.intermediate.cert.issuer == first.root.cert.subject
    assert rotated.intermediate.cert.subject != first.intermediate.cert.subject
    assert (tmp_path / "ca" / "intermediate-r1-i1.crt").exists()
    assert rotated.trust_bundle == first.trust_bundle
    assert not make_ca(tmp_path / "ca", intermediate_generation=2).changed


def test_rolling_the_root_trusts_both_roots_during_the_overlap_until_the_old_one_is_retired(tmp_path):
    ca_dir = tmp_path / "ca"
    r1 = make_ca(ca_dir)
    old = Service(tmp_path / "host", "old")
    old.issue(r1, ["DNS:old.island.internal"])

    # Step 1: R2 exists and is trusted, R1's intermediate still signs.
    step1 = make_ca(ca_dir, next_root_generation=2)
    assert step1.trusted_generations == [1, 2]
    assert step1.intermediate.cert == r1.intermediate.cert
    assert step1.trust_bundle.count("BEGIN CERTIFICATE") == 2
    assert not make_ca(ca_dir, next_root_generation=2).changed

    # Step 2: R2 signs (through a new intermediate R2-I1); both roots stay trusted.
    step2 = make_ca(ca_dir, root_generation=2)
    assert step2.intermediate.cert.issuer == step1.next_root.cert.subject
    assert step2.trusted_generations == [1, 2]
    new = Service(tmp_path / "host", "new")
    new.issue(step2, ["DNS:new.island.internal"])
    bundle = write_bundle(tmp_path / "bundle-overlap.pem", step2)
    for svc in (old, new):
        ok, out = openssl_verify(bundle, svc.cert, untrusted_file=svc.cert)
        assert ok, out

    # Step 3: R1 retired; certificates still chaining to R1 no longer verify.
    step3 = make_ca(ca_dir, root_generation=2, retired_root_generations=[1])
    assert step3.trusted_generations == [2]
    assert (ca_dir / "trust-bundle.pem").read_text() == step3.trust_bundle
    bundle = write_bundle(tmp_path / "bundle-after.pem", step3)
    ok, out = openssl_verify(bundle, new.cert, untrusted_file=new.cert)
    assert ok, out
    ok, out = openssl_verify(bundle, old.cert, untrusted_file=old.cert)
    assert not ok
    assert "unable to get" in out


def test_a_loosened_ca_directory_mode_is_fixed_and_reported(tmp_path):
    make_ca(tmp_path / "ca")
    os.chmod(tmp_path / "ca", 0o755)  # noqa: S103 - loosening the mode is what this test is about
    again = make_ca(tmp_path / "ca")
    assert again.changes == [f"mode of {tmp_path / 'ca'} 0755 -> 0700"]
    assert stat.S_IMODE(os.stat(tmp_path / "ca").st_mode) == 0o700


def test_the_ca_warns_ahead_of_the_intermediate_and_root_expiry(tmp_path):
    quiet = make_ca(tmp_path / "quiet")
    assert quiet.warnings == []
    short = make_ca(tmp_path / "short", root_days=200, intermediate_days=30)
    assert len(short.warnings) == 2
    assert short.warnings[0].startswith("root CA R1 expires in 199 days (warning threshold 365)")
    assert short.warnings[1].startswith("intermediate CA R1-I1 expires in 29 days (warning threshold 90)")
