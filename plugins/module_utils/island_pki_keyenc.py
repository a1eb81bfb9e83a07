"""Island PKI, controller side: how the CA keys are encrypted at rest, and which encryption is weak.

Note that this module util is PRIVATE to this repository; it can change at any time.

A CA key is a PEM ``ENCRYPTED PRIVATE KEY`` (PKCS#8 EncryptedPrivateKeyInfo, RFC 5958) encrypted
with PBES2 (RFC 8018): the key is derived from the passphrase with **scrypt** (RFC 7914, id-scrypt
1.3.6.1.4.1.11591.4.11) at N=2^14, r=8, p=5, and encrypts with AES-256-CBC. That is one of
OWASP's equivalent scrypt settings (Password Storage Cheat Sheet: N=2^17 r=8 p=1 ... N=2^14 r=8
p=5), chosen because it stays within OpenSSL's default scrypt memory limit for PKCS#8
(SCRYPT_MAX_MEM, 32 MiB; 16 MiB used here), so ``openssl pkcs8 -in ca.key`` and cryptography (both
through OpenSSL's PKCS5_v2_scrypt_keyivgen) read it. cryptography's ``BestAvailableEncryption``
writes PBES2 with PBKDF2-HMAC-SHA256 at OpenSSL's default of 2,048 iterations, and its
``encryption_builder`` is refused for PKCS#8; so the structure is written here with cryptography's
own scrypt and AES primitives and a small DER encoder.

``key_protection()`` reads which KDF protects an existing key, so ``island_ca`` can re-encrypt a key
under a weak one (PBKDF2 under 600,000 iterations, OWASP's floor for PBKDF2-HMAC-SHA256, scrypt
weaker than the above, or OpenSSL's traditional PEM encryption, an MD5-based EVP_BytesToKey).
"""

from __future__ import annotations

import base64
import os
import re

from ansible_collections.island.installer.plugins.module_utils.island_pki import serialization

try:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
except ImportError:  # reported by island_pki.missing_cryptography()
    pass

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 5
# Equivalent work of the scrypt settings above (N * r * p), and OWASP's floor for PBKDF2-HMAC-SHA256.
SCRYPT_MIN_WORK = SCRYPT_N * SCRYPT_R * SCRYPT_P
PBKDF2_MIN_ITERATIONS = 600_000
DESCRIPTION = f"PBES2 scrypt (N=2^14, r={SCRYPT_R}, p={SCRYPT_P}) with AES-256-CBC"

OID_PBES2 = "1.2.840.113549.1.5.13"
OID_PBKDF2 = "1.2.840.113549.1.5.12"
OID_SCRYPT = "1.3.6.1.4.1.11591.4.11"
OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"


# --------------------------------------------------------------------------------------------------
# DER, just what EncryptedPrivateKeyInfo needs


def _tlv(tag, body):
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def _seq(*items):
    return _tlv(0x30, b"".join(items))


def _int(value):
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _octets(data):
    return _tlv(0x04, data)


def _oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk, rest = [part & 0x7F], part >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


class _DerError(ValueError):
    pass


