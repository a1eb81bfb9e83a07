"""Detached OpenSSH signatures (SSHSIG) and ``allowed_signers`` files, in pure Python.

The island's bundle lock carries a detached signature in the format of OpenSSH's
``PROTOCOL.sshsig``, so an operator can check it with the stock tool::

    ssh-keygen -Y verify -f allowed_signers -I <identity> -n island-bundle \\
        -s island-bundle.yml.sig < island-bundle.yml

This module signs and verifies that format with the ``cryptography`` library, so the controller
needs no ``ssh-keygen`` at run time. Only Ed25519 keys are supported (``ssh-ed25519``). The
``allowed_signers`` format and its matching rules follow ``ssh-keygen(1)`` section "ALLOWED
SIGNERS" and ``sshsig.c`` of OpenSSH 9.x: principals and namespaces are pattern lists (``*``,
``?``, ``!`` negation), ``valid-after``/``valid-before`` are checked against the time of
verification. ``cert-authority`` lines are refused: the island trusts plain signer keys.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import errno
import hashlib
import re
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from ansible_collections.island.installer.plugins.module_utils.island_io import read_regular
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_ssh_private_key

MAGIC = b"SSHSIG"
SIG_VERSION = 1
ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"
KEY_TYPE = "ssh-ed25519"
HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
DEFAULT_HASH = "sha512"  # what ssh-keygen -Y sign uses
MAX_SIGNATURE_BYTES = 64 * 1024
MAX_ALLOWED_SIGNERS_BYTES = 1024 * 1024


class SshsigError(Exception):
    """Base of every error this module raises; the message names the thing at fault."""


class SignatureFormatError(SshsigError):
    """The signature file is not a well-formed SSHSIG signature."""


class SignatureMismatchError(SshsigError):
    """The signature is well formed but does not vouch for this data, key, or namespace."""


class UntrustedSignerError(SshsigError):
    """The signing key is not allowed by the allowed_signers file (for this namespace, now)."""


class AllowedSignersError(SshsigError):
    """The allowed_signers file cannot be used."""


class SigningKeyError(SshsigError):
    """The private key cannot be loaded or is not an Ed25519 key."""


# --- SSH wire encoding ---------------------------------------------------------------------------


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    def raw(self, n: int) -> bytes:
        if self._pos + n > len(self._data):
            raise SignatureFormatError(f"{self._what} is truncated")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def uint32(self) -> int:
        return struct.unpack(">I", self.raw(4))[0]

    def string(self) -> bytes:
        return self.raw(self.uint32())

    def done(self) -> bool:
        return self._pos == len(self._data)


def ed25519_public_blob(public_key: Ed25519PublicKey) -> bytes:
    """The SSH wire encoding of an Ed25519 public key (as in authorized_keys, base64-decoded)."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _string(KEY_TYPE.encode()) + _string(raw)


