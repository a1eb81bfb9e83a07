"""Island PKI, controller side: the island certificate authority.

Note that this module util is PRIVATE to this repository; it can change at any time.

``ensure_ca()`` keeps a root and an intermediate CA in a directory (keys encrypted at rest,
name-constrained to the island's domains and addresses: ``NameConstraints``); ``load_signing_ca()``
loads the intermediate for ``island_pki_sign``. Runs on the controller only; hosts never receive it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re

from ansible_collections.island.installer.plugins.module_utils import island_pki as pki
from ansible_collections.island.installer.plugins.module_utils import island_pki_keyenc as keyenc
from ansible_collections.island.installer.plugins.module_utils.island_io import atomic_write
from ansible_collections.island.installer.plugins.module_utils.island_pki import NameOID, serialization, x509


class NameConstraints:
    """Permitted DNS domains and IP networks of the island, as the CA certificates carry them.

    With no IP range given, every IP address is *excluded* (0.0.0.0/0 and ::/0): a CA without any
    iPAddress subtree would otherwise be unconstrained for IP addresses.
    """

    def __init__(self, domains, ip_ranges=(), excluded_ip_ranges=None):
        self.domains = tuple(sorted({pki.normalise_dns(d, "island domain") for d in domains or []}))
        if not self.domains:
            raise pki.ParameterError("at least one island domain is needed for the CA's name constraints")
        if any(d.startswith("*") for d in self.domains):
            raise pki.ParameterError("island domains are DNS suffixes such as island.internal, not wildcards")
        try:
            nets = {ipaddress.ip_network(str(r).strip(), strict=True) for r in ip_ranges or []}
        except ValueError as exc:
            raise pki.ParameterError(f"island IP range is not a network in CIDR form: {exc}") from None
        self.ip_ranges = tuple(sorted(nets, key=lambda n: (n.version, n.network_address, n.prefixlen)))
        if excluded_ip_ranges is None:
            excluded = () if self.ip_ranges else ("0.0.0.0/0", "::/0")
            excluded_ip_ranges = [ipaddress.ip_network(n) for n in excluded]
        self.excluded_ip_ranges = tuple(excluded_ip_ranges)

    @classmethod
    def from_certificate(cls, cert):
        ext = pki.get_extension(cert, x509.NameConstraints)
        if ext is None:
            return None
        permitted = ext.value.permitted_subtrees or []
        excluded = ext.value.excluded_subtrees or []
        domains = [n.value for n in permitted if isinstance(n, x509.DNSName)]
        ips = [str(n.value) for n in permitted if isinstance(n, x509.IPAddress)]
        excluded_ips = [n.value for n in excluded if isinstance(n, x509.IPAddress)]
        if len(excluded_ips) != len(excluded) or len(domains) + len(ips) != len(permitted) or not domains:
            raise pki.CaStateError(
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
        """Raise ``pki.NameConstraintError`` naming every SAN of ``what`` that the constraints refuse."""
        refused = [pki.format_san(s) for s in sans if not self.permits(s)]
        if refused:
            raise pki.NameConstraintError(
                "{} asks for {}, outside the island CA's name constraints ({}); the CA refuses to "
                "sign it. Use names under the island domains or add the domain/range to the CA "
                "(a new root generation, see docs/pki.md)".format(what, ", ".join(refused), self.describe())
            )


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
        key_type=pki.DEFAULT_KEY_TYPE,
        root_days=3650,
        intermediate_days=1095,
        root_generation=1,
        intermediate_generation=1,
        next_root_generation=None,
        retired_root_generations=(),
        warning_days=90,
    ):
        if not passphrase:
            raise pki.ParameterError("the CA passphrase must not be empty")
        if key_type not in pki.KEY_TYPES:
            raise pki.ParameterError(
                f"unknown key type {key_type!r}; choose one of {', '.join(pki.KEY_TYPES)}"
            )
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
            raise pki.ParameterError("root_generation and intermediate_generation start at 1")
        if self.root_days < 2 or self.intermediate_days < 1:
            raise pki.ParameterError("root_days and intermediate_days must be positive")
        if self.root_generation in self.retired:
            raise pki.ParameterError(
                f"root generation {self.root_generation} is the active root and cannot be retired; "
                "switch root_generation to the new root first (docs/pki.md)"
            )
        if self.next_root_generation is not None:
            if self.next_root_generation == self.root_generation:
                raise pki.ParameterError("next_root_generation must differ from root_generation")
            if self.next_root_generation in self.retired:
                raise pki.ParameterError(
                    f"next_root_generation {self.next_root_generation} is listed as retired"
                )

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
    return pki.key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True)


def build_ca_certificate(subject, key, *, issuer, days, pathlen, constraints, now):
    """A CA certificate for ``key``; ``issuer`` is a ``CaPair`` or None for a self-signed root."""
    not_after = now + datetime.timedelta(days=days)
    if issuer is not None:
        not_after = min(not_after, pki.cert_not_after(issuer.cert))
        aki = x509.AuthorityKeyIdentifier(
            key_identifier=pki.ski_of(issuer.cert),
            authority_cert_issuer=None,
            authority_cert_serial_number=None,
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
        .not_valid_before(now - pki.BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=pathlen), critical=True)
        .add_extension(_ca_key_usage(), critical=True)
        .add_extension(constraints.extension(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(aki, critical=False)
    )
    return builder.sign(signer, pki.signature_hash(signer))


class CaPair:
    """A CA certificate with its (decrypted, in memory only) key and the files they live in.

    ``key`` may be given as ``key_loader``, a function that decrypts it when it is first used: a
    signing call that finds the host's certificate still good never needs it, and decrypting the
    passphrase-protected key is most of such a call's work.
    """

    def __init__(self, cert, key, cert_path, key_path, *, created=False, protection=None, key_loader=None):
        self.cert = cert
        self._key = key
        self._key_loader = key_loader
        self.cert_path = cert_path
        self.key_path = key_path
        self.created = created
        # How the key on disk is encrypted (island_pki_keyenc.Protection); None for a new pair.
        self.protection = protection

    @property
    def key(self):
        if self._key is None and self._key_loader is not None:
            self._key = self._key_loader()
            self._key_loader = None
        return self._key

    @key.setter
    def key(self, value):
        self._key = value
        self._key_loader = None

    def write(self, passphrase):
        # Key first: a certificate on disk always has its key beside it.
        self.write_key(passphrase)
        atomic_write(self.cert_path, self.cert.public_bytes(serialization.Encoding.PEM), 0o644)

    def write_key(self, passphrase):
        atomic_write(self.key_path, keyenc.encrypted_key_pem(self.key, passphrase), 0o600)


def _load_pair(cert_path, key_path, passphrase, what, *, lazy_key=False):
    """Existing CA pair, None if neither file exists; a half-present pair is an error. With
    ``lazy_key`` the key is decrypted (and checked against the certificate) when first used."""
    cert_data = pki.read_file(cert_path, what + " certificate")
    key_data = pki.read_file(key_path, what + " key")
    if cert_data is None and key_data is None:
        return None
    if cert_data is None or key_data is None:
        missing, present = (cert_path, key_path) if cert_data is None else (key_path, cert_path)
        raise pki.CaStateError(
            f"{what} is incomplete: {present} exists but {missing} is missing. Restore the missing "
            "file from a backup; the installer never replaces one half of a CA"
        )
    cert = pki.load_certificate(cert_data, f"{what} certificate {cert_path}")

    def load_key():
        key = pki.load_encrypted_key(key_data, passphrase, key_path)
        if pki.public_key_der(key) != pki.public_key_der(cert.public_key()):
            raise pki.CaStateError(
                f"{what} key {key_path} does not match certificate {cert_path}; "
                "restore the matching pair from a backup"
            )
        return key

    protection = keyenc.key_protection(key_data)
    if lazy_key:
        return CaPair(cert, None, cert_path, key_path, protection=protection, key_loader=load_key)
    return CaPair(cert, load_key(), cert_path, key_path, protection=protection)


def _check_ca_dir(path):
    """True if the directory exists; a non-directory or unreadable directory is an error."""
    if os.path.lexists(path) and not os.path.isdir(path):
        raise pki.CaStateError(
            f"CA directory {path} is not a directory; move the file away or choose another island_pki_dir"
        )
    if not os.path.isdir(path):
        return False
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise pki.CaStateError(f"CA directory {path} is not readable and writable by this user")
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
    days = (pki.cert_not_after(cert) - now).days
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


def _new_pair(spec, subject, *, issuer, days, pathlen, paths, now):
    """A new CA key and certificate (``issuer`` None: self-signed root), in memory only."""
    key = pki.generate_private_key(spec.key_type)
    cert = build_ca_certificate(
        subject, key, issuer=issuer, days=days, pathlen=pathlen, constraints=spec.constraints, now=now
    )
    return CaPair(cert, key, *paths, created=True)


def _plan_root(spec, generation, now):
    """The existing root of ``generation`` (checked) or a new one, made in memory only."""
    cert_path, key_path = spec.root_paths(generation)
    pair = _load_pair(cert_path, key_path, spec.passphrase, f"root CA R{generation}")
    if pair is None:
        subject = spec.root_subject(generation)
        return _new_pair(
            spec, subject, issuer=None, days=spec.root_days, pathlen=1, paths=(cert_path, key_path), now=now
        )
    have = NameConstraints.from_certificate(pair.cert)
    if have != spec.constraints:
        raise pki.CaStateError(
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
        subject = spec.intermediate_subject()
        return _new_pair(
            spec,
            subject,
            issuer=root,
            days=spec.intermediate_days,
            pathlen=0,
            paths=(cert_path, key_path),
            now=now,
        )
    if not pki.verify_issued_by(pair.cert, root.cert):
        raise pki.CaStateError(
            f"{what} ({cert_path}) was not issued by root CA R{spec.root_generation} ({root.cert_path}); "
            "restore the matching files or raise intermediate_generation to issue a new intermediate"
        )
    have = NameConstraints.from_certificate(pair.cert)
    if have != spec.constraints:
        raise pki.CaStateError(
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
            certs.append(
                pki.load_certificate(pki.read_file(cert_path, "root certificate"), f"root CA {cert_path}")
            )
    return gens, certs


def _reencrypt_weak_keys(result, pairs, passphrase, check_mode):
    """A CA key under a weak encryption (an older installer's PBKDF2 at 2,048 iterations) is
    encrypted again under the current one, with the same passphrase; the key itself is unchanged,
    so every certificate stays valid."""
    for pair in pairs:
        if pair.created or pair.protection is None or not pair.protection.weak:
            continue
        result.change(
            f"re-encrypted CA key {pair.key_path}: was {pair.protection.describe()} "
            f"({pair.protection.reason}), now {keyenc.DESCRIPTION}",
            pair.key_path,
        )
        if not check_mode:
            pair.write_key(passphrase)


def _fix_key_modes(result, pairs, check_mode):
    """Drifted permissions on existing CA key files are fixed and reported, not tolerated."""
    for pair in pairs:
        mode_change = None if pair.created else pki.attribute_changes(pair.key_path, 0o600).get("mode")
        if mode_change:
            result.change(f"mode of {pair.key_path} {mode_change[0]} -> {mode_change[1]}")
            if not check_mode:
                pki.fix_attributes(pair.key_path, 0o600)


def ensure_ca(spec, check_mode=False, now=None):
    """Make sure the CA directory holds the roots and the intermediate ``spec`` asks for.

    Everything that exists is read and checked first; only then is anything missing created, so a
    failure (wrong passphrase, corrupt or half-present files, constraints that differ) leaves the
    directory exactly as it was. Nothing that exists is ever replaced. Returns a ``CaResult``.
    """
    now = now or pki.utcnow()
    result = CaResult()
    exists = _check_ca_dir(spec.path)
    dir_mode = pki.attribute_changes(spec.path, 0o700).get("mode") if exists else None
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
    result.trust_bundle = "".join(pki.cert_pem(c) for c in result.trusted_roots)
    result.trust_bundle_path = os.path.join(spec.path, "trust-bundle.pem")
    bundle_now = pki.read_file(result.trust_bundle_path, "trust bundle") if exists else None

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
    _reencrypt_weak_keys(result, [*planned.values(), intermediate], spec.passphrase, check_mode)
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
        threshold_days=pki.ROOT_WARNING_DAYS,
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
    # The key is decrypted only when a certificate is signed (CaPair.key_loader).
    pair = _load_pair(cert_path, key_path, passphrase, "signing CA", lazy_key=True)
    if pair is None and check_mode and predicted_pem:
        pair = CaPair(
            pki.load_certificate(predicted_pem, "predicted intermediate"), None, cert_path, key_path
        )
    if pair is None:
        raise pki.CaStateError(
            f"signing CA {cert_path} and {key_path} do not exist; run island_ca first and pass its "
            "intermediate_cert_path / intermediate_key_path"
        )
    basic = pki.get_extension(pair.cert, x509.BasicConstraints)
    if basic is None or not basic.value.ca:
        raise pki.CaStateError(f"{cert_path} is not a CA certificate")
    if NameConstraints.from_certificate(pair.cert) is None:
        raise pki.CaStateError(f"{cert_path} has no name constraints; island CAs must be name-constrained")
    return pair
