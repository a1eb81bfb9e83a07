# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A client certificate of k3s's client CA for a CSR made elsewhere, signed on the k3s server.

Kubernetes authenticates a client certificate its ``--client-ca-file`` signed as the user of the
subject's common name, in the groups of its organizations (kubernetes/website
content/en/docs/reference/access-authn-authz/authentication.md, "X509 client certificates"; k3s
runs kube-apiserver with ``--client-ca-file=<data-dir>/server/tls/client-ca.crt``). The group
``system:monitoring`` is bound by Kubernetes's bootstrap RBAC policy to the ClusterRole of the same
name, which may GET ``/metrics``, ``/healthz``, ``/livez``, ``/readyz`` and their checks and
nothing else (rbac.md, "Default roles and role bindings"): a scraper needs no RBAC object.

The subject is the caller's (``common_name``, ``organization``), never the CSR's, so a CSR asking
for ``system:masters`` gets no more than asked here. The private key stays on the host that made
the CSR; the CA key is read where it lives (the k3s server) and never leaves it. A current
certificate is kept while the CA signed it, it names the CSR's key and the subject, and it does not
expire within ``renew_before_days``.
"""

from __future__ import annotations

import datetime
import secrets

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError as exc:  # pragma: no cover - reported by the module through missing_library
    CRYPTOGRAPHY_ERROR = exc
else:
    CRYPTOGRAPHY_ERROR = None

UTC = datetime.timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+, hosts run 3.9+
BACKDATE = datetime.timedelta(minutes=5)  # tolerate clocks a little behind the server's


class ClientCertError(Exception):
    """The CSR or the CA cannot give a certificate; the message says which and what to do."""


def _utc(value):
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _not_after(cert):
    return _utc(getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after)


def _public_der(key):
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _signed_by(cert, ca_cert):
    public = ca_cert.public_key()
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(public, rsa.RSAPublicKey):
            public.verify(
                cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm
            )
        else:
            return False
    except InvalidSignature:
        return False
    return cert.issuer == ca_cert.subject


def subject(common_name, organization):
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def stale(current_pem, csr, ca_cert, wanted, now, renew_before_days):  # noqa: PLR0911, PLR0917 - one reason per check
    """Why a new certificate is due (a sentence), or None when ``current_pem`` serves as it is."""
    if not current_pem.strip():
        return "there is no certificate yet"
    try:
        current = x509.load_pem_x509_certificate(current_pem.encode())
    except ValueError:
        return "the current certificate does not parse"
    if not _signed_by(current, ca_cert):
        return "the current certificate is not signed by this client CA"
    if _public_der(current.public_key()) != _public_der(csr.public_key()):
        return "the CSR has another key than the current certificate"
    if current.subject != wanted:
        return f"the subject differs: {current.subject.rfc4514_string()} -> {wanted.rfc4514_string()}"
    left = _not_after(current) - now
    if left < datetime.timedelta(days=renew_before_days):
        return f"the certificate expires in {max(left.days, 0)} days (threshold {renew_before_days})"
    return None


def converge(csr_pem, ca_cert_pem, ca_key_pem, common_name, organization, *, current_pem="", days=365,
             renew_before_days=30, now=None):  # fmt: skip
    """``{"changed", "reason", "certificate", "not_after"}``: the current certificate, or a new one
    the client CA signed for the CSR's key with the caller's subject."""
    if CRYPTOGRAPHY_ERROR is not None:
        raise ClientCertError(f"python cryptography is needed: {CRYPTOGRAPHY_ERROR}")
    if not common_name or not organization:
        raise ClientCertError("common_name and organization must not be empty")
    if int(renew_before_days) >= int(days):
        raise ClientCertError(f"renew_before_days ({renew_before_days}) must be less than days ({days})")
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode())
    except ValueError as exc:
        raise ClientCertError(f"the CSR is not a PEM certificate request: {exc}") from exc
    if not csr.is_signature_valid:
        raise ClientCertError("the CSR's signature does not verify: it was not made with its own key")
    if not isinstance(csr.public_key(), (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)):
        raise ClientCertError("the CSR's key must be ECDSA or RSA (what Kubernetes takes)")
    try:
        ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
        ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    except ValueError as exc:
        raise ClientCertError(f"the client CA's certificate or key does not load: {exc}") from exc
    if _public_der(ca_key.public_key()) != _public_der(ca_cert.public_key()):
        raise ClientCertError("the client CA's key does not belong to its certificate")
    now = now or datetime.datetime.now(UTC)
    wanted = subject(common_name, organization)
    reason = stale(current_pem, csr, ca_cert, wanted, now, int(renew_before_days))
    if reason is None:
        cert = x509.load_pem_x509_certificate(current_pem.encode())
        return {
            "changed": False,
            "reason": "",
            "certificate": current_pem,
            "not_after": _not_after(cert).isoformat(),
        }
    unused = ("content_commitment", "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign")
    key_usage = dict.fromkeys((*unused, "encipher_only", "decipher_only"), False)
    rsa_key = isinstance(csr.public_key(), rsa.RSAPublicKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(wanted)
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=int(days)))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_encipherment=rsa_key, **key_usage), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False
        )
    )
    cert = builder.sign(ca_key, hashes.SHA256())
    return {
        "changed": True,
        "reason": reason,
        "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "not_after": _not_after(cert).isoformat(),
    }