def _read(data, offset=0):
    """(tag, body, next offset) of the DER element at ``offset``."""
    if offset + 2 > len(data):
        raise _DerError("truncated")
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise _DerError("bad length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    else:
        length = first
    if offset + length > len(data):
        raise _DerError("truncated")
    return tag, data[offset : offset + length], offset + length


def _children(body):
    out, offset = [], 0
    while offset < len(body):
        tag, value, offset = _read(body, offset)
        out.append((tag, value))
    return out


def _oid_text(body):
    first = body[0]
    parts, value = [first // 40, first % 40], 0
    for byte in body[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


# --------------------------------------------------------------------------------------------------
# Writing


def encrypted_key_pem(key, passphrase, *, salt=None, iv=None):
    """``key`` as a PEM ENCRYPTED PRIVATE KEY under PBES2 scrypt + AES-256-CBC (module docstring)."""
    salt = salt or os.urandom(16)
    iv = iv or os.urandom(16)
    plain = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    derived = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(
        passphrase.encode("utf-8")
    )
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(derived), modes.CBC(iv)).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    kdf = _seq(
        _oid(OID_SCRYPT), _seq(_octets(salt), _int(SCRYPT_N), _int(SCRYPT_R), _int(SCRYPT_P), _int(32))
    )
    scheme = _seq(_oid(OID_AES256_CBC), _octets(iv))
    der = _seq(_seq(_oid(OID_PBES2), _seq(kdf, scheme)), _octets(encrypted))
    lines = [base64.b64encode(der[i : i + 48]).decode("ascii") for i in range(0, len(der), 48)]
    return (
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
        + "\n".join(lines)
        + "\n-----END ENCRYPTED PRIVATE KEY-----\n"
    ).encode("ascii")


# --------------------------------------------------------------------------------------------------
# Reading which encryption protects a key


class Protection:
    """How a PEM private key is protected: ``kind`` (scrypt, pbkdf2, traditional, other, none) and
    its parameters; ``weak`` with ``reason`` when ``island_ca`` must re-encrypt it."""

    def __init__(self, kind, *, weak, reason="", **params):
        self.kind = kind
        self.weak = weak
        self.reason = reason
        self.params = params

    def describe(self):
        if self.kind == "scrypt":
            return "PBES2 scrypt (N={n}, r={r}, p={p})".format(**self.params)
        if self.kind == "pbkdf2":
            return "PBES2 PBKDF2 ({iterations} iterations)".format(**self.params)
        if self.kind == "traditional":
            return "OpenSSL traditional PEM encryption (MD5 EVP_BytesToKey, 1 iteration)"
        return self.kind


def key_protection(pem):
    """The ``Protection`` of a PEM private key (bytes or str). Unknown structures are ``other``,
    not weak: the loader then says what is wrong with the file."""
    text = pem.decode("ascii", "replace") if isinstance(pem, bytes) else str(pem)
    if re.search(r"^Proc-Type:\s*4,ENCRYPTED", text, re.M):
        return Protection(
            "traditional", weak=True, reason="traditional PEM encryption derives the key with MD5"
        )
    match = re.search(
        r"-----BEGIN ENCRYPTED PRIVATE KEY-----(.+?)-----END ENCRYPTED PRIVATE KEY-----", text, re.S
    )
    if not match:
        return Protection("none", weak=False)
    try:
        return _pbes2_protection(base64.b64decode("".join(match.group(1).split())))
    except (ValueError, IndexError):
        return Protection("other", weak=False)


def _pbes2_protection(der):
    _, outer, _ = _read(der)
    (_, algorithm), _encrypted = _children(outer)
    (_, oid), *params = _children(algorithm)
    if _oid_text(oid) != OID_PBES2:
        return Protection("other", weak=True, reason=f"PKCS#8 encryption {_oid_text(oid)} is not PBES2")
    (_, kdf), _scheme = _children(params[0][1])
    (_, kdf_oid), (_, kdf_params) = _children(kdf)
    values = _children(kdf_params)
    if _oid_text(kdf_oid) == OID_SCRYPT:
        n, r, p = (int.from_bytes(v, "big") for _, v in values[1:4])
        weak = n * r * p < SCRYPT_MIN_WORK
        reason = f"scrypt N*r*p = {n * r * p} is under {SCRYPT_MIN_WORK}" if weak else ""
        return Protection("scrypt", weak=weak, reason=reason, n=n, r=r, p=p)
    if _oid_text(kdf_oid) == OID_PBKDF2:
        iterations = int.from_bytes(values[1][1], "big")
        weak = iterations < PBKDF2_MIN_ITERATIONS
        reason = f"PBKDF2 at {iterations} iterations is under {PBKDF2_MIN_ITERATIONS}" if weak else ""
        return Protection("pbkdf2", weak=weak, reason=reason, iterations=iterations)
    return Protection("other", weak=True, reason=f"PBES2 key derivation {_oid_text(kdf_oid)} is unknown")
