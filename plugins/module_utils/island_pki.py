"""Island PKI: the island certificate authority and certificate issuance.

Note that this module util is PRIVATE to this repository; it can change at any time.

Principle 5 of the design: private keys never leave the host that uses them. So the code here is in
three parts that run in different places:

* controller: ``ensure_ca()`` keeps a root and an intermediate CA in a directory (keys encrypted at
  rest, name-constrained to the island's domains and addresses); ``sign_csr()`` signs a host's CSR
  with the intermediate after checking every name against the intermediate's name constraints;
  ``needs_reissue()`` is the one place that decides whether a host's certificate must be issued
  again.
* host: ``ensure_key_and_csr()`` makes the private key (0600, owned by the service user) and a CSR;
  ``ensure_certificate_file()`` installs the certificate with its chain atomically.
* both: parsing, comparison and the atomic writer.

This file is shipped to managed hosts inside every module that imports it, so all of it must import
and run on the hosts' system Python (3.9+) and system ``cryptography`` (3.4+; Debian 12 has 38,
RHEL 9 has 36). Newer-only APIs go through the compat helpers below.
"""

from __future__ import annotations

import datetime
import grp
import ipaddress
import os
import pwd
import re
import stat
import tempfile
import traceback

from ansible.module_utils.basic import missing_required_lib

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


def _extension(cert_or_csr, ext_class):
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


def _signature_hash(private_key):
    if isinstance(private_key, ec.EllipticCurvePrivateKey) and private_key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


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


def _normalise_dns(name, what):
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
        return ("dns", _normalise_dns(value, "DNS subject alternative name"))
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
    ext = _extension(cert_or_csr, x509.SubjectAlternativeName)
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


def _san_general_names(sans):
    names = []
    for kind, value in sans:
        if kind == "dns":
            names.append(x509.DNSName(value))
        else:
            names.append(x509.IPAddress(ipaddress.ip_address(value)))
    return names


class NameConstraints:
    """Permitted DNS domains and IP networks of the island, as the CA certificates carry them.

    With no IP range given, every IP address is *excluded* (0.0.0.0/0 and ::/0): a CA without any
    iPAddress subtree would otherwise be unconstrained for IP addresses.
    """

    def __init__(self, domains, ip_ranges=(), excluded_ip_ranges=None):
        self.domains = tuple(sorted({_normalise_dns(d, "island domain") for d in domains or []}))
        if not self.domains:
            raise ParameterError("at least one island domain is needed for the CA's name constraints")
        if any(d.startswith("*") for d in self.domains):
            raise ParameterError("island domains are DNS suffixes such as island.internal, not wildcards")
        try:
            nets = {ipaddress.ip_network(str(r).strip(), strict=True) for r in ip_ranges or []}
        except ValueError as exc:
            raise ParameterError(f"island IP range is not a network in CIDR form: {exc}") from None
        self.ip_ranges = tuple(sorted(nets, key=lambda n: (n.version, n.network_address, n.prefixlen)))
        if excluded_ip_ranges is None:
            excluded = () if self.ip_ranges else ("0.0.0.0/0", "::/0")
            excluded_ip_ranges = [ipaddress.ip_network(n) for n in excluded]
        self.excluded_ip_ranges = tuple(excluded_ip_ranges)

    @classmethod
    def from_certificate(cls, cert):
        ext = _extension(cert, x509.NameConstraints)
        if ext is None:
            return None
        permitted = ext.value.permitted_subtrees or []
        excluded = ext.value.excluded_subtrees or []
        domains = [n.value for n in permitted if isinstance(n, x509.DNSName)]
        ips = [str(n.value) for n in permitted if isinstance(n, x509.IPAddress)]
        excluded_ips = [n.value for n in excluded if isinstance(n, x509.IPAddress)]
        if len(excluded_ips) != len(excluded) or len(domains) + len(ips) != len(permitted) or not domains:
            raise CaStateError(
                f"name constraints of {cert.subject.rfc4514_string()} use forms this installer does "
                "not manage; issue the CA with island_ca"
            )
        return cls(domains, ips, excluded_ips)

    def extension(self):
        permitted = [x509.DNSName(d) for d in self.domains]
        permitted += [x509.IPAddress(n) for n in self.ip_ranges]
        excluded = [x509.IPAddress(n) for n in self.excluded_ip_ranges] or None
        return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=excluded)

    def key(self):
        return (
            self.domains,
            tuple(str(n) for n in self.ip_ranges),
            tuple(str(n) for n in self.excluded_ip_ranges),
        )

    def __eq__(self, other):
        return isinstance(other, NameConstraints) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    def describe(self):
        parts = ["DNS:" + d for d in self.domains] + [f"IP:{n}" for n in self.ip_ranges]
        if self.excluded_ip_ranges and not self.ip_ranges:
            parts.append("no IP addresses")
        return ", ".join(parts)

    def permits(self, san):
        kind, value = san
        if kind == "dns":
            name = value[2:] if value.startswith("*.") else value
            return any(name == d or name.endswith("." + d) for d in self.domains)
        if kind == "ip":
            address = ipaddress.ip_address(value)
            if any(address.version == n.version and address in n for n in self.excluded_ip_ranges):
                return False
            return any(address.version == n.version and address in n for n in self.ip_ranges)
        return False

    def check(self, sans, what):
        """Raise ``NameConstraintError`` naming every SAN of ``what`` that the constraints refuse."""
        refused = [format_san(s) for s in sans if not self.permits(s)]
        if refused:
            raise NameConstraintError(
                "{} asks for {}, outside the island CA's name constraints ({}); the CA refuses to "
                "sign it. Use names under the island domains or add the domain/range to the CA "
                "(a new root generation, see docs/pki.md)".format(what, ", ".join(refused), self.describe())
            )


