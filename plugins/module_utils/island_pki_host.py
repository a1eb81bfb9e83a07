"""Island PKI, host side: the private key, the CSR and installing the certificate.

Note that this module util is PRIVATE to this repository; it can change at any time.

``ensure_key_and_csr()`` makes the private key (0600, owned by the service user) and a CSR;
``ensure_certificate_file()`` installs the certificate with its chain atomically. Shipped to every
host by ``island_csr`` and ``island_cert`` with ``island_pki``, ``island_io`` and ``island_module``
only (tests check the import closure), so it runs on the hosts' system Python (3.9+) and
cryptography (3.4+).
"""

from __future__ import annotations

import os

from ansible_collections.island.installer.plugins.module_utils import island_pki as pki
from ansible_collections.island.installer.plugins.module_utils.island_io import atomic_write
from ansible_collections.island.installer.plugins.module_utils.island_pki import serialization, x509

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
    data = pki.read_file(path, "private key")
    if data is None:
        return None
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise pki.KeyFileError(
            f"private key {path} is encrypted; island service keys are stored unencrypted (0600, "
            "owned by the service user). Remove the file to let island_csr make a new key"
        ) from None
    except ValueError:
        raise pki.KeyFileError(
            f"private key {path} is not a valid PEM private key; remove the file to let island_csr "
            "make a new key (the certificate is then reissued)"
        ) from None


def build_csr(key, sans):
    builder = x509.CertificateSigningRequestBuilder().subject_name(pki.leaf_subject(sans))
    builder = builder.add_extension(x509.SubjectAlternativeName(pki.san_general_names(sans)), critical=False)
    return builder.sign(key, pki.signature_hash(key))


def ensure_key_and_csr(
    path, sans, *, key_type=pki.DEFAULT_KEY_TYPE, mode=0o600, uid=None, gid=None, check_mode=False
):
    """On the host: keep (or make) the private key at ``path`` and return a fresh CSR for ``sans``.

    The key is made when missing or of another key type than asked; an unusable key file is an
    error, never silently replaced. The key itself is never returned. In check mode with no key
    yet, the CSR comes from a throw-away key so the controller can still predict the change.
    """
    sans = pki.parse_sans(sans)
    if key_type not in pki.KEY_TYPES:
        raise pki.ParameterError(f"unknown key type {key_type!r}; choose one of {', '.join(pki.KEY_TYPES)}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise pki.KeyFileError(
            f"directory {directory} for private key {path} does not exist; create it first"
        )
    key = load_host_key(path)
    reason = None
    if key is None:
        reason = "no private key yet"
    elif pki.key_type_of(key) != key_type:
        reason = f"key type differs: have {pki.key_type_of(key)}, want {key_type}"
    changes = {}
    if reason is not None:
        key = pki.generate_private_key(key_type)
        if not check_mode:
            atomic_write(path, pki.plain_key_pem(key), mode, uid, gid)
    else:
        changes = pki.attribute_changes(path, mode, uid, gid)
        if changes and not check_mode:
            pki.fix_attributes(path, mode, uid, gid)
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
    bad_input = {"error": pki.CertificateFileError, "hint": "pass the PEM that island_cert_sign returned"}
    certs = pki.load_certificates(certificate, "certificate to install", **bad_input)
    if len(certs) != 1:
        raise pki.CertificateFileError(
            f"certificate must hold exactly one PEM certificate, found {len(certs)}"
        )
    sequence = list(certs)
    for i, item in enumerate(chain or []):
        sequence += pki.load_certificates(item, f"chain entry {i + 1}", **bad_input)
    for i in range(len(sequence) - 1):
        child, parent = sequence[i], sequence[i + 1]
        if not pki.verify_issued_by(child, parent):
            raise pki.CertificateFileError(
                f"chain is out of order: {child.subject.rfc4514_string()} was not issued by "
                f"{parent.subject.rfc4514_string()}; pass the issuing intermediate as chain"
            )
    if key_path is not None:
        key = load_host_key(key_path)
        if key is None:
            raise pki.CertificateFileError(f"private key {key_path} does not exist; run island_csr first")
        if pki.public_key_der(key) != pki.public_key_der(sequence[0].public_key()):
            names = ", ".join(pki.format_san(s) for s in pki.sans_of(sequence[0]))
            raise pki.CertificateFileError(
                f"certificate for {names} does not match private key {key_path} (was the key replaced "
                "after the CSR was made?); rerun island_csr and sign again"
            )
    return sequence


def _describe_file(current, path):
    if current is None:
        return {}
    try:
        existing = pki.load_certificates(current, path)
    except pki.CaStateError:
        existing = []
    return pki.describe_certificate(existing[0]) if existing else {"content": "not a PEM certificate"}


def ensure_certificate_file(
    path, certificate, *, chain=(), key_path=None, mode=0o644, uid=None, gid=None, check_mode=False
):
    """Install ``certificate`` followed by ``chain`` (intermediates, not the root) at ``path``.

    The file is replaced atomically and only when its content differs. When ``key_path`` is given
    the certificate must match that private key, and every certificate must be issued by the next
    one in the chain, so a mixed-up certificate is refused before it can break a service.
    """
    sequence = _checked_chain(certificate, chain, key_path)
    content = "".join(pki.cert_pem(c) for c in sequence).encode("ascii")
    try:
        current = pki.read_file(path, "certificate file")
    except pki.CaStateError as exc:
        raise pki.CertificateFileError(str(exc)) from None
    before = _describe_file(current, path)
    after = pki.describe_certificate(sequence[0])
    if current == content:
        changes = pki.attribute_changes(path, mode, uid, gid)
        if changes and not check_mode:
            pki.fix_attributes(path, mode, uid, gid)
        return InstallResult(bool(changes), None, before, after, changes)
    reason = "no certificate file yet" if current is None else "certificate content differs"
    if not check_mode:
        atomic_write(path, content, mode, uid, gid)
    return InstallResult(True, reason, before, after, {})