def fingerprint(public_blob: bytes) -> str:
    """OpenSSH's default key fingerprint, ``SHA256:<unpadded base64>``."""
    digest = base64.b64encode(hashlib.sha256(public_blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def _quoted(value: str, limit: int = 64) -> str:
    """A value read from a signature, as a message quotes it: ``repr`` escapes every non-printable
    character (U+2028 included), and a signature's string fields can be up to 64 KiB: cut."""
    return repr(value[:limit]) + (f"... ({len(value)} characters)" if len(value) > limit else "")


def _blob_key_type(blob: bytes, what: str) -> str:
    try:
        return _Reader(blob, what).string().decode("ascii")
    except (SignatureFormatError, UnicodeDecodeError) as exc:
        raise SignatureFormatError(f"{what}: the public key blob is malformed") from exc


def _signed_data(namespace: str, hash_algorithm: str, message: bytes) -> bytes:
    digest = HASHES[hash_algorithm](message).digest()
    return (
        MAGIC
        + _string(namespace.encode())
        + _string(b"")
        + _string(hash_algorithm.encode())
        + _string(digest)
    )


# --- signing -------------------------------------------------------------------------------------


def load_signing_key(path: str | Path, passphrase: str | bytes | None = None) -> Ed25519PrivateKey:
    """Load an OpenSSH private key file (``ssh-keygen -t ed25519``), optionally encrypted."""
    path = Path(path)
    if isinstance(passphrase, str):
        passphrase = passphrase.encode()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read signing key {path}: {exc.strerror}") from exc
    try:
        key = load_ssh_private_key(data, password=passphrase or None)
    except TypeError as exc:
        raise SigningKeyError(
            f"signing key {path} is protected by a passphrase: give the passphrase ({exc})"
        ) from exc
    except (ValueError, binascii.Error) as exc:
        raise SigningKeyError(
            f"cannot load signing key {path} as an OpenSSH private key (wrong passphrase or not"
            f" an OpenSSH key: {exc})"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(
            f"signing key {path} is a {type(key).__name__}; island bundles are signed with Ed25519"
            " keys only (ssh-keygen -t ed25519)"
        )
    return key


def armor(blob: bytes) -> bytes:
    """Wrap a binary SSHSIG blob as ssh-keygen does (base64, 70 columns)."""
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i : i + 70] for i in range(0, len(b64), 70)]
    return ("\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n").encode()


def dearmor(text: bytes, what: str = "signature") -> bytes:
    """The binary SSHSIG blob inside an armored signature."""
    try:
        lines = text.decode("ascii").strip().splitlines()
    except UnicodeDecodeError as exc:
        raise SignatureFormatError(f"{what} is not an armored SSH signature (not ASCII)") from exc
    lines = [line.strip() for line in lines]
    if len(lines) < 3 or lines[0] != ARMOR_BEGIN or lines[-1] != ARMOR_END:
        raise SignatureFormatError(
            f"{what} is not an armored SSH signature: expected {ARMOR_BEGIN!r} ... {ARMOR_END!r}"
        )
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except binascii.Error as exc:
        raise SignatureFormatError(f"{what}: the base64 body is corrupt ({exc})") from exc


def sign_bytes(
    message: bytes, private_key: Ed25519PrivateKey, namespace: str, hash_algorithm: str = DEFAULT_HASH
) -> bytes:
    """An armored SSHSIG signature of ``message`` in ``namespace``, as ``ssh-keygen -Y sign``."""
    if not namespace:
        raise ValueError("an SSHSIG namespace must not be empty")
    if hash_algorithm not in HASHES:
        raise ValueError(f"hash algorithm must be one of {sorted(HASHES)}")
    public_blob = ed25519_public_blob(private_key.public_key())
    raw_sig = private_key.sign(_signed_data(namespace, hash_algorithm, message))
    blob = (
        MAGIC
        + struct.pack(">I", SIG_VERSION)
        + _string(public_blob)
        + _string(namespace.encode())
        + _string(b"")
        + _string(hash_algorithm.encode())
        + _string(_string(KEY_TYPE.encode()) + _string(raw_sig))
    )
    return armor(blob)


# --- parsing and checking a signature ------------------------------------------------------------


@dataclass(frozen=True)
class Signature:
    """A parsed SSHSIG signature."""

    public_blob: bytes
    namespace: str
    hash_algorithm: str
    key_type: str
    raw_signature: bytes

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_blob)