# --------------------------------------------------------------------------------------------------
# Files


def atomic_write(path, data, mode=0o600, uid=None, gid=None):
    """Write ``data`` to ``path`` via a temp file in the same directory and a rename.

    The temp file is created 0600 and gets its final mode and owner before the rename, so the
    content is never visible with looser permissions or partially written.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), mode)
            if uid is not None or gid is not None:
                os.fchown(handle.fileno(), -1 if uid is None else uid, -1 if gid is None else gid)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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


def resolve_owner(owner=None, group=None):
    """User and group names (or numeric ids) -> ``(uid, gid)``; None stays None."""
    uid = gid = None
    if owner not in (None, ""):
        try:
            uid = int(owner) if str(owner).isdigit() else pwd.getpwnam(owner).pw_uid
        except KeyError:
            raise ParameterError(
                f"user {owner!r} does not exist on this host; create the service user first"
            ) from None
    if group not in (None, ""):
        try:
            gid = int(group) if str(group).isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise ParameterError(
                f"group {group!r} does not exist on this host; create the service group first"
            ) from None
    return uid, gid


def parse_mode(mode, default=0o600):
    if mode in (None, ""):
        return default
    if isinstance(mode, int) and not isinstance(mode, bool) and 0 <= mode <= 0o7777:
        return mode  # an unquoted YAML 0600 arrives as the number 384
    text = str(mode).strip()
    if not re.match(r"^0?[0-7]{3,4}$", text):
        raise ParameterError(f"mode {mode!r} must be octal, such as '0600'")
    return int(text, 8)


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


def encrypted_key_pem(key, passphrase):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
    )


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
    eku = _extension(cert, x509.ExtendedKeyUsage)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "subject_alt_names": [format_san(s) for s in sans_of(cert)],
        "not_before": cert_not_before(cert).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": cert_not_after(cert).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "serial_number": f"{cert.serial_number:x}",
        "usage": _usage_names(eku.value) if eku is not None else [],
    }


def _usage_names(eku_value):
    names = {ExtendedKeyUsageOID.SERVER_AUTH: "server_auth", ExtendedKeyUsageOID.CLIENT_AUTH: "client_auth"}
    return sorted(names.get(oid, oid.dotted_string) for oid in eku_value)


def _ski(cert):
    ext = _extension(cert, x509.SubjectKeyIdentifier)
    return ext.value.digest if ext is not None else None


def _aki(cert):
    ext = _extension(cert, x509.AuthorityKeyIdentifier)
    return ext.value.key_identifier if ext is not None else None


# --------------------------------------------------------------------------------------------------
# Controller: the CA


class CaSpec:
    """What the operator asks of the CA directory (the ``island_ca`` module's options)."""

    def __init__(
        self,
        path,
        passphrase,
        domains,
        *,
        ip_ranges=(),
        name="Island",
        organization=None,
        key_type=DEFAULT_KEY_TYPE,
        root_days=3650,
        intermediate_days=1095,
        root_generation=1,
        intermediate_generation=1,
        next_root_generation=None,
        retired_root_generations=(),
        warning_days=90,
    ):
        if not passphrase:
            raise ParameterError("the CA passphrase must not be empty")
        if key_type not in KEY_TYPES:
            raise ParameterError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")
        self.path = path
        self.passphrase = passphrase
        self.constraints = NameConstraints(domains, ip_ranges)
        self.name = name
        self.organization = organization or name
        self.key_type = key_type
        self.root_days = int(root_days)
        self.intermediate_days = int(intermediate_days)
        self.root_generation = int(root_generation)
        self.intermediate_generation = int(intermediate_generation)
        self.next_root_generation = None if next_root_generation is None else int(next_root_generation)
        self.retired = tuple(sorted({int(g) for g in retired_root_generations or ()}))
        self.warning_days = int(warning_days)
        self._validate()

    def _validate(self):
        if self.root_generation < 1 or self.intermediate_generation < 1:
            raise ParameterError("root_generation and intermediate_generation start at 1")
        if self.root_days < 2 or self.intermediate_days < 1:
            raise ParameterError("root_days and intermediate_days must be positive")
        if self.root_generation in self.retired:
            raise ParameterError(
                f"root generation {self.root_generation} is the active root and cannot be retired; "
                "switch root_generation to the new root first (docs/pki.md)"
            )
        if self.next_root_generation is not None:
            if self.next_root_generation == self.root_generation:
                raise ParameterError("next_root_generation must differ from root_generation")
            if self.next_root_generation in self.retired:
                raise ParameterError(f"next_root_generation {self.next_root_generation} is listed as retired")

    @property
    def intermediate_label(self):
        return f"intermediate CA R{self.root_generation}-I{self.intermediate_generation}"

    def root_paths(self, generation):
        base = os.path.join(self.path, f"root-r{generation}")
        return base + ".crt", base + ".key"

    def intermediate_paths(self):
        name = f"intermediate-r{self.root_generation}-i{self.intermediate_generation}"
        base = os.path.join(self.path, name)
        return base + ".crt", base + ".key"

    def _subject(self, common_name):
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )

    def root_subject(self, generation):
        return self._subject(f"{self.name} Root CA R{generation}")

    def intermediate_subject(self):
        return self._subject(
            f"{self.name} Intermediate CA R{self.root_generation}-I{self.intermediate_generation}"
        )


