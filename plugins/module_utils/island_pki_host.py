"""Island PKI, host side: the private key, the CSR and installing the certificate.

Note that this module util is PRIVATE to this repository; it can change at any time.

``ensure_key_and_csr()`` makes the private key (0600, owned by the service user) and a CSR;
``ensure_certificate_file()`` installs the certificate with its chain atomically. Shipped to every
host by ``island_csr`` and ``island_cert`` with ``island_pki``, ``island_io`` and ``island_module``
only (tests check the import closure), so it runs on the hosts' system Python (3.9+) and
cryptography (3.4+).
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.island.installer.plugins.module_utils import island_pki as pki
from ansible_collections.island.installer.plugins.module_utils.island_io import atomic_write
from ansible_collections.island.installer.plugins.module_utils.island_pki import serialization, x509


# Each host records the island certificates installed on it, one small file per certificate holding
# its path (in island_model.CERT_RECORD_DIR), so island-metrics watches every certificate the island
# issued on the host, whichever role issued it, not only those the model names (issue 17).
def certificate_record(record_dir, certificate_path):
    """The record file and its content for ``certificate_path``: named after the certificate's file
    name and a digest of its whole path (two services may both have a ``tls.crt``)."""
    digest = hashlib.sha256(certificate_path.encode("utf-8")).hexdigest()[:12]
    name = f"{os.path.basename(certificate_path)}.{digest}"
    return os.path.join(record_dir, name), certificate_path + "\n"


def ensure_certificate_record(record_dir, certificate_path, check_mode=False):
    """The record of ``certificate_path`` in ``record_dir`` (made 0755), written once the certificate
    is there (so island-metrics, started by the record's appearance, finds it in place); returns the
    record's path when it was (or, in check mode, would be) written, else None."""
    if not os.path.isfile(certificate_path):
        return None
    dest, content = certificate_record(record_dir, certificate_path)
    try:
        with open(dest, encoding="utf-8") as handle:
            if handle.read() == content:
                return None
    except (FileNotFoundError, NotADirectoryError, UnicodeDecodeError):
        pass
    if not check_mode:
        os.makedirs(record_dir, mode=0o755, exist_ok=True)
        atomic_write(dest, content.encode("utf-8"), mode=0o644)
    return dest


# --------------------------------------------------------------------------------------------------
# Host: key and CSR


class CsrResult:
    def __init__(self, csr_pem, key_created, reason, attribute_changes_, pending=None):
        self.csr_pem = csr_pem
        self.key_created = key_created
        self.reason = reason
        self.attribute_changes = attribute_changes_
        # "created", "kept" or "removed": the next key of a rotation (``pending_key_path``).
        self.pending = pending
        self.changed = key_created or bool(attribute_changes_) or pending in ("created", "removed")


def pending_key_path(path):
    """Where a rotation keeps the host's next key until its certificate is installed with it."""
    return path + ".next"


def rotation_due(certificate_path, key, renew_before_days, now=None):
    """A reason to rotate the key with the renewal, or None: the certificate at
    ``certificate_path`` belongs to ``key`` and expires within ``renew_before_days`` (the
    expiry rule of island_cert_sign's renewal decision)."""
    if key is None or not certificate_path:
        return None
    data = pki.read_file(certificate_path, "certificate file")
    if data is None:
        return None
    try:
        cert = pki.load_certificates(data, certificate_path)[0]
    except (pki.PkiError, IndexError):
        return None
    if pki.public_key_der(cert.public_key()) != pki.public_key_der(key.public_key()):
        return None
    left = pki.cert_not_after(cert) - (now or pki.utcnow())
    if left.days >= renew_before_days:
        return None
    when = f"expired {-left.days} days ago" if left.total_seconds() <= 0 else f"expires in {left.days} days"
    return f"key rotated with the renewal: certificate {when} (threshold {renew_before_days})"


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
    path,
    sans,
    *,
    key_type=pki.DEFAULT_KEY_TYPE,
    mode=0o600,
    uid=None,
    gid=None,
    check_mode=False,
    rotate_certificate_path=None,
    renew_before_days=30,
    now=None,
):
    """On the host: keep (or make) the private key at ``path`` and return a fresh CSR for ``sans``.

    The key is made when missing or of another key type than asked; an unusable key file is an
    error, never silently replaced. The key itself is never returned. In check mode with no key
    yet, the CSR comes from a throw-away key so the controller can still predict the change.

    With ``rotate_certificate_path`` (the certificate of this key), a key whose certificate is
    due for renewal is rotated: a new key is made beside it (``pending_key_path``, same mode and
    owner) and the CSR comes from it. The service keeps its current key until
    ``ensure_certificate_file`` installs the new certificate, which moves the new key into place
    first; until then a rerun keeps the same next key. Without rotation, a leftover next key is
    removed.
    """
    result = _ensure_key_and_csr(
        path, sans, key_type=key_type, mode=mode, uid=uid, gid=gid, check_mode=check_mode
    )
    pending_path = pending_key_path(path)
    due = None
    if rotate_certificate_path and not result.key_created:
        due = rotation_due(rotate_certificate_path, load_host_key(path), renew_before_days, now)
    if due is None:
        if os.path.lexists(pending_path):
            if not check_mode:
                os.unlink(pending_path)
            result.pending = "removed"
            result.changed = True
        return result
    pending = load_host_key(pending_path)
    state = "kept"
    if pending is None or pki.key_type_of(pending) != key_type:
        pending = pki.generate_private_key(key_type)
        state = "created"
        if not check_mode:
            atomic_write(pending_path, pki.plain_key_pem(pending), mode, uid, gid)
    csr_pem = (
        build_csr(pending, pki.parse_sans(sans)).public_bytes(serialization.Encoding.PEM).decode("ascii")
    )
    return CsrResult(csr_pem, False, due, result.attribute_changes, pending=state)


