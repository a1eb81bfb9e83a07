"""Issuing certificates: the chain validates with openssl and Python's ssl, the constraints hold.

A certificate for a name outside the island is refused by our code before signing; when one is
forced (signed by calling the raw builder, bypassing that check) the independent verifiers
(``openssl verify`` and a real TLS handshake through Python's ``ssl``) reject it too. That second
half proves the name constraints in the CA certificates are real, not only our own check.
"""

from __future__ import annotations

import ssl

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_pki import (
    CsrError,
    NameConstraintError,
    cert_pem,
    load_certificates,
    load_csr,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki_sign import (
    IssueRequest,
    build_leaf,
    sign_csr,
)
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.support.island_pki import Service, make_ca, openssl_verify, tls_fetch, tls_server, write_bundle


@pytest.fixture
def ca(tmp_path):
    return make_ca(tmp_path / "ca")


@pytest.fixture
def trust(tmp_path, ca):
    return write_bundle(tmp_path / "trust.pem", ca)


def _forge(tmp_path, ca, sans, name="forged"):
    """A certificate for ``sans`` signed by the island intermediate WITHOUT the constraint check."""
    svc = Service(tmp_path / "host", name)
    csr = load_csr(svc.csr(["DNS:placeholder.island.internal"]).csr_pem, "test CSR")
    request = IssueRequest(sans)
    cert = build_leaf(csr.public_key(), request, ca.intermediate.cert, ca.intermediate.key)
    svc.cert.write_text(cert_pem(cert) + cert_pem(ca.intermediate.cert))
    return svc


def test_issued_chain_validates_with_openssl_verify(tmp_path, ca, trust):
    svc = Service(tmp_path / "host")
    svc.issue(ca, ["DNS:git.island.internal", "IP:127.0.0.1"])
    ok, out = openssl_verify(trust, svc.cert, untrusted_file=svc.cert)
    assert ok, out
    assert ": OK" in out
    # The file holds leaf then intermediate, and not the root.
    certs = load_certificates(svc.cert.read_text(), "installed file")
    assert [c.subject.rfc4514_string() for c in certs] == [
        "CN=git.island.internal",
        ca.intermediate.cert.subject.rfc4514_string(),
    ]


def test_issued_certificate_serves_a_real_tls_handshake_that_python_ssl_accepts(tmp_path, ca, trust):
    svc = Service(tmp_path / "host")
    svc.issue(ca, ["DNS:git.island.internal", "IP:127.0.0.1"])
    with tls_server(svc.cert, svc.key) as port:
        assert tls_fetch(port, trust, "git.island.internal") == b"island\n"


def test_python_ssl_refuses_a_name_the_certificate_is_not_for(tmp_path, ca, trust):
    svc = Service(tmp_path / "host")
    svc.issue(ca, ["DNS:git.island.internal"])
    with (
        tls_server(svc.cert, svc.key) as port,
        pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"),
    ):
        tls_fetch(port, trust, "minio.island.internal")


def test_issued_leaf_is_a_server_certificate_with_key_ids_chaining_to_the_intermediate(tmp_path, ca):
    svc = Service(tmp_path / "host")
    signed = svc.issue(ca, ["DNS:git.island.internal", "IP:127.0.0.1"])
    leaf = signed.cert
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    ski = ca.intermediate.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert aki == ski
    assert leaf.subject.rfc4514_string() == "CN=git.island.internal"
    assert signed.reason == "no certificate yet"


def test_client_usage_adds_the_client_auth_eku(tmp_path, ca):
    svc = Service(tmp_path / "host")
    signed = svc.issue(ca, ["DNS:etcd.island.internal"], usage=["server_auth", "client_auth"])
    eku = signed.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


@pytest.mark.parametrize(
    ("sans", "refused"),
    [
        (["DNS:git.island.internal", "DNS:www.example.com"], "dns:www.example.com"),
        (["DNS:evilisland.internal"], "dns:evilisland.internal"),
        (["DNS:island.internal.example.com"], "dns:island.internal.example.com"),
        (["DNS:git.island.internal", "IP:10.1.2.3"], "ip:10.1.2.3"),
        (["DNS:git.island.internal", "IP:::1"], "ip:::1"),
    ],
)
def test_a_csr_with_a_name_outside_the_constraints_is_refused_before_signing(tmp_path, ca, sans, refused):
    svc = Service(tmp_path / "host")
    csr = svc.csr(sans)
    with pytest.raises(NameConstraintError) as err:
        sign_csr(csr.csr_pem, ca.intermediate, what="CSR from host1 gitea")
    message = str(err.value)
    assert refused in message
    assert "CSR from host1 gitea" in message
    assert "DNS:island.internal" in message


def test_names_given_by_the_controller_are_checked_too(tmp_path, ca):
    csr = Service(tmp_path / "host").csr(["DNS:git.island.internal"])
    with pytest.raises(NameConstraintError, match=r"dns:git\.example\.org"):
        sign_csr(csr.csr_pem, ca.intermediate, sans=["DNS:git.example.org"])


def test_controller_names_override_the_names_the_host_asked_for(tmp_path, ca):
    csr = Service(tmp_path / "host").csr(["DNS:git.island.internal", "DNS:extra.island.internal"])
    signed = sign_csr(csr.csr_pem, ca.intermediate, sans=["DNS:git.island.internal"])
    assert signed.after["subject_alt_names"] == ["dns:git.island.internal"]


def test_wildcards_under_the_island_domain_are_allowed_and_validate(tmp_path, ca, trust):
    svc = Service(tmp_path / "host")
    svc.issue(ca, ["DNS:*.apps.island.internal"])
    with tls_server(svc.cert, svc.key) as port:
        assert tls_fetch(port, trust, "shop.apps.island.internal") == b"island\n"


def test_a_tampered_csr_is_refused(tmp_path, ca):
    pem = Service(tmp_path / "host").csr(["DNS:git.island.internal"]).csr_pem
    with pytest.raises(CsrError, match="not a valid PEM"):
        sign_csr(pem.replace("M", "N", 3), ca.intermediate)


def test_a_forced_dns_name_outside_the_constraints_is_rejected_by_openssl_verify(tmp_path, ca, trust):
    svc = _forge(tmp_path, ca, [("dns", "www.example.com")])
    ok, out = openssl_verify(trust, svc.cert, untrusted_file=svc.cert)
    assert not ok
    assert "permitted subtree violation" in out


def test_a_forced_ip_outside_the_constraints_is_rejected_by_openssl_verify(tmp_path, ca, trust):
    svc = _forge(tmp_path, ca, [("dns", "git.island.internal"), ("ip", "192.0.2.7")])
    ok, out = openssl_verify(trust, svc.cert, untrusted_file=svc.cert)
    assert not ok
    assert "permitted subtree violation" in out


def test_a_forced_name_outside_the_constraints_is_rejected_by_python_ssl_in_a_handshake(tmp_path, ca, trust):
    svc = _forge(tmp_path, ca, [("dns", "www.example.com")])
    with (
        tls_server(svc.cert, svc.key) as port,
        pytest.raises(ssl.SSLCertVerificationError, match="permitted subtree violation"),
    ):
        tls_fetch(port, trust, "www.example.com")


def test_a_forced_certificate_that_mixes_island_and_foreign_names_is_rejected_by_python_ssl(
    tmp_path, ca, trust
):
    # Even asking for the island name does not help: one foreign SAN poisons the certificate.
    svc = _forge(tmp_path, ca, [("dns", "git.island.internal"), ("dns", "login.bank.example")])
    with (
        tls_server(svc.cert, svc.key) as port,
        pytest.raises(ssl.SSLCertVerificationError, match="permitted subtree violation"),
    ):
        tls_fetch(port, trust, "git.island.internal")


def test_an_ip_only_certificate_has_no_cn_a_critical_san_and_validates_for_its_address(tmp_path, ca, trust):
    svc = Service(tmp_path / "host")
    signed = svc.issue(ca, ["IP:127.0.0.1"])
    assert signed.cert.subject == x509.Name([])
    assert signed.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    ok, out = openssl_verify(trust, svc.cert, untrusted_file=svc.cert)
    assert ok, out
    with tls_server(svc.cert, svc.key) as port:
        assert tls_fetch(port, trust, "127.0.0.1") == b"island\n"
