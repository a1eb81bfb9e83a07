"""CA keys at rest (issue 15, item 16): scrypt (N=2^14, r=8, p=5) with AES-256-CBC in PKCS#8, which
openssl and cryptography read; keys an older installer wrote under PBKDF2 at 2,048 iterations (or
OpenSSL's traditional PEM encryption) are re-encrypted with the same passphrase, keeping the key."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from ansible_collections.island.installer.plugins.module_utils import island_pki_keyenc as keyenc
from ansible_collections.island.installer.plugins.module_utils.island_pki import PassphraseError
from ansible_collections.island.installer.plugins.module_utils.island_pki_ca import ensure_ca
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.island_pki import PASSPHRASE, ca_spec, make_ca, snapshot


def _asn1(path):
    return subprocess.run(
        ["openssl", "asn1parse", "-in", str(path)], capture_output=True, text=True, check=True
    ).stdout


def test_a_new_ca_key_is_pkcs8_under_scrypt_and_aes_256_and_openssl_reads_it(tmp_path):
    ca = make_ca(tmp_path / "ca")
    for pair in (ca.root, ca.intermediate):
        parsed = _asn1(pair.key_path)
        assert ":PBES2" in parsed and ":scrypt" in parsed and ":aes-256-cbc" in parsed
        assert "PBKDF2" not in parsed
        protection = keyenc.key_protection(Path(pair.key_path).read_bytes())
        assert (protection.kind, protection.params, protection.weak) == (
            "scrypt",
            {"n": 16384, "r": 8, "p": 5},
            False,
        )
        # openssl (its own scrypt memory limit) decrypts it: the passphrase goes through the environment.
        out = subprocess.run(
            ["openssl", "pkey", "-in", pair.key_path, "-passin", "env:ISLAND_TEST_PW", "-pubout"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "ISLAND_TEST_PW": PASSPHRASE},
        )
        assert out.returncode == 0, out.stderr
        public = pair.cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert out.stdout.encode() == public


def _old_installer_key(pair, fmt=serialization.PrivateFormat.PKCS8):
    """Rewrite ``pair``'s key as the installer did before: BestAvailableEncryption."""
    key = serialization.load_pem_private_key(Path(pair.key_path).read_bytes(), PASSPHRASE.encode())
    data = key.private_bytes(
        serialization.Encoding.PEM, fmt, serialization.BestAvailableEncryption(PASSPHRASE.encode())
    )
    Path(pair.key_path).write_bytes(data)
    return key


@pytest.mark.parametrize(
    ("fmt", "was"),
    [
        (serialization.PrivateFormat.PKCS8, "PBES2 PBKDF2 (2048 iterations)"),
        (serialization.PrivateFormat.TraditionalOpenSSL, "OpenSSL traditional PEM encryption"),
    ],
)
def test_a_key_under_the_old_encryption_is_re_encrypted_keeping_the_key_and_certificate(tmp_path, fmt, was):
    ca = make_ca(tmp_path / "ca")
    old_keys = [_old_installer_key(pair, fmt) for pair in (ca.root, ca.intermediate)]
    assert keyenc.key_protection(Path(ca.root.key_path).read_bytes()).weak
    certs = [Path(p.cert_path).read_bytes() for p in (ca.root, ca.intermediate)]

    preview_before = snapshot(tmp_path / "ca")
    preview = ensure_ca(ca_spec(tmp_path / "ca"), check_mode=True)
    assert snapshot(tmp_path / "ca") == preview_before
    assert any(c.startswith(f"re-encrypted CA key {ca.root.key_path}: was {was}") for c in preview.changes)

    result = make_ca(tmp_path / "ca")
    assert result.changed
    assert sum(c.startswith("re-encrypted CA key") for c in result.changes) == 2
    for pair, old, cert in zip((ca.root, ca.intermediate), old_keys, certs, strict=True):
        data = Path(pair.key_path).read_bytes()
        assert not keyenc.key_protection(data).weak
        assert oct(os.stat(pair.key_path).st_mode & 0o777) == "0o600"
        key = serialization.load_pem_private_key(data, PASSPHRASE.encode())
        assert key.private_numbers() == old.private_numbers()
        assert Path(pair.cert_path).read_bytes() == cert
    assert not make_ca(tmp_path / "ca").changed


def test_an_old_key_with_a_wrong_passphrase_is_refused_and_left_as_it_was(tmp_path):
    ca = make_ca(tmp_path / "ca")
    _old_installer_key(ca.root)
    before = snapshot(tmp_path / "ca")
    with pytest.raises(PassphraseError):
        make_ca(tmp_path / "ca", passphrase="not the passphrase")
    assert snapshot(tmp_path / "ca") == before


@pytest.mark.parametrize(
    ("iterations", "weak"),
    [(2048, True), (599_999, True), (600_000, False)],
)
def test_pbkdf2_is_strong_enough_from_600000_iterations(iterations, weak):
    # A PBES2/PBKDF2 structure as openssl writes it with -iter (built with openssl itself).
    key = ec.generate_private_key(ec.SECP256R1())
    plain = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    out = subprocess.run(
        [
            "openssl",
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-iter",
            str(iterations),
            "-passout",
            "env:ISLAND_TEST_PW",
        ],
        input=plain,
        capture_output=True,
        check=True,
        env={**os.environ, "ISLAND_TEST_PW": "x"},
    ).stdout
    protection = keyenc.key_protection(out)
    assert (protection.kind, protection.params["iterations"], protection.weak) == ("pbkdf2", iterations, weak)


def test_weaker_scrypt_is_weak_and_an_unencrypted_key_is_not_judged():
    key = ec.generate_private_key(ec.SECP256R1())
    plain = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    out = subprocess.run(
        ["openssl", "pkcs8", "-topk8", "-scrypt", "-passout", "env:ISLAND_TEST_PW"],
        input=plain,
        capture_output=True,
        check=True,
        env={**os.environ, "ISLAND_TEST_PW": "x"},
    ).stdout
    protection = keyenc.key_protection(out)
    assert protection.kind == "scrypt" and protection.weak  # openssl's default N=16384 r=8 p=1
    assert serialization.load_pem_private_key(out, b"x").private_numbers() == key.private_numbers()
    assert keyenc.key_protection(plain).kind == "none"