def _ensure_key_and_csr(path, sans, *, key_type, mode, uid, gid, check_mode):
    sans = pki.parse_sans(sans)
    if key_type not in pki.KEY_TYPES:
        raise pki.ParameterError(f"unknown key type {key_type!r}; choose one of {', '.join(pki.KEY_TYPES)}")
    directory = os.path.dirname(os.path.abspath(path))
    # In check mode the directory may be one the same call would create (island_csr's directory).
    if not os.path.isdir(directory) and not (check_mode and not os.path.lexists(directory)):
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
    return sequence


def _key_to_promote(sequence, key_path):
    """None when the certificate matches the key at ``key_path``; the next key's path when it
    matches the key a rotation made (island_csr); else an error."""
    if key_path is None:
        return None
    key = load_host_key(key_path)
    if key is None:
        raise pki.CertificateFileError(f"private key {key_path} does not exist; run island_csr first")
    wanted = pki.public_key_der(sequence[0].public_key())
    if pki.public_key_der(key) == wanted:
        return None
    pending = load_host_key(pending_key_path(key_path))
    if pending is not None and pki.public_key_der(pending) == wanted:
        return pending_key_path(key_path)
    names = ", ".join(pki.format_san(s) for s in pki.sans_of(sequence[0]))
    raise pki.CertificateFileError(
        f"certificate for {names} does not match private key {key_path} (was the key replaced "
        "after the CSR was made?); rerun island_csr and sign again"
    )


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
    promote = _key_to_promote(sequence, key_path)
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
    if promote is not None:
        reason += f"; the rotated key {promote} replaces {key_path}"
    if not check_mode:
        if promote is not None:
            # Key first, as the CA does: the new certificate is never on disk without its key.
            os.replace(promote, key_path)
        atomic_write(path, content, mode, uid, gid)
    return InstallResult(True, reason, before, after, {})