def _ca_key_usage():
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def build_ca_certificate(subject, key, *, issuer, days, pathlen, constraints, now):
    """A CA certificate for ``key``; ``issuer`` is a ``CaPair`` or None for a self-signed root."""
    not_after = now + datetime.timedelta(days=days)
    if issuer is not None:
        not_after = min(not_after, cert_not_after(issuer.cert))
        aki = x509.AuthorityKeyIdentifier(
            key_identifier=_ski(issuer.cert), authority_cert_issuer=None, authority_cert_serial_number=None
        )
    else:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())
    signer = issuer.key if issuer is not None else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=pathlen), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(constraints.extension(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(aki, critical=False)
    )
    return builder.sign(signer, _signature_hash(signer))


class CaPair:
    """A CA certificate with its (decrypted, in memory only) key and the files they live in."""

    def __init__(self, cert, key, cert_path, key_path, created=False):
        self.cert = cert
        self.key = key
        self.cert_path = cert_path
        self.key_path = key_path
        self.created = created

    def write(self, passphrase):
        # Key first: a certificate on disk always has its key beside it.
        atomic_write(self.key_path, encrypted_key_pem(self.key, passphrase), 0o600)
        atomic_write(self.cert_path, self.cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _load_pair(cert_path, key_path, passphrase, what):
    """Existing CA pair, None if neither file exists; a half-present pair is an error."""
    cert_data = read_file(cert_path, what + " certificate")
    key_data = read_file(key_path, what + " key")
    if cert_data is None and key_data is None:
        return None
    if cert_data is None or key_data is None:
        missing, present = (cert_path, key_path) if cert_data is None else (key_path, cert_path)
        raise CaStateError(
            f"{what} is incomplete: {present} exists but {missing} is missing. Restore the missing "
            "file from a backup; the installer never replaces one half of a CA"
        )
    cert = load_certificate(cert_data, f"{what} certificate {cert_path}")
    key = load_encrypted_key(key_data, passphrase, key_path)
    if public_key_der(key) != public_key_der(cert.public_key()):
        raise CaStateError(
            f"{what} key {key_path} does not match certificate {cert_path}; "
            "restore the matching pair from a backup"
        )
    return CaPair(cert, key, cert_path, key_path)


def _check_ca_dir(path):
    """True if the directory exists; a non-directory or unreadable directory is an error."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise CaStateError(
            f"CA directory {path} is not a directory; move the file away or choose another island_pki_dir"
        )
    if not os.path.isdir(path):
        return False
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise CaStateError(f"CA directory {path} is not readable and writable by this user")
    return True


class CaResult:
    def __init__(self):
        self.changed = False
        self.changes = []
        self.warnings = []
        self.root = None
        self.intermediate = None
        self.next_root = None
        self.trusted_generations = []
        self.trusted_roots = []
        self.trust_bundle = ""
        self.trust_bundle_path = None
        self.files_before = []
        self.written = []

    def change(self, text, *paths):
        self.changed = True
        self.changes.append(text)
        self.written.extend(os.path.basename(p) for p in paths)

    def files_after(self):
        return sorted(set(self.files_before) | set(self.written))


def _warn_expiry(result, cert, label, *, threshold_days, what_to_do, now):
    days = (cert_not_after(cert) - now).days
    if days < threshold_days:
        result.warnings.append(
            f"{label} expires in {days} days (warning threshold {threshold_days}); {what_to_do}"
        )


def _existing_roots(path):
    """Generation numbers of every ``root-r<N>.crt`` in the CA directory."""
    gens = set()
    for entry in os.listdir(path):
        match = re.match(r"^root-r(\d+)\.crt$", entry)
        if match:
            gens.add(int(match.group(1)))
    return gens


def _plan_root(spec, generation, now):
    """The existing root of ``generation`` (checked) or a new one, made in memory only."""
    cert_path, key_path = spec.root_paths(generation)
    pair = _load_pair(cert_path, key_path, spec.passphrase, f"root CA R{generation}")
    if pair is None:
        key = generate_private_key(spec.key_type)
        cert = build_ca_certificate(
            spec.root_subject(generation),
            key,
            issuer=None,
            days=spec.root_days,
            pathlen=1,
            constraints=spec.constraints,
            now=now,
        )
        return CaPair(cert, key, cert_path, key_path, created=True)
    have = NameConstraints.from_certificate(pair.cert)
    if have != spec.constraints:
        raise CaStateError(
            f"root CA R{generation} ({cert_path}) permits {have.describe() if have else 'any name'} but the "
            f"island asks for {spec.constraints.describe()}. A root's constraints never change: roll to a "
            "new root generation with the new domains (docs/pki.md, 'Rolling the root')"
        )
    return pair


def _plan_intermediate(spec, root, now):
    cert_path, key_path = spec.intermediate_paths()
    what = spec.intermediate_label
    pair = _load_pair(cert_path, key_path, spec.passphrase, what)
    if pair is None:
        key = generate_private_key(spec.key_type)
        cert = build_ca_certificate(
            spec.intermediate_subject(),
            key,
            issuer=root,
            days=spec.intermediate_days,
            pathlen=0,
            constraints=spec.constraints,
            now=now,
        )
        return CaPair(cert, key, cert_path, key_path, created=True)
    if not verify_issued_by(pair.cert, root.cert):
        raise CaStateError(
            f"{what} ({cert_path}) was not issued by root CA R{spec.root_generation} ({root.cert_path}); "
            "restore the matching files or raise intermediate_generation to issue a new intermediate"
        )
    have = NameConstraints.from_certificate(pair.cert)
    if have != spec.constraints:
        raise CaStateError(
            f"{what} ({cert_path}) permits {have.describe() if have else 'any name'} but the island asks "
            f"for {spec.constraints.describe()}; raise intermediate_generation to issue a new intermediate"
        )
    return pair


def _trusted_roots(spec, existing, planned):
    """Every root on disk or planned that is not retired, oldest generation first."""
    gens = sorted((existing | set(planned)) - set(spec.retired))
    certs = []
    for gen in gens:
        if gen in planned:
            certs.append(planned[gen].cert)
        else:
            cert_path = spec.root_paths(gen)[0]
            certs.append(load_certificate(read_file(cert_path, "root certificate"), f"root CA {cert_path}"))
    return gens, certs


def _fix_key_modes(result, pairs, check_mode):
    """Drifted permissions on existing CA key files are fixed and reported, not tolerated."""
    for pair in pairs:
        mode_change = None if pair.created else attribute_changes(pair.key_path, 0o600).get("mode")
        if mode_change:
            result.change(f"mode of {pair.key_path} {mode_change[0]} -> {mode_change[1]}")
            if not check_mode:
                fix_attributes(pair.key_path, 0o600)


def ensure_ca(spec, check_mode=False, now=None):
    """Make sure the CA directory holds the roots and the intermediate ``spec`` asks for.

    Everything that exists is read and checked first; only then is anything missing created, so a
    failure (wrong passphrase, corrupt or half-present files, constraints that differ) leaves the
    directory exactly as it was. Nothing that exists is ever replaced. Returns a ``CaResult``.
    """
    now = now or utcnow()
    result = CaResult()
    exists = _check_ca_dir(spec.path)
    dir_mode = attribute_changes(spec.path, 0o700).get("mode") if exists else None
    existing = _existing_roots(spec.path) if exists else set()
    result.files_before = sorted(
        e for e in (os.listdir(spec.path) if exists else []) if re.search(r"\.(crt|key|pem)$", e)
    )

    planned = {spec.root_generation: _plan_root(spec, spec.root_generation, now)}
    if spec.next_root_generation is not None:
        planned[spec.next_root_generation] = _plan_root(spec, spec.next_root_generation, now)
    root = result.root = planned[spec.root_generation]
    result.next_root = planned.get(spec.next_root_generation)
    intermediate = result.intermediate = _plan_intermediate(spec, root, now)
    result.trusted_generations, result.trusted_roots = _trusted_roots(spec, existing, planned)
    result.trust_bundle = "".join(cert_pem(c) for c in result.trusted_roots)
    result.trust_bundle_path = os.path.join(spec.path, "trust-bundle.pem")
    bundle_now = read_file(result.trust_bundle_path, "trust bundle") if exists else None

    if not exists:
        result.change(f"created CA directory {spec.path}")
        if not check_mode:
            os.makedirs(spec.path, mode=0o700)
    elif dir_mode:
        result.change(f"mode of {spec.path} {dir_mode[0]} -> {dir_mode[1]}")
        if not check_mode:
            os.chmod(spec.path, 0o700)
    for gen, pair in sorted(planned.items()):
        if pair.created:
            result.change(f"created root CA R{gen}", pair.cert_path, pair.key_path)
            if not check_mode:
                pair.write(spec.passphrase)
    if intermediate.created:
        result.change(f"created {spec.intermediate_label}", intermediate.cert_path, intermediate.key_path)
        if not check_mode:
            intermediate.write(spec.passphrase)
    _fix_key_modes(result, [*planned.values(), intermediate], check_mode)
    if bundle_now != result.trust_bundle.encode("ascii"):
        listed = ", ".join(f"R{g}" for g in result.trusted_generations)
        result.change(f"trust bundle now lists root CA generations {listed}", result.trust_bundle_path)
        if not check_mode:
            atomic_write(result.trust_bundle_path, result.trust_bundle.encode("ascii"), 0o644)

    _warn_expiry(
        result,
        root.cert,
        f"root CA R{spec.root_generation}",
        threshold_days=ROOT_WARNING_DAYS,
        what_to_do="roll to a new root generation (docs/pki.md)",
        now=now,
    )
    _warn_expiry(
        result,
        intermediate.cert,
        spec.intermediate_label,
        threshold_days=spec.warning_days,
        what_to_do="raise intermediate_generation to rotate it (docs/pki.md)",
        now=now,
    )
    return result


def load_signing_ca(cert_path, key_path, passphrase, *, check_mode=False, predicted_pem=None):
    """The intermediate (cert, key) ``sign_csr`` signs with, read from the CA directory.

    In check mode on a fresh island the CA files do not exist yet (``island_ca`` wrote nothing);
    then ``predicted_pem``, the intermediate ``island_ca`` would create, stands in. Check mode
    signs nothing, so no key is needed.
    """
    pair = _load_pair(cert_path, key_path, passphrase, "signing CA")
    if pair is None and check_mode and predicted_pem:
        pair = CaPair(load_certificate(predicted_pem, "predicted intermediate"), None, cert_path, key_path)
    if pair is None:
        raise CaStateError(
            f"signing CA {cert_path} and {key_path} do not exist; run island_ca first and pass its "
            "intermediate_cert_path / intermediate_key_path"
        )
    basic = _extension(pair.cert, x509.BasicConstraints)
    if basic is None or not basic.value.ca:
        raise CaStateError(f"{cert_path} is not a CA certificate")
    if NameConstraints.from_certificate(pair.cert) is None:
        raise CaStateError(f"{cert_path} has no name constraints; island CAs must be name-constrained")
    return pair


# --------------------------------------------------------------------------------------------------
# Controller: signing and the one renewal decision


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


class IssueRequest:
    """What the controller is asked to issue: the names, the usages and the lifetime."""

    def __init__(self, sans, *, usage=("server_auth",), days=365, renew_before_days=30):
        self.sans = tuple(sans)
        self.usage = tuple(sorted(set(usage)))
        unknown = [u for u in self.usage if u not in USAGES]
        if unknown or not self.usage:
            raise ParameterError(
                "usage must be one or more of {}, not {}".format(
                    ", ".join(USAGES), ", ".join(unknown) or "nothing"
                )
            )
        self.days = int(days)
        self.renew_before_days = int(renew_before_days)
        if self.days < 1 or self.renew_before_days < 0 or self.renew_before_days >= self.days:
            raise ParameterError(
                f"days ({self.days}) must be positive and renew_before_days "
                f"({self.renew_before_days}) between 0 and days"
            )


def _eku_oids(usage):
    mapping = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH, "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH}
    return [mapping[u] for u in usage]


def _leaf_key_usage(public_key):
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _key_usage_tuple(ku):
    return (ku.digital_signature, ku.key_encipherment, ku.key_cert_sign, ku.crl_sign, ku.key_agreement)


def leaf_subject(sans):
    dns = [v for k, v in sans if k == "dns" and not v.startswith("*")]
    if dns:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0])])
    # No CN for IP-only certificates: OpenSSL would check a dotted CN against the DNS constraints.
    return x509.Name([])


def needs_reissue(current, public_key, request, ca_cert, *, now=None):
    """The one renewal decision: a reason (str) to issue a certificate again, or None.

    ``current`` is the host's certificate (``x509.Certificate`` or None), ``public_key`` the public
    key of the host's private key (from its CSR), ``request`` an ``IssueRequest`` and ``ca_cert``
    the current intermediate. Every reason that applies is reported, separated by "; ".
    """
    if current is None:
        return "no certificate yet"
    now = now or utcnow()
    reasons = []
    if public_key_der(current.public_key()) != public_key_der(public_key):
        reasons.append("certificate does not match the host's private key")
    if (
        current.issuer != ca_cert.subject
        or _aki(current) != _ski(ca_cert)
        or not verify_issued_by(current, ca_cert)
    ):
        reasons.append(
            f"issuing CA changed: certificate issued by {current.issuer.rfc4514_string()}, "
            f"current intermediate is {ca_cert.subject.rfc4514_string()}"
        )
    have = set(sans_of(current))
    want = set(request.sans)
    if have != want:
        delta = ["+" + format_san(s) for s in sorted(want - have)] + [
            "-" + format_san(s) for s in sorted(have - want)
        ]
        reasons.append("SAN set differs: {}".format(", ".join(delta)))
    eku = _extension(current, x509.ExtendedKeyUsage)
    have_usage = _usage_names(eku.value) if eku is not None else []
    if have_usage != list(request.usage):
        reasons.append(
            "extended key usage differs: have {}, want {}".format(
                ",".join(have_usage) or "none", ",".join(request.usage)
            )
        )
    ku = _extension(current, x509.KeyUsage)
    if ku is None or _key_usage_tuple(ku.value) != _key_usage_tuple(_leaf_key_usage(public_key)):
        reasons.append("key usage differs")
    basic = _extension(current, x509.BasicConstraints)
    if basic is None or basic.value.ca:
        reasons.append("basic constraints differ (must be CA:FALSE)")
    left = cert_not_after(current) - now
    # A new certificate cannot outlive the intermediate; when the current one already ends with
    # it, reissuing gains nothing and would repeat on every run (sign_csr warns instead).
    longest = min(now + datetime.timedelta(days=request.days), cert_not_after(ca_cert))
    if left.total_seconds() <= 0:
        reasons.append(f"certificate expired {(-left).days} days ago")
    elif left < datetime.timedelta(days=request.renew_before_days) and longest - cert_not_after(
        current
    ) > datetime.timedelta(days=1):
        reasons.append(f"certificate expires in {left.days} days (threshold {request.renew_before_days})")
    return "; ".join(reasons) or None


def build_leaf(public_key, request, ca_cert, ca_key, *, now=None):
    """Sign a leaf certificate. Callers check names first (``sign_csr`` does)."""
    now = now or utcnow()
    not_after = min(now + datetime.timedelta(days=request.days), cert_not_after(ca_cert))
    subject = leaf_subject(request.sans)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(public_key), critical=True)
        .add_extension(x509.ExtendedKeyUsage(_eku_oids(request.usage)), critical=False)
        # RFC 5280 4.2.1.6: with an empty subject (IP-only certificates) the SAN must be critical.
        .add_extension(x509.SubjectAlternativeName(_san_general_names(request.sans)), critical=not subject)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier(
                key_identifier=_ski(ca_cert), authority_cert_issuer=None, authority_cert_serial_number=None
            ),
            critical=False,
        )
    )
    return builder.sign(ca_key, _signature_hash(ca_key))


class SignResult:
    def __init__(self, changed, reason, cert, before, after, *, chain=(), warnings=()):
        self.changed = changed
        self.reason = reason
        self.cert = cert
        self.chain = list(chain)
        self.before = before
        self.after = after
        self.warnings = list(warnings)


def _ca_lifetime_warnings(ca_cert, renew_before_days, now):
    """Refuse to sign under an expired intermediate; warn when it ends within the renewal window."""
    left = cert_not_after(ca_cert) - now
    name = ca_cert.subject.rfc4514_string()
    if left.total_seconds() <= 0:
        raise CaStateError(
            f"intermediate {name} has expired; raise intermediate_generation in island_ca to rotate it"
        )
    if left < datetime.timedelta(days=renew_before_days):
        return [
            f"intermediate {name} expires in {left.days} days, so the certificates it issues expire "
            "with it; raise intermediate_generation in island_ca to rotate it (docs/pki.md)"
        ]
    return []


def _current_chain(current_pem):
    """The host's file as [leaf, intermediates...]; [] if there is none; None if it is unreadable."""
    if not current_pem or not current_pem.strip():
        return []
    try:
        certs = load_certificates(current_pem, "current certificate")
    except CaStateError:
        # A damaged certificate on the host is a reason to issue a new one, not a failure.
        return None
    return certs or None


def sign_csr(
    csr_pem,
    ca_pair,
    *,
    sans=(),
    current_pem=None,
    usage=("server_auth",),
    days=365,
    renew_before_days=30,
    check_mode=False,
    now=None,
    what="CSR",
):
    """Issue (or keep) the host's certificate.

    ``sans`` are the names to certify (``DNS:``/``IP:`` strings); when empty, the CSR's own SANs are
    used. Every name is checked against the intermediate's name constraints before anything else,
    then ``needs_reissue`` decides. In check mode nothing is signed: ``cert`` is the current
    certificate and ``after`` predicts the new one.
    """
    now = now or utcnow()
    csr = load_csr(csr_pem, what)
    names = parse_sans(sans) if sans else sans_of(csr)
    if not names:
        raise CsrError(f"{what} has no subject alternative names and none were given to sign")
    if any(kind not in ("dns", "ip") for kind, _ in names):
        raise CsrError(f"{what} asks for SAN types other than DNS and IP; the island CA signs only those")
    NameConstraints.from_certificate(ca_pair.cert).check(names, what)
    request = IssueRequest(names, usage=usage, days=days, renew_before_days=renew_before_days)
    warnings = _ca_lifetime_warnings(ca_pair.cert, request.renew_before_days, now)
    current_chain = _current_chain(current_pem)
    current = current_chain[0] if current_chain else None
    if current_chain is None:
        reason = "current certificate is not readable PEM"
    else:
        reason = needs_reissue(current, csr.public_key(), request, ca_pair.cert, now=now)
    before = describe_certificate(current)
    if reason is None:
        return SignResult(False, None, current, before, before, chain=[ca_pair.cert], warnings=warnings)
    if check_mode:
        not_after = min(now + datetime.timedelta(days=request.days), cert_not_after(ca_pair.cert))
        after = {
            "subject": leaf_subject(names).rfc4514_string(),
            "issuer": ca_pair.cert.subject.rfc4514_string(),
            "subject_alt_names": [format_san(s) for s in names],
            "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "usage": list(request.usage),
        }
        # Nothing is signed: hand back the host's certificate with the chain it already has, so
        # installing the result predicts no second change.
        chain = current_chain[1:] if current_chain else []
        return SignResult(True, reason, current, before, after, chain=chain, warnings=warnings)
    cert = build_leaf(csr.public_key(), request, ca_pair.cert, ca_pair.key, now=now)
    after = describe_certificate(cert)
    return SignResult(True, reason, cert, before, after, chain=[ca_pair.cert], warnings=warnings)


# --------------------------------------------------------------------------------------------------
# Host: key and CSR


class CsrResult:
    def __init__(self, csr_pem, key_created, reason, attribute_changes_):
        self.csr_pem = csr_pem
        self.key_created = key_created
        self.reason = reason
        self.attribute_changes = attribute_changes_
        self.changed = key_created or bool(attribute_changes_)


def load_host_key(path):
    data = read_file(path, "private key")
    if data is None:
        return None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(
            f"private key {path} is encrypted; island service keys are stored unencrypted (0600, "
            "owned by the service user). Remove the file to let island_csr make a new key"
        ) from None
    except ValueError:
        raise KeyFileError(
            f"private key {path} is not a valid PEM private key; remove the file to let island_csr "
            "make a new key (the certificate is then reissued)"
        ) from None


def build_csr(key, sans):
    builder = x509.CertificateSigningRequestBuilder().subject_name(leaf_subject(sans))
    builder = builder.add_extension(x509.SubjectAlternativeName(_san_general_names(sans)), critical=False)
    return builder.sign(key, _signature_hash(key))


def ensure_key_and_csr(
    path, sans, *, key_type=DEFAULT_KEY_TYPE, mode=0o600, uid=None, gid=None, check_mode=False
):
    """On the host: keep (or make) the private key at ``path`` and return a fresh CSR for ``sans``.

    The key is made when missing or of another key type than asked; an unusable key file is an
    error, never silently replaced. The key itself is never returned. In check mode with no key
    yet, the CSR comes from a throw-away key so the controller can still predict the change.
    """
    sans = parse_sans(sans)
    if key_type not in KEY_TYPES:
        raise ParameterError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise KeyFileError(f"directory {directory} for private key {path} does not exist; create it first")
    key = load_host_key(path)
    reason = None
    if key is None:
        reason = "no private key yet"
    elif key_type_of(key) != key_type:
        reason = f"key type differs: have {key_type_of(key)}, want {key_type}"
    changes = {}
    if reason is not None:
        key = generate_private_key(key_type)
        if not check_mode:
            atomic_write(path, plain_key_pem(key), mode, uid, gid)
    else:
        changes = attribute_changes(path, mode, uid, gid)
        if changes and not check_mode:
            fix_attributes(path, mode, uid, gid)
    csr_pem = build_csr(key, sans).public_bytes(serialization.Encoding.PEM).decode("ascii")
    return CsrResult(csr_pem, reason is not None, reason, changes)


# --------------------------------------------------------------------------------------------------
# Host: install the certificate with its chain


class InstallResult:
    def __init__(self, changed, reason, before, after, attribute_changes_):
        self.changed = changed
        self.reason = reason
        self.before = before
        self.after = after
        self.attribute_changes = attribute_changes_


def _checked_chain(certificate, chain, key_path):
    """[leaf, intermediates...] after checking that each is issued by the next and fits the key."""
    bad_input = {"error": CertificateFileError, "hint": "pass the PEM that island_cert_sign returned"}
    certs = load_certificates(certificate, "certificate to install", **bad_input)
    if len(certs) != 1:
        raise CertificateFileError(f"certificate must hold exactly one PEM certificate, found {len(certs)}")
    sequence = list(certs)
    for i, item in enumerate(chain or []):
        sequence += load_certificates(item, f"chain entry {i + 1}", **bad_input)
    for i in range(len(sequence) - 1):
        child, parent = sequence[i], sequence[i + 1]
        if not verify_issued_by(child, parent):
            raise CertificateFileError(
                f"chain is out of order: {child.subject.rfc4514_string()} was not issued by "
                f"{parent.subject.rfc4514_string()}; pass the issuing intermediate as chain"
            )
    if key_path is not None:
        key = load_host_key(key_path)
        if key is None:
            raise CertificateFileError(f"private key {key_path} does not exist; run island_csr first")
        if public_key_der(key) != public_key_der(sequence[0].public_key()):
            names = ", ".join(format_san(s) for s in sans_of(sequence[0]))
            raise CertificateFileError(
                f"certificate for {names} does not match private key {key_path} (was the key replaced "
                "after the CSR was made?); rerun island_csr and sign again"
            )
    return sequence


def _describe_file(current, path):
    if current is None:
        return {}
    try:
        existing = load_certificates(current, path)
    except CaStateError:
        existing = []
    return describe_certificate(existing[0]) if existing else {"content": "not a PEM certificate"}


def ensure_certificate_file(
    path, certificate, *, chain=(), key_path=None, mode=0o644, uid=None, gid=None, check_mode=False
):
    """Install ``certificate`` followed by ``chain`` (intermediates, not the root) at ``path``.

    The file is replaced atomically and only when its content differs. When ``key_path`` is given
    the certificate must match that private key, and every certificate must be issued by the next
    one in the chain, so a mixed-up certificate is refused before it can break a service.
    """
    sequence = _checked_chain(certificate, chain, key_path)
    content = "".join(cert_pem(c) for c in sequence).encode("ascii")
    try:
        current = read_file(path, "certificate file")
    except CaStateError as exc:
        raise CertificateFileError(str(exc)) from None
    before = _describe_file(current, path)
    after = describe_certificate(sequence[0])
    if current == content:
        changes = attribute_changes(path, mode, uid, gid)
        if changes and not check_mode:
            fix_attributes(path, mode, uid, gid)
        return InstallResult(bool(changes), None, before, after, changes)
    reason = "no certificate file yet" if current is None else "certificate content differs"
    if not check_mode:
        atomic_write(path, content, mode, uid, gid)
    return InstallResult(True, reason, before, after, {})


def run_module(module, run):
    """The one place the PKI modules turn a missing library or a PkiError into fail_json.

    `run(module)` does the module's work and returns its result dict.
    """
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(
            msg=missing_required_lib("cryptography >= 3.4"),
            exception="".join(
                traceback.format_exception_only(type(CRYPTOGRAPHY_IMPORT_ERROR), CRYPTOGRAPHY_IMPORT_ERROR)
            ),
        )
    try:
        result = run(module)
    except PkiError as exc:
        module.fail_json(msg=str(exc), error=type(exc).__name__)
    module.exit_json(**result)
