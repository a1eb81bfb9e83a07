"""One throwaway CA for tests: a self-signed EC P-256 CA that issues TLS server certificates.

It is independent of the island's own PKI (plugins/module_utils/island_pki*), so that test servers
(the registry, the doubles, PostgreSQL) do not depend on the code under test. Nothing here is
stored beyond the test's temporary directory.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Key encodings: PKCS#8 ("BEGIN PRIVATE KEY") or OpenSSL's traditional SEC1 ("BEGIN EC PRIVATE KEY").
PKCS8 = serialization.PrivateFormat.PKCS8
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def san(name: str) -> x509.GeneralName:
    """A subject alternative name: an IP address when ``name`` parses as one, else a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def key_pem(key: ec.EllipticCurvePrivateKey, key_format=PKCS8) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, key_format, serialization.NoEncryption())


def write_private(path: Path, data: bytes) -> Path:
    """Write a private key 0600."""
    path = Path(path)
    path.write_bytes(data)
    path.chmod(0o600)
    return path


class ThrowawayCA:
    """A CA certificate and key valid from five minutes ago for ``days`` days (path length 0)."""

    def __init__(self, common_name: str = "island test CA", days: int = 1):
        self.now = datetime.datetime.now(datetime.UTC)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - datetime.timedelta(minutes=5))
            .not_valid_after(self.now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, key_format=PKCS8) -> bytes:
        return key_pem(self.key, key_format)

    def issue(self, common_name: str, sans, days: int = 1, key_format=PKCS8) -> tuple[bytes, bytes]:
        """A server certificate (EKU serverAuth) for ``sans`` (DNS names or IP addresses) with a new
        EC key; returns (certificate PEM, key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.now - datetime.timedelta(minutes=5))
            .not_valid_after(self.now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([san(n) for n in sans]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem(key, key_format)


def throwaway_ca(common_name: str = "island test CA", days: int = 1) -> ThrowawayCA:
    return ThrowawayCA(common_name, days)


def server_pki(directory, server_name: str, sans, common_name: str = "island test CA") -> dict[str, Path]:
    """ca.crt, server.crt and server.key (0600) in ``directory`` from a new throwaway CA; returns
    their paths as {"ca", "cert", "key"}."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = throwaway_ca(common_name)
    cert, key = ca.issue(server_name, sans)
    paths = {"ca": directory / "ca.crt", "cert": directory / "server.crt", "key": directory / "server.key"}
    paths["ca"].write_bytes(ca.cert_pem)
    paths["cert"].write_bytes(cert)
    write_private(paths["key"], key)
    return paths
