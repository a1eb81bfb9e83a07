"""Island PKI, the shared vocabulary: names, errors, constants, parsing and PEM.

Note that this module util is PRIVATE to this repository; it can change at any time.

Principle 5 of the design: private keys never leave the host that uses them. So the PKI code is in
parts that run in different places, and a module ships (AnsiballZ) only the parts it imports:

* ``island_pki`` (this file), everywhere: errors, SAN parsing, key and certificate helpers, PEM,
  file reading and ownership;
* ``island_pki_ca``, controller: ``ensure_ca()`` keeps a root and an intermediate CA in a directory
  (keys encrypted at rest, name-constrained to the island's domains and addresses);
* ``island_pki_sign``, controller: ``sign_csr()`` signs a host's CSR with the intermediate after
  checking every name against the intermediate's name constraints; ``needs_reissue()`` is the one
  place that decides whether a host's certificate must be issued again;
* ``island_pki_host``, hosts: ``ensure_key_and_csr()`` makes the private key (0600, owned by the
  service user) and a CSR; ``ensure_certificate_file()`` installs the certificate with its chain.

Files are written through ``island_io.atomic_write``. The files shipped to managed hosts (this one
and ``island_pki_host``) must import and run on the hosts' system Python (3.9+) and system
``cryptography`` (3.4+; Debian 12 has 38, RHEL 9 has 36). Newer-only APIs go through the compat
helpers below.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import stat

from ansible_collections.island.installer.plugins.module_utils.island_module import missing_library

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - exercised only on a host without the library
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = _exc
    # Importable names all the same, so island_pki_* import them from here; never used without it.
    x509 = InvalidSignature = hashes = serialization = ec = padding = rsa = None
    ExtendedKeyUsageOID = NameOID = None

# Hosts may run Python 3.9, which has no datetime.UTC.
UTC = datetime.timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+, hosts run 3.9+

KEY_TYPES = ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096")
DEFAULT_KEY_TYPE = "ec-p256"
USAGES = ("server_auth", "client_auth")
# Certificates are back-dated a little so a host whose clock lags the controller's accepts them.
BACKDATE = datetime.timedelta(minutes=5)
# A root needs a long roll (trust everywhere first), so its expiry is flagged a year ahead.
ROOT_WARNING_DAYS = 365

_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


# --------------------------------------------------------------------------------------------------
# Errors: every failure is one of these; modules turn them into fail_json in one place.


class PkiError(Exception):
    """Base class; the message names the file or name at fault and what to do."""


class PassphraseError(PkiError):
    """A CA key could not be decrypted with the passphrase given."""


class CaStateError(PkiError):
    """The CA directory or one of its files is missing, unreadable, corrupt or inconsistent."""


class NameConstraintError(PkiError):
    """A requested name lies outside the CA's name constraints."""


class CsrError(PkiError):
    """A CSR is malformed or its signature does not verify."""


class KeyFileError(PkiError):
    """A host private key exists but cannot be used."""


class CertificateFileError(PkiError):
    """A certificate to install is malformed or does not fit the key or chain."""


class ParameterError(PkiError):
    """A parameter has an invalid value."""


# --------------------------------------------------------------------------------------------------
# Compat helpers (cryptography 3.4 .. current)


def cert_not_after(cert):
    """Expiry as an aware UTC datetime (``not_valid_after_utc`` exists only in cryptography >= 42)."""
    value = getattr(cert, "not_valid_after_utc", None)
    if value is None:
        value = cert.not_valid_after.replace(tzinfo=UTC)
    return value


def cert_not_before(cert):
    """Start of validity as an aware UTC datetime (see ``cert_not_after``)."""
    value = getattr(cert, "not_valid_before_utc", None)
    if value is None:
        value = cert.not_valid_before.replace(tzinfo=UTC)
    return value


def utcnow():
    return datetime.datetime.now(UTC)


def get_extension(cert_or_csr, ext_class):
    try:
        return cert_or_csr.extensions.get_extension_for_class(ext_class)
    except x509.ExtensionNotFound:
        return None


