"""island_k3s_client_cert: a client certificate of k3s's client CA for a CSR made elsewhere, with the
caller's subject (never the CSR's), kept while it serves and signed again when it does not."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_k3s_client_cert import (
    ClientCertError,
    converge,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.timezone.utc)  # noqa: UP017 - as the module


def _ca(name="k3s-client-ca"):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(1).not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def _csr(organization="system:masters"):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, "x"),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_the_subject_is_the_callers_and_the_certificate_is_for_client_auth_only():
    ca_cert, ca_key = _ca()
    result = converge(
        _csr("system:masters"), ca_cert, ca_key, "island-prometheus", "system:monitoring", now=NOW
    )
    assert result["changed"] and result["reason"] == "there is no certificate yet"
    cert = x509.load_pem_x509_certificate(result["certificate"].encode())
    assert cert.subject.rfc4514_string() == "CN=island-prometheus,O=system:monitoring"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ca = x509.load_pem_x509_certificate(ca_cert)
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    assert result["not_after"].startswith("2027-12-04")


def test_a_current_certificate_is_kept_while_it_serves_and_replaced_when_it_does_not():
    ca_cert, ca_key = _ca()
    csr = _csr()
    first = converge(csr, ca_cert, ca_key, "island-prometheus", "system:monitoring", now=NOW)
    again = converge(csr, ca_cert, ca_key, "island-prometheus", "system:monitoring",
                     current_pem=first["certificate"], now=NOW + datetime.timedelta(days=100))  # fmt: skip
    assert again == {**first, "changed": False, "reason": ""}
    cases = [
        (_csr(), ca_cert, ca_key, "island-prometheus", 0, "another key"),
        (csr, ca_cert, ca_key, "someone-else", 0, "the subject differs"),
        (csr, ca_cert, ca_key, "island-prometheus", 340, "expires in 25 days (threshold 30)"),
        (csr, *_ca(), "island-prometheus", 0, "not signed by this client CA"),
    ]
    for csr_pem, cert_pem, key_pem, name, later, reason in cases:
        later_now = NOW + datetime.timedelta(days=later)
        current = first["certificate"]
        result = converge(
            csr_pem, cert_pem, key_pem, name, "system:monitoring", current_pem=current, now=later_now
        )
        assert result["changed"] and reason in result["reason"]


def test_bad_inputs_are_refused_naming_the_fault():
    ca_cert, ca_key = _ca()
    with pytest.raises(ClientCertError, match="not a PEM certificate request"):
        converge("nonsense", ca_cert, ca_key, "p", "system:monitoring")
    other_cert, _ = _ca()
    with pytest.raises(ClientCertError, match="does not belong to its certificate"):
        converge(_csr(), other_cert, ca_key, "p", "system:monitoring")
    with pytest.raises(ClientCertError, match="must be less than days"):
        converge(_csr(), ca_cert, ca_key, "p", "system:monitoring", days=30, renew_before_days=30)
