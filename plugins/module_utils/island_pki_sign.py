"""Island PKI, controller side: signing host CSRs, and the one renewal decision.

Note that this module util is PRIVATE to this repository; it can change at any time.

``sign_csr()`` signs a host's CSR with the intermediate after checking every name against the
intermediate's name constraints; ``needs_reissue()`` is the one place that decides whether a host's
certificate must be issued again. Runs on the controller only; hosts never receive it.
"""

from __future__ import annotations

import datetime

from ansible_collections.island.installer.plugins.module_utils import island_pki as pki
from ansible_collections.island.installer.plugins.module_utils.island_pki import (
    ExtendedKeyUsageOID,
    rsa,
    x509,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki_ca import (
    NameConstraints,
    load_signing_ca,
)

# --------------------------------------------------------------------------------------------------
# Controller: signing and the one renewal decision


class IssueRequest:
    """What the controller is asked to issue: the names, the usages and the lifetime."""

    def __init__(self, sans, *, usage=("server_auth",), days=365, renew_before_days=30):
        self.sans = tuple(sans)
        self.usage = tuple(sorted(set(usage)))
        unknown = [u for u in self.usage if u not in pki.USAGES]
        if unknown or not self.usage:
            raise pki.ParameterError(
                "usage must be one or more of {}, not {}".format(
                    ", ".join(pki.USAGES), ", ".join(unknown) or "nothing"
                )
            )
        self.days = int(days)
        self.renew_before_days = int(renew_before_days)
        if self.days < 1 or self.renew_before_days < 0 or self.renew_before_days >= self.days:
            raise pki.ParameterError(
                f"days ({self.days}) must be positive and renew_before_days "
                f"({self.renew_before_days}) between 0 and days"
            )


def _eku_oids(usage):
    mapping = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH, "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH}
    return [mapping[u] for u in usage]


def _leaf_key_usage(public_key):
    return pki.key_usage(digital_signature=True, key_encipherment=isinstance(public_key, rsa.RSAPublicKey))


def _key_usage_tuple(ku):
    return (ku.digital_signature, ku.key_encipherment, ku.key_cert_sign, ku.crl_sign, ku.key_agreement)


def needs_reissue(current, public_key, request, ca_cert, *, now=None):
    """The one renewal decision: a reason (str) to issue a certificate again, or None.

    ``current`` is the host's certificate (``x509.Certificate`` or None), ``public_key`` the public
    key of the host's private key (from its CSR), ``request`` an ``IssueRequest`` and ``ca_cert``
    the current intermediate. Every reason that applies is reported, separated by "; ".
    """
    if current is None:
        return "no certificate yet"
    now = now or pki.utcnow()
    reasons = []
    if pki.public_key_der(current.public_key()) != pki.public_key_der(public_key):
        reasons.append("certificate does not match the host's private key")
    if (
        current.issuer != ca_cert.subject
        or pki.aki_of(current) != pki.ski_of(ca_cert)
        or not pki.verify_issued_by(current, ca_cert)
    ):
        reasons.append(
            f"issuing CA changed: certificate issued by {current.issuer.rfc4514_string()}, "
            f"current intermediate is {ca_cert.subject.rfc4514_string()}"
        )
    have = set(pki.sans_of(current))
    want = set(request.sans)
    if have != want:
        delta = ["+" + pki.format_san(s) for s in sorted(want - have)] + [
            "-" + pki.format_san(s) for s in sorted(have - want)
        ]
        reasons.append("SAN set differs: {}".format(", ".join(delta)))
    eku = pki.get_extension(current, x509.ExtendedKeyUsage)
    have_usage = pki.usage_names(eku.value) if eku is not None else []
    if have_usage != list(request.usage):
        reasons.append(
            "extended key usage differs: have {}, want {}".format(
                ",".join(have_usage) or "none", ",".join(request.usage)
            )
        )
    ku = pki.get_extension(current, x509.KeyUsage)
    if ku is None or _key_usage_tuple(ku.value) != _key_usage_tuple(_leaf_key_usage(public_key)):
        reasons.append("key usage differs")
    basic = pki.get_extension(current, x509.BasicConstraints)
    if basic is None or basic.value.ca:
        reasons.append("basic constraints differ (must be CA:FALSE)")
    left = pki.cert_not_after(current) - now
    # A new certificate cannot outlive the intermediate; when the current one already ends with
    # it, reissuing gains nothing and would repeat on every run (sign_csr warns instead).
    longest = min(now + datetime.timedelta(days=request.days), pki.cert_not_after(ca_cert))
    if left.total_seconds() <= 0:
        reasons.append(f"certificate expired {(-left).days} days ago")
    elif left < datetime.timedelta(days=request.renew_before_days) and longest - pki.cert_not_after(
        current
    ) > datetime.timedelta(days=1):
        reasons.append(f"certificate expires in {left.days} days (threshold {request.renew_before_days})")
    return "; ".join(reasons) or None


def build_leaf(public_key, request, ca_cert, ca_key, *, now=None):
    """Sign a leaf certificate. Callers check names first (``sign_csr`` does)."""
    now = now or pki.utcnow()
    not_after = min(now + datetime.timedelta(days=request.days), pki.cert_not_after(ca_cert))
    subject = pki.leaf_subject(request.sans)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - pki.BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(public_key), critical=True)
        .add_extension(x509.ExtendedKeyUsage(_eku_oids(request.usage)), critical=False)
        # RFC 5280 4.2.1.6: with an empty subject (IP-only certificates) the SAN must be critical.
        .add_extension(x509.SubjectAlternativeName(pki.san_general_names(request.sans)), critical=not subject)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier(
                key_identifier=pki.ski_of(ca_cert),
                authority_cert_issuer=None,
                authority_cert_serial_number=None,
            ),
            critical=False,
        )
    )
    return builder.sign(ca_key, pki.signature_hash(ca_key))


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
    left = pki.cert_not_after(ca_cert) - now
    name = ca_cert.subject.rfc4514_string()
    if left.total_seconds() <= 0:
        raise pki.CaStateError(
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
        certs = pki.load_certificates(current_pem, "current certificate")
    except pki.CaStateError:
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
    now = now or pki.utcnow()
    csr = pki.load_csr(csr_pem, what)
    names = pki.parse_sans(sans) if sans else pki.sans_of(csr)
    if not names:
        raise pki.CsrError(f"{what} has no subject alternative names and none were given to sign")
    if any(kind not in ("dns", "ip") for kind, _ in names):
        raise pki.CsrError(f"{what} asks for SAN types other than DNS and IP; the island CA signs only those")
    NameConstraints.from_certificate(ca_pair.cert).check(names, what)
    request = IssueRequest(names, usage=usage, days=days, renew_before_days=renew_before_days)
    warnings = _ca_lifetime_warnings(ca_pair.cert, request.renew_before_days, now)
    current_chain = _current_chain(current_pem)
    current = current_chain[0] if current_chain else None
    if current_chain is None:
        reason = "current certificate is not readable PEM"
    else:
        reason = needs_reissue(current, csr.public_key(), request, ca_pair.cert, now=now)
    before = pki.describe_certificate(current)
    if reason is None:
        return SignResult(False, None, current, before, before, chain=[ca_pair.cert], warnings=warnings)
    if check_mode:
        not_after = min(now + datetime.timedelta(days=request.days), pki.cert_not_after(ca_pair.cert))
        after = {
            "subject": pki.leaf_subject(names).rfc4514_string(),
            "issuer": ca_pair.cert.subject.rfc4514_string(),
            "subject_alt_names": [pki.format_san(s) for s in names],
            "not_after": not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "usage": list(request.usage),
        }
        # Nothing is signed: hand back the host's certificate with the chain it already has, so
        # installing the result predicts no second change.
        chain = current_chain[1:] if current_chain else []
        return SignResult(True, reason, current, before, after, chain=chain, warnings=warnings)
    cert = build_leaf(csr.public_key(), request, ca_pair.cert, ca_pair.key, now=now)
    after = pki.describe_certificate(cert)
    return SignResult(True, reason, cert, before, after, chain=[ca_pair.cert], warnings=warnings)


def sign_for_host(
    csr,
    *,
    ca_cert_path,
    ca_key_path,
    ca_passphrase,
    ca_certificate=None,
    subject_alt_names=(),
    current_certificate="",
    usage=("server_auth",),
    days=365,
    renew_before_days=30,
    requester="CSR",
    check_mode=False,
):
    """The controller's part of issuing a host certificate, as module island_cert_sign and action
    island_cert_issue return it: the CA read (its key decrypted only if a certificate is signed),
    the current certificate judged, the CSR signed when due. Returns (result dict, warnings)."""
    ca = load_signing_ca(
        ca_cert_path, ca_key_path, ca_passphrase, check_mode=check_mode, predicted_pem=ca_certificate
    )
    result = sign_csr(
        csr,
        ca,
        sans=list(subject_alt_names),
        current_pem=current_certificate or "",
        usage=list(usage),
        days=days,
        renew_before_days=renew_before_days,
        check_mode=check_mode,
        what=f"CSR from {requester}" if requester != "CSR" else "CSR",
    )
    out = {
        "changed": result.changed,
        "reason": result.reason,
        "certificate": pki.cert_pem(result.cert) if result.cert is not None else "",
        "chain": [pki.cert_pem(c) for c in result.chain],
        "subject_alt_names": result.after.get("subject_alt_names", []),
        "diff": {"before": result.before, "after": result.after},
    }
    if result.after.get("not_after"):
        out["not_after"] = result.after["not_after"]
    if result.cert is not None:
        out["serial_number"] = f"{result.cert.serial_number:x}"
    return out, list(result.warnings)