def parse_signature(armored: bytes, what: str = "signature") -> Signature:
    reader = _Reader(dearmor(armored, what), what)
    if reader.raw(6) != MAGIC:
        raise SignatureFormatError(f"{what} does not start with the SSHSIG magic preamble")
    version = reader.uint32()
    if version != SIG_VERSION:
        raise SignatureFormatError(f"{what} has SSHSIG version {version}; only version 1 is known")
    public_blob = reader.string()
    try:
        namespace = reader.string().decode()
        reader.string()  # reserved, ignored as by OpenSSH
        hash_algorithm = reader.string().decode()
    except UnicodeDecodeError as exc:
        raise SignatureFormatError(f"{what} has a namespace or hash name that is not text") from exc
    sig_reader = _Reader(reader.string(), what)
    if not reader.done():
        raise SignatureFormatError(f"{what} has trailing data after the signature")
    try:
        sig_type = sig_reader.string().decode("ascii")
    except UnicodeDecodeError as exc:
        raise SignatureFormatError(f"{what}: the signature type is not text") from exc
    raw_signature = sig_reader.string()
    if not sig_reader.done():
        raise SignatureFormatError(f"{what}: trailing data inside the signature")
    key_type = _blob_key_type(public_blob, what)
    if key_type != KEY_TYPE or sig_type != KEY_TYPE:
        raise SignatureMismatchError(
            f"{what} was made with a {_quoted(key_type)} key ({_quoted(sig_type)} signature); this installer"
            f" verifies {KEY_TYPE} signatures only: sign the bundle with an Ed25519 key"
        )
    return Signature(public_blob, namespace, hash_algorithm, key_type, raw_signature)


def check_signature(message: bytes, signature: Signature, namespace: str, what: str = "signature") -> None:
    """Raise unless ``signature`` is a valid signature of ``message`` in ``namespace``.

    This proves only that the holder of the embedded key signed; whether that key is trusted is
    the allowed_signers file's decision (:func:`verify`).
    """
    if signature.namespace != namespace:
        raise SignatureMismatchError(
            f"{what} was made for namespace {_quoted(signature.namespace)}, expected {namespace!r}"
        )
    if signature.hash_algorithm not in HASHES:
        raise SignatureMismatchError(
            f"{what} uses hash algorithm {_quoted(signature.hash_algorithm)};"
            f" expected one of {sorted(HASHES)}"
        )
    body = _Reader(signature.public_blob, what)
    body.string()
    raw_key = body.string()
    if len(raw_key) != 32 or not body.done():
        raise SignatureFormatError(f"{what}: the embedded Ed25519 public key is malformed")
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(
            signature.raw_signature, _signed_data(namespace, signature.hash_algorithm, message)
        )
    except InvalidSignature as exc:
        raise SignatureMismatchError(
            f"{what} does not match the signed data: the data was changed after signing, or the"
            " signature belongs to another file"
        ) from exc


# --- allowed_signers -----------------------------------------------------------------------------


