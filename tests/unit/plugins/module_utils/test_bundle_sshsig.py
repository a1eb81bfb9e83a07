"""SSHSIG: interoperable with the real ssh-keygen both ways; allowed_signers read as OpenSSH reads it."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from ansible_collections.island.installer.plugins.module_utils import island_sshsig as sshsig
from ansible_collections.island.installer.plugins.module_utils.island_bundle import sign
from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import SigningError

from tests.support.bundle import make_key, make_signed_bundle

SSH_KEYGEN = shutil.which("ssh-keygen")
needs_ssh_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason="ssh-keygen is not installed")
MESSAGE = b"schema_version: 1\n"


def keygen(directory, name, key_type="ed25519", passphrase=""):
    path = directory / name
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", key_type, "-N", passphrase, "-C", name, "-f", str(path)], check=True
    )
    return path, path.with_suffix(".pub").read_text().split()[:2]


def ssh_keygen_verify(tmp_path, message, signature, signers_text, identity):
    signers = tmp_path / "allowed_signers_for_ssh_keygen"
    signers.write_text(signers_text)
    sig = tmp_path / "message.sig"
    sig.write_bytes(signature)
    return subprocess.run(
        [
            SSH_KEYGEN,
            "-Y",
            "verify",
            "-f",
            str(signers),
            "-I",
            identity,
            "-n",
            "island-bundle",
            "-s",
            str(sig),
        ],
        input=message,
        capture_output=True,
        check=False,
    )


def ssh_keygen_sign(tmp_path, private_key, message, namespace="island-bundle", extra=()):
    data = tmp_path / "message"
    data.write_bytes(message)
    subprocess.run(
        [SSH_KEYGEN, "-q", "-Y", "sign", "-f", str(private_key), "-n", namespace, *extra, str(data)],
        check=True,
        capture_output=True,
    )
    return (tmp_path / "message.sig").read_bytes()


@needs_ssh_keygen
def test_our_signature_of_a_bundle_lock_verifies_with_ssh_keygen(tmp_path):
    bundle = make_signed_bundle(tmp_path)

    result = subprocess.run(
        [
            SSH_KEYGEN,
            "-Y",
            "verify",
            "-f",
            str(bundle.allowed_signers),
            "-I",
            "release@island.example",
            "-n",
            "island-bundle",
            "-s",
            str(bundle.signature_path),
        ],
        stdin=bundle.lock_path.open("rb"),
        capture_output=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert b'Good "island-bundle" signature for release@island.example' in result.stdout


@needs_ssh_keygen
def test_ssh_keygen_refuses_our_signature_once_the_lock_is_edited(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    edited = bundle.lock_path.read_bytes().replace(b"version: 2026.11.0", b"version: 2026.11.1")
    assert edited != bundle.lock_path.read_bytes()

    result = ssh_keygen_verify(
        tmp_path,
        edited,
        bundle.signature_path.read_bytes(),
        bundle.allowed_signers.read_text(),
        "release@island.example",
    )

    assert result.returncode != 0


@needs_ssh_keygen
def test_a_signature_with_a_passphrase_protected_ssh_keygen_key_verifies_with_ssh_keygen(tmp_path):
    private, public = keygen(tmp_path, "locked", passphrase="correct horse")
    key = sshsig.load_signing_key(private, "correct horse")

    signature = sshsig.sign_bytes(MESSAGE, key, "island-bundle")

    result = ssh_keygen_verify(tmp_path, MESSAGE, signature, f"ops@island {' '.join(public)}\n", "ops@island")
    assert result.returncode == 0, result.stderr


@needs_ssh_keygen
@pytest.mark.parametrize("hash_options", [(), ("-O", "hashalg=sha256")], ids=["sha512", "sha256"])
def test_a_signature_made_by_ssh_keygen_verifies_with_our_code(tmp_path, hash_options):
    private, public = keygen(tmp_path, "release")
    signature = ssh_keygen_sign(tmp_path, private, MESSAGE, extra=hash_options)
    signers = sshsig.parse_allowed_signers(f'release@island namespaces="island-bundle" {" ".join(public)}\n')

    verified = sshsig.verify(MESSAGE, signature, signers, "island-bundle", identity="release@island")

    assert verified.principals == "release@island"
    assert verified.hash_algorithm == ("sha256" if hash_options else "sha512")
    fingerprint = subprocess.run(
        [SSH_KEYGEN, "-l", "-f", str(private.with_suffix(".pub"))], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert verified.fingerprint == fingerprint


@needs_ssh_keygen
def test_an_ssh_keygen_signature_of_other_data_is_refused_by_our_code(tmp_path):
    private, public = keygen(tmp_path, "release")
    signature = ssh_keygen_sign(tmp_path, private, b"something else")
    signers = sshsig.parse_allowed_signers(f"release@island {' '.join(public)}\n")

    with pytest.raises(sshsig.SignatureMismatchError, match="does not match the signed data"):
        sshsig.verify(MESSAGE, signature, signers, "island-bundle")


@needs_ssh_keygen
@pytest.mark.parametrize(
    ("key_type", "namespace", "why"),
    [
        ("ed25519", "git", "namespace 'git', expected 'island-bundle'"),
        ("ecdsa", "island-bundle", "ecdsa-sha2-nistp256"),  # not Ed25519
    ],
    ids=["another_namespace", "ecdsa_not_ed25519"],
)
def test_an_ssh_keygen_signature_is_refused_saying_why(tmp_path, key_type, namespace, why):
    private, public = keygen(tmp_path, key_type, key_type=key_type)
    signature = ssh_keygen_sign(tmp_path, private, MESSAGE, namespace=namespace)
    signers = sshsig.parse_allowed_signers(f"release@island {' '.join(public)}\n")

    with pytest.raises(sshsig.SignatureMismatchError, match=why):
        sshsig.verify(MESSAGE, signature, signers, "island-bundle")


@needs_ssh_keygen
def test_an_ecdsa_private_key_is_refused_for_signing(tmp_path):
    private, _ = keygen(tmp_path, "ecdsa", key_type="ecdsa")

    with pytest.raises(sshsig.SigningKeyError, match="Ed25519 keys only"):
        sshsig.load_signing_key(private)


# Each allowed_signers line is judged by ssh-keygen and by our code; the verdicts must agree.
ALLOWED_SIGNERS_CASES = [
    ("{principal} {key}", "release@island", True),
    ('{principal} namespaces="island-bundle" {key}', "release@island", True),
    ('{principal} namespaces="git,file" {key}', "release@island", False),
    ('{principal} namespaces="island-*" {key}', "release@island", True),
    ('{principal} namespaces="*,!island-bundle" {key}', "release@island", False),
    ('{principal} valid-before="20000101" {key}', "release@island", False),
    ('{principal} valid-after="20991231Z" {key}', "release@island", False),
    ('{principal} valid-after="20000101",valid-before="20991231235959Z" {key}', "release@island", True),
    ('{principal} namespaces="island-bundle",valid-after="20000101" {key} a comment', "release@island", True),
    ("ops@island,{principal} {key}", "release@island", True),
    ('"ops@island,{principal}" {key}', "release@island", True),
    ("*@island {key}", "release@island", True),
    ("*@island,!release@island {key}", "release@island", False),
    ("other@island {key}", "release@island", False),
    ("  # a comment\n\n{principal} {key}", "release@island", True),
]


@needs_ssh_keygen
@pytest.mark.parametrize(("template", "identity", "good"), ALLOWED_SIGNERS_CASES)
def test_allowed_signers_lines_are_judged_as_ssh_keygen_judges_them(tmp_path, template, identity, good):
    private, public = keygen(tmp_path, "release")
    signature = sshsig.sign_bytes(MESSAGE, sshsig.load_signing_key(private), "island-bundle")
    text = template.format(principal="release@island", key=" ".join(public)) + "\n"

    theirs = ssh_keygen_verify(tmp_path, MESSAGE, signature, text, identity)
    assert (theirs.returncode == 0) is good, theirs.stderr

    signers = sshsig.parse_allowed_signers(text)
    if good:
        assert sshsig.verify(MESSAGE, signature, signers, "island-bundle", identity=identity)
    else:
        with pytest.raises(sshsig.UntrustedSignerError):
            sshsig.verify(MESSAGE, signature, signers, "island-bundle", identity=identity)


def test_validity_interval_is_checked_against_the_time_of_verification(tmp_path):
    key = make_key(tmp_path, "release")
    signature = sshsig.sign_bytes(MESSAGE, sshsig.load_signing_key(key.private_path), "island-bundle")
    signers = sshsig.parse_allowed_signers(
        f'release@island valid-after="20260101Z",valid-before="20270101Z" {key.public_line}\n'
    )
    inside = time.mktime((2026, 6, 1, 0, 0, 0, 0, 0, -1))

    assert sshsig.verify(MESSAGE, signature, signers, "island-bundle", now=inside)
    with pytest.raises(sshsig.UntrustedSignerError, match="expired at 2027-01-01T00:00:00Z"):
        sshsig.verify(MESSAGE, signature, signers, "island-bundle", now=inside + 366 * 86400)
    with pytest.raises(sshsig.UntrustedSignerError, match="not valid before 2026-01-01T00:00:00Z"):
        sshsig.verify(MESSAGE, signature, signers, "island-bundle", now=inside - 365 * 86400)


def test_without_identity_any_line_holding_the_key_vouches_and_its_principals_are_reported(tmp_path):
    key = make_key(tmp_path, "release")
    other = make_key(tmp_path, "other")
    signature = sshsig.sign_bytes(MESSAGE, sshsig.load_signing_key(key.private_path), "island-bundle")
    signers = sshsig.parse_allowed_signers(
        f"other@island {other.public_line}\nrelease@island,ci@island {key.public_line}\n"
    )

    verified = sshsig.verify(MESSAGE, signature, signers, "island-bundle")

    assert verified.principals == "release@island,ci@island"
    assert verified.line == 2


def test_a_cert_authority_line_is_refused_with_a_clear_message(tmp_path):
    key = make_key(tmp_path, "ca")

    with pytest.raises(sshsig.AllowedSignersError, match="line 1: cert-authority is not supported"):
        sshsig.parse_allowed_signers(f"*@island cert-authority {key.public_line}\n", "allowed_signers")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('release@island nosuch="x" {key}', "unsupported option 'nosuch'"),
        ("release@island namespaces=island-bundle {key}", "values must be double-quoted"),
        ('release@island valid-after="yesterday" {key}', "valid-after: 'yesterday' is not YYYYMMDD"),
        ("release@island ssh-ed25519 not*base64", "not valid base64"),
        ("release@island ssh-rsa {blob}", "key type 'ssh-rsa' but the key blob says 'ssh-ed25519'"),
        ("release@island", "expected 'principals [options] keytype base64-key'"),
    ],
)
def test_a_malformed_allowed_signers_line_is_refused_naming_the_file_and_line(tmp_path, line, message):
    key = make_key(tmp_path, "release")
    text = "# header\n" + line.format(key=key.public_line, blob=key.public_line.split()[1]) + "\n"

    with pytest.raises(sshsig.AllowedSignersError) as caught:
        sshsig.parse_allowed_signers(text, "/etc/island/allowed_signers")

    assert "/etc/island/allowed_signers line 2" in str(caught.value)
    assert message in str(caught.value)


def test_an_empty_allowed_signers_file_is_refused(tmp_path):
    path = tmp_path / "allowed_signers"
    path.write_text("# nobody yet\n")

    with pytest.raises(sshsig.AllowedSignersError, match="lists no signer"):
        sshsig.load_allowed_signers(path)


def test_a_garbled_signature_file_is_refused_as_malformed(tmp_path):
    key = make_key(tmp_path, "release")
    signers = sshsig.parse_allowed_signers(f"release@island {key.public_line}\n")
    good = sshsig.sign_bytes(MESSAGE, sshsig.load_signing_key(key.private_path), "island-bundle")
    lines = good.decode().splitlines()
    truncated = "\n".join([lines[0], lines[1][:20], lines[-1]]).encode()

    with pytest.raises(sshsig.SignatureFormatError, match="truncated"):
        sshsig.verify(MESSAGE, truncated, signers, "island-bundle")
    with pytest.raises(sshsig.SignatureFormatError, match="not an armored SSH signature"):
        sshsig.verify(MESSAGE, b"hello", signers, "island-bundle")


def test_signing_with_a_passphrase_protected_key_needs_the_passphrase(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    locked = make_key(tmp_path / "keys", "locked", passphrase=b"s3cret")

    with pytest.raises(SigningError, match="protected by a passphrase"):
        sign(bundle.root, locked.private_path)
    with pytest.raises(SigningError, match="wrong passphrase"):
        sign(bundle.root, locked.private_path, passphrase="wrong")
    path = sign(bundle.root, locked.private_path, passphrase="s3cret")

    signers = sshsig.parse_allowed_signers(f"release@island {locked.public_line}\n")
    assert sshsig.verify(bundle.lock_path.read_bytes(), path.read_bytes(), signers, "island-bundle")


def test_signing_a_bundle_without_lock_says_to_write_the_lock_first(tmp_path):
    key = make_key(tmp_path, "release")

    with pytest.raises(SigningError, match="run write_lock first"):
        sign(tmp_path, key.private_path)