def public_key_der(key_or_public_key):
    """DER SubjectPublicKeyInfo, the canonical form for comparing keys."""
    pub = key_or_public_key
    if hasattr(pub, "public_key"):
        pub = pub.public_key()
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_type_of(key_or_public_key):
    """The island key-type name (``ec-p256`` ...) of a key, or a description for other keys."""
    pub = key_or_public_key
    if hasattr(pub, "public_key"):
        pub = pub.public_key()
    if isinstance(pub, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ec-p256", "secp384r1": "ec-p384"}.get(pub.curve.name, "ec-" + pub.curve.name)
    if isinstance(pub, rsa.RSAPublicKey):
        return f"rsa-{pub.key_size}"
    return type(pub).__name__


def generate_private_key(key_type=DEFAULT_KEY_TYPE):
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type.startswith("rsa-") and key_type in KEY_TYPES:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    raise ParameterError("unknown key type {!r}; choose one of {}".format(key_type, ", ".join(KEY_TYPES)))


def signature_hash(private_key):
    if isinstance(private_key, ec.EllipticCurvePrivateKey) and private_key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


def key_usage(**granted):
    """An ``x509.KeyUsage`` granting the usages named true in ``granted``, and nothing else."""
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{name: bool(granted.pop(name, False)) for name in names}, **granted)


def verify_issued_by(cert, issuer_cert):
    """True if ``issuer_cert``'s key signed ``cert`` (``verify_directly_issued_by`` is >= 40 only)."""
    if cert.issuer != issuer_cert.subject:
        return False
    pub = issuer_cert.public_key()
    try:
        if isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(pub, rsa.RSAPublicKey):
            pub.verify(
                cert.signature,
                cert.tbs_certificate_bytes,
                padding.PKCS1v15(),
                cert.signature_hash_algorithm,
            )
        else:
            return False
    except InvalidSignature:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# Names: subject alternative names and name constraints


def normalise_dns(name, what):
    value = name.strip().lower().rstrip(".")
    labels = value.split(".")
    if not value or not all(
        _DNS_LABEL.match(label) or (i == 0 and label == "*") for i, label in enumerate(labels)
    ):
        raise ParameterError(f"{what} {name!r} is not a valid DNS name")
    return value


def parse_san(entry):
    """``"DNS:git.island.internal"`` or ``"IP:10.0.0.5"`` -> ``("dns", name)`` / ``("ip", address)``."""
    if not isinstance(entry, str) or ":" not in entry:
        raise ParameterError(f"subject alternative name {entry!r} must be written DNS:<name> or IP:<address>")
    kind, _, value = entry.partition(":")
    kind = kind.strip().lower()
    if kind == "dns":
        return ("dns", normalise_dns(value, "DNS subject alternative name"))
    if kind == "ip":
        try:
            return ("ip", str(ipaddress.ip_address(value.strip())))
        except ValueError:
            raise ParameterError(f"IP subject alternative name {value!r} is not an IP address") from None
    raise ParameterError(f"subject alternative name {entry!r}: type must be DNS or IP, not {kind!r}")


def _unique(items):
    seen = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return tuple(out)


def parse_sans(entries):
    """A tuple of unique ``(kind, value)`` pairs in the order given (the first DNS name is the CN)."""
    sans = _unique(parse_san(e) for e in entries or [])
    if not sans:
        raise ParameterError("at least one subject alternative name (DNS:<name> or IP:<address>) is needed")
    return tuple(sans)


def format_san(san):
    return "{}:{}".format(*san)


def sans_of(cert_or_csr):
    """SANs of a certificate or CSR, in their order, as ``parse_sans`` returns them (empty if none)."""
    ext = get_extension(cert_or_csr, x509.SubjectAlternativeName)
    if ext is None:
        return ()
    found = []
    for general_name in ext.value:
        if isinstance(general_name, x509.DNSName):
            found.append(("dns", general_name.value.lower().rstrip(".")))
        elif isinstance(general_name, x509.IPAddress):
            found.append(("ip", str(general_name.value)))
        else:
            found.append((type(general_name).__name__.lower(), str(general_name.value)))
    return _unique(found)


def san_general_names(sans):
    names = []
    for kind, value in sans:
        if kind == "dns":
            names.append(x509.DNSName(value))
        else:
            names.append(x509.IPAddress(ipaddress.ip_address(value)))
    return names


def leaf_subject(sans):
    dns = [v for k, v in sans if k == "dns" and not v.startswith("*")]
    if dns:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0])])
    # No CN for IP-only certificates: OpenSSL would check a dotted CN against the DNS constraints.
    return x509.Name([])


# --------------------------------------------------------------------------------------------------
# Files