def match_pattern(text: str, pattern: str) -> bool:
    """OpenSSH ``match_pattern``: ``*`` any run of characters, ``?`` any one, nothing else special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, flags=re.DOTALL) is not None


def match_pattern_list(text: str, patterns: str) -> int:
    """OpenSSH ``match_pattern_list``: 1 matched, -1 matched a negated entry, 0 no match."""
    result = 0
    for entry in patterns.split(","):
        negated = entry.startswith("!")
        if match_pattern(text, entry[1:] if negated else entry):
            if negated:
                return -1
            result = 1
    return result


def parse_ssh_time(value: str) -> int:
    """``YYYYMMDD[HHMM[SS]][Z]`` as in ssh-keygen(1): local time unless suffixed ``Z`` (UTC)."""
    utc = value.endswith(("Z", "z"))
    digits = value[:-1] if utc else value
    formats = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if not digits.isdigit() or len(digits) not in formats:
        raise ValueError(f"{value!r} is not YYYYMMDD[HHMM[SS]][Z]")
    parsed = time.strptime(digits, formats[len(digits)])
    return calendar.timegm(parsed) if utc else int(time.mktime(parsed))


def _take_token(text: str, line_label: str) -> tuple[str, str]:
    """First whitespace-delimited word of ``text`` (a double-quoted word may contain spaces)."""
    text = text.lstrip(" \t")
    if text.startswith('"'):
        end = text.find('"', 1)
        if end < 0:
            raise AllowedSignersError(f"{line_label}: unterminated quote")
        return text[1:end], text[end + 1 :]
    end = next((i for i, char in enumerate(text) if char in " \t"), len(text))
    return text[:end], text[end:]


def _split_options(text: str, line_label: str) -> tuple[str, str]:
    """Options run up to the first unquoted whitespace (sshkey_advance_past_options)."""
    quoted = False
    for i, char in enumerate(text):
        if char == '"':
            quoted = not quoted
        elif char in " \t" and not quoted:
            return text[:i], text[i:]
    if quoted:
        raise AllowedSignersError(f"{line_label}: unterminated quote in options")
    return text, ""


@dataclass
class AllowedSigner:
    """One line of an allowed_signers file."""

    line: int
    principals: str
    key_type: str
    public_blob: bytes
    namespaces: str | None = None
    valid_after: int | None = None
    valid_before: int | None = None
    options: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_blob)


def _parse_options(text: str, line_label: str) -> dict[str, str]:
    options: dict[str, str] = {}
    rest = text
    while rest:
        match = re.match(r'([A-Za-z-]+)(?:="([^"]*)")?(?:,|$)', rest)
        if not match:
            raise AllowedSignersError(
                f"{line_label}: cannot parse options {text!r} (values must be double-quoted,"
                ' e.g. namespaces="island-bundle")'
            )
        name, value = match.group(1).lower(), match.group(2)
        if name in options:
            raise AllowedSignersError(f"{line_label}: option {name!r} given twice")
        if name == "cert-authority":
            raise AllowedSignersError(
                f"{line_label}: cert-authority is not supported by the island installer; list the"
                " signer's own ssh-ed25519 public key instead"
            )
        if name not in ("namespaces", "valid-after", "valid-before"):
            raise AllowedSignersError(
                f"{line_label}: unsupported option {name!r} (known: namespaces, valid-after, valid-before)"
            )
        if value is None:
            raise AllowedSignersError(f'{line_label}: option {name!r} needs a value: {name}="..."')
        options[name] = value
        rest = rest[match.end() :]
    return options


def parse_allowed_signers(text: str, source: str = "allowed_signers") -> list[AllowedSigner]:
    """Parse an OpenSSH allowed_signers file: ``principals [options] keytype base64 [comment]``."""
    signers = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip(" \t\r\n")
        if not line or line.startswith("#"):
            continue
        label = f"{source} line {number}"
        principals, rest = _take_token(line, label)
        if not principals or not rest.strip():
            raise AllowedSignersError(f"{label}: expected 'principals [options] keytype base64-key'")
        rest = rest.lstrip(" \t")
        first, after_first = _take_token(rest, label)
        options: dict[str, str] = {}
        if "=" in first or first.lower().startswith("cert-authority"):
            option_text, rest = _split_options(rest, label)
            options = _parse_options(option_text, label)
            first, after_first = _take_token(rest, label)
        key_type = first
        key_b64, _comment = _take_token(after_first, label)
        if not key_type or not key_b64:
            raise AllowedSignersError(f"{label}: missing key type or key")
        try:
            blob = base64.b64decode(key_b64, validate=True)
        except binascii.Error as exc:
            raise AllowedSignersError(f"{label}: the public key is not valid base64") from exc
        try:
            blob_type = _blob_key_type(blob, label)
        except SignatureFormatError as exc:
            raise AllowedSignersError(str(exc)) from exc
        if blob_type != key_type:
            raise AllowedSignersError(f"{label}: key type {key_type!r} but the key blob says {blob_type!r}")
        signer = AllowedSigner(
            line=number,
            principals=principals,
            key_type=key_type,
            public_blob=blob,
            namespaces=options.get("namespaces"),
            options=options,
        )
        for name, attr in (("valid-after", "valid_after"), ("valid-before", "valid_before")):
            if name in options:
                try:
                    setattr(signer, attr, parse_ssh_time(options[name]))
                except ValueError as exc:
                    raise AllowedSignersError(f"{label}: {name}: {exc}") from exc
        signers.append(signer)
    return signers


def load_allowed_signers(path: str | Path) -> list[AllowedSigner]:
    path = Path(path)
    try:
        # The island's own configuration: a symbolic link to it is followed, but a FIFO or device
        # is refused at once instead of blocking (island_io.read_regular).
        data = read_regular(path, MAX_ALLOWED_SIGNERS_BYTES, follow_symlinks=True)
    except OSError as exc:
        reason = "not a regular file" if exc.errno == errno.EINVAL else exc.strerror
        raise AllowedSignersError(
            f"cannot read allowed signers file {path}: {reason}; create it on the controller"
            " with one 'principal namespaces=\"island-bundle\" ssh-ed25519 AAAA...' line per signer"
        ) from exc
    if len(data) > MAX_ALLOWED_SIGNERS_BYTES:
        raise AllowedSignersError(f"allowed signers file {path} is larger than 1 MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AllowedSignersError(f"allowed signers file {path} is not UTF-8 text") from exc
    signers = parse_allowed_signers(text, str(path))
    if not signers:
        raise AllowedSignersError(f"allowed signers file {path} lists no signer")
    return signers


def _format_time(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass(frozen=True)
class VerifiedSignature:
    """Who signed: the allowed_signers line that vouched for the key."""

    principals: str
    fingerprint: str
    namespace: str
    hash_algorithm: str
    line: int

    def as_dict(self) -> dict[str, object]:
        return {
            "principals": self.principals,
            "fingerprint": self.fingerprint,
            "namespace": self.namespace,
            "hash_algorithm": self.hash_algorithm,
            "allowed_signers_line": self.line,
        }


def verify(
    message: bytes,
    armored_signature: bytes,
    allowed_signers: list[AllowedSigner],
    namespace: str,
    *,
    identity: str | None = None,
    now: float | None = None,
    what: str = "signature",
    source: str = "allowed_signers",
) -> VerifiedSignature:
    """Check a signature as ``ssh-keygen -Y verify`` does.

    The signature must be valid for ``message`` in ``namespace``, and its key must appear on an
    allowed_signers line whose namespaces admit ``namespace`` and whose validity interval holds
    ``now``. With ``identity``, the line's principals must also match it; without, any line with
    the key will do (like ``ssh-keygen -Y find-principals`` followed by ``-Y verify``).
    """
    signature = parse_signature(armored_signature, what)
    check_signature(message, signature, namespace, what)
    now = time.time() if now is None else now
    reasons = []
    for signer in allowed_signers:
        if signer.public_blob != signature.public_blob:
            continue
        label = f"{source} line {signer.line} ({signer.principals})"
        if identity is not None and match_pattern_list(identity, signer.principals) != 1:
            reasons.append(f"{label} does not list identity {identity!r}")
            continue
        if signer.namespaces is not None and match_pattern_list(namespace, signer.namespaces) != 1:
            reasons.append(f"{label} does not allow namespace {namespace!r} (namespaces={signer.namespaces})")
            continue
        if signer.valid_after is not None and now < signer.valid_after:
            reasons.append(f"{label} is not valid before {_format_time(signer.valid_after)}")
            continue
        if signer.valid_before is not None and now > signer.valid_before:
            reasons.append(f"{label} expired at {_format_time(signer.valid_before)}")
            continue
        return VerifiedSignature(
            signer.principals, signature.fingerprint, namespace, signature.hash_algorithm, signer.line
        )
    if reasons:
        raise UntrustedSignerError(
            f"{what} is by key {signature.fingerprint}, which is not allowed here: " + "; ".join(reasons)
        )
    raise UntrustedSignerError(
        f"{what} is by key {signature.fingerprint}, which is not in {source}; if this signer is"
        " trusted, add its public key there"
    )