def read_file(path, what):
    """Bytes of ``path``, or None if it does not exist; other failures are ``CaStateError``."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise CaStateError(f"{what} {path} is a directory, expected a file; move it away") from None
    except OSError as exc:
        raise CaStateError(f"cannot read {what} {path}: {exc.strerror}") from None


def attribute_changes(path, mode, uid=None, gid=None):
    """What ``fix_attributes`` would change on an existing file, as ``{"mode": (old, new), ...}``."""
    st = os.stat(path)
    changes = {}
    if stat.S_IMODE(st.st_mode) != mode:
        changes["mode"] = (f"{stat.S_IMODE(st.st_mode):04o}", f"{mode:04o}")
    if uid is not None and st.st_uid != uid:
        changes["owner"] = (st.st_uid, uid)
    if gid is not None and st.st_gid != gid:
        changes["group"] = (st.st_gid, gid)
    return changes


def fix_attributes(path, mode, uid=None, gid=None):
    changes = attribute_changes(path, mode, uid, gid)
    if "owner" in changes or "group" in changes:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    if "mode" in changes:
        os.chmod(path, mode)
    return changes


# --------------------------------------------------------------------------------------------------
# PEM


def load_certificate(data, what, *, error=CaStateError, hint="restore it from a backup"):
    """One PEM certificate; a bad one raises ``error`` naming ``what`` and what to do (``hint``)."""
    if isinstance(data, str):
        data = data.encode()
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise error(f"{what} is not a valid PEM certificate ({exc}); {hint}") from None


def load_certificates(data, what, **kwargs):
    """All certificates of a PEM bundle, in order (``kwargs`` as for ``load_certificate``)."""
    if isinstance(data, bytes):
        data = data.decode("ascii", "replace")
    blocks = re.findall(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", data or "", re.S)
    return [
        load_certificate(b.encode(), f"{what} (certificate {i + 1})", **kwargs) for i, b in enumerate(blocks)
    ]


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_encrypted_key(data, passphrase, what):
    if not passphrase:
        raise ParameterError(f"a passphrase is needed to use the CA key {what}")
    try:
        return serialization.load_pem_private_key(data, password=passphrase.encode("utf-8"))
    except TypeError:
        raise CaStateError(f"CA key {what} is not encrypted; CA keys must be encrypted at rest") from None
    except ValueError as exc:
        text = str(exc).lower()
        if "decrypt" in text or "password" in text or "passphrase" in text:
            raise PassphraseError(
                f"CA key {what} could not be decrypted: wrong passphrase. Use the passphrase the CA was "
                "created with (island_pki_passphrase); the key was left untouched"
            ) from None
        raise CaStateError(
            f"CA key {what} is not a valid PEM private key; restore it from a backup"
        ) from None


def plain_key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# --------------------------------------------------------------------------------------------------
# Certificate summaries (for diff output and results)


def describe_certificate(cert):
    """Subject, issuer, SANs, expiry and serial of a certificate, for ``diff`` and results."""
    if cert is None:
        return {}
    eku = get_extension(cert, x509.ExtendedKeyUsage)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "subject_alt_names": [format_san(s) for s in sans_of(cert)],
        "not_before": cert_not_before(cert).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": cert_not_after(cert).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "serial_number": f"{cert.serial_number:x}",
        "usage": usage_names(eku.value) if eku is not None else [],
    }


def usage_names(eku_value):
    names = {ExtendedKeyUsageOID.SERVER_AUTH: "server_auth", ExtendedKeyUsageOID.CLIENT_AUTH: "client_auth"}
    return sorted(names.get(oid, oid.dotted_string) for oid in eku_value)


def ski_of(cert):
    ext = get_extension(cert, x509.SubjectKeyIdentifier)
    return ext.value.digest if ext is not None else None


def aki_of(cert):
    ext = get_extension(cert, x509.AuthorityKeyIdentifier)
    return ext.value.key_identifier if ext is not None else None


def load_csr(data, what):
    if isinstance(data, str):
        data = data.encode()
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise CsrError(f"{what} is not a valid PEM certificate signing request ({exc})") from None
    if not csr.is_signature_valid:
        raise CsrError(f"{what} has an invalid signature; regenerate it on the host with island_csr")
    return csr


def missing_cryptography():
    """``fail_json`` arguments if this host's Python lacks cryptography, else None (``run_module``)."""
    if HAS_CRYPTOGRAPHY:
        return None
    return missing_library("cryptography >= 3.4", CRYPTOGRAPHY_IMPORT_ERROR)
