"""Host side: the private key and CSR, and installing the certificate with its chain.

This code runs on managed hosts' system Python, so these tests are also run once with Debian 12's
python3 and python3-cryptography 38 (see docs/pki.md, "Testing").
"""

from __future__ import annotations

import datetime
import os
import pwd
import stat

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_io import (
    FileAttributeError,
    atomic_write,
    parse_mode,
    resolve_owner,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki import (
    CertificateFileError,
    KeyFileError,
    ParameterError,
    cert_not_after,
    cert_not_before,
    cert_pem,
    key_type_of,
    load_csr,
    public_key_der,
    sans_of,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki_host import (
    ensure_certificate_file,
    ensure_key_and_csr,
    load_host_key,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki_sign import sign_csr

from tests.support.island_pki import Service, make_ca, snapshot

SANS = ["DNS:minio.island.internal", "IP:127.0.0.1"]


def _nobody():
    try:
        user = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user on this machine")
    return user.pw_uid, user.pw_gid


def _signed(tmp_path, sans=SANS):
    ca = make_ca(tmp_path / "ca")
    svc = Service(tmp_path / "host")
    signed = sign_csr(svc.csr(sans).csr_pem, ca.intermediate)
    return ca, svc, signed


def test_a_new_key_is_made_0600_owned_by_the_service_user_and_never_returned(tmp_path):
    uid, gid = _nobody()
    key_path = tmp_path / "svc.key"
    result = ensure_key_and_csr(str(key_path), SANS, uid=uid, gid=gid)
    assert result.changed and result.key_created
    assert result.reason == "no private key yet"
    st = os.stat(key_path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert (st.st_uid, st.st_gid) == (uid, gid)
    key = load_host_key(str(key_path))
    assert key_type_of(key) == "ec-p256"
    assert "PRIVATE KEY" not in result.csr_pem
    assert not any("PRIVATE" in str(v) for v in vars(result).values())
    csr = load_csr(result.csr_pem, "CSR")
    assert public_key_der(csr.public_key()) == public_key_der(key)
    assert [f"{k}:{v}" for k, v in sans_of(csr)] == ["dns:minio.island.internal", "ip:127.0.0.1"]
    assert csr.subject.rfc4514_string() == "CN=minio.island.internal"


def test_a_rerun_keeps_the_key_byte_identical_and_reports_no_change(tmp_path):
    key_path = tmp_path / "svc.key"
    ensure_key_and_csr(str(key_path), SANS)
    before = snapshot(tmp_path)
    again = ensure_key_and_csr(str(key_path), SANS)
    assert not again.changed and not again.key_created
    assert again.reason is None
    assert snapshot(tmp_path) == before


def test_a_different_key_type_makes_a_new_key(tmp_path):
    key_path = tmp_path / "svc.key"
    ensure_key_and_csr(str(key_path), SANS)
    result = ensure_key_and_csr(str(key_path), SANS, key_type="ec-p384")
    assert result.key_created
    assert result.reason == "key type differs: have ec-p256, want ec-p384"
    assert key_type_of(load_host_key(str(key_path))) == "ec-p384"


def test_owner_and_mode_drift_on_the_key_is_fixed_and_reported(tmp_path):
    uid, gid = _nobody()
    key_path = tmp_path / "svc.key"
    ensure_key_and_csr(str(key_path), SANS, uid=uid, gid=gid)
    data = key_path.read_bytes()
    os.chown(key_path, 0, 0)
    os.chmod(key_path, 0o640)
    result = ensure_key_and_csr(str(key_path), SANS, uid=uid, gid=gid)
    assert result.changed and not result.key_created
    assert set(result.attribute_changes) == {"mode", "owner", "group"}
    st = os.stat(key_path)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, uid, gid)
    assert key_path.read_bytes() == data


def test_an_unreadable_key_is_a_clear_error_and_is_not_replaced(tmp_path):
    key_path = tmp_path / "svc.key"
    key_path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    with pytest.raises(KeyFileError, match=r"svc\.key is not a valid PEM private key; remove the file"):
        ensure_key_and_csr(str(key_path), SANS)
    assert key_path.read_bytes().endswith(b"nope\n-----END PRIVATE KEY-----\n")


def test_a_missing_key_directory_is_a_clear_error(tmp_path):
    with pytest.raises(KeyFileError, match="does not exist; create it first"):
        ensure_key_and_csr(str(tmp_path / "absent" / "svc.key"), SANS)


def test_bad_names_are_refused_on_the_host_already(tmp_path):
    with pytest.raises(ParameterError, match="DNS:<name> or IP:<address>"):
        ensure_key_and_csr(str(tmp_path / "svc.key"), ["minio.island.internal"])
    with pytest.raises(ParameterError, match="not an IP address"):
        ensure_key_and_csr(str(tmp_path / "svc.key"), ["IP:300.1.1.1"])
    assert not (tmp_path / "svc.key").exists()


def test_an_unknown_service_user_is_a_clear_error():
    with pytest.raises(FileAttributeError, match="user 'no-such-island-user' does not exist"):
        resolve_owner("no-such-island-user", None)


def test_check_mode_makes_no_key_but_still_returns_a_csr(tmp_path):
    key_path = tmp_path / "svc.key"
    result = ensure_key_and_csr(str(key_path), SANS, check_mode=True)
    assert result.changed and result.key_created
    assert "BEGIN CERTIFICATE REQUEST" in result.csr_pem
    assert not key_path.exists()
    assert os.listdir(tmp_path) == []


def test_the_certificate_is_installed_with_its_chain_and_a_rerun_leaves_it_untouched(tmp_path):
    ca, svc, signed = _signed(tmp_path)
    uid, gid = _nobody()
    args = {"chain": [cert_pem(ca.intermediate.cert)], "key_path": str(svc.key), "uid": uid, "gid": gid}
    first = ensure_certificate_file(str(svc.cert), cert_pem(signed.cert), **args)
    assert first.changed and first.reason == "no certificate file yet"
    assert svc.cert.read_text() == cert_pem(signed.cert) + cert_pem(ca.intermediate.cert)
    st = os.stat(svc.cert)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o644, uid, gid)
    before = snapshot(tmp_path / "host")
    again = ensure_certificate_file(str(svc.cert), cert_pem(signed.cert), **args)
    assert not again.changed and again.reason is None
    assert snapshot(tmp_path / "host") == before
    assert sorted(os.listdir(tmp_path / "host")) == ["svc.crt", "svc.key"]


def test_a_certificate_for_another_key_is_refused_and_the_installed_one_kept(tmp_path):
    ca, svc, signed = _signed(tmp_path)
    chain = [cert_pem(ca.intermediate.cert)]
    ensure_certificate_file(str(svc.cert), cert_pem(signed.cert), chain=chain, key_path=str(svc.key))
    installed = svc.cert.read_bytes()
    other = Service(tmp_path / "other")
    foreign = sign_csr(other.csr(SANS).csr_pem, ca.intermediate).cert
    with pytest.raises(CertificateFileError, match=r"does not match private key .*svc\.key"):
        ensure_certificate_file(str(svc.cert), cert_pem(foreign), chain=chain, key_path=str(svc.key))
    assert svc.cert.read_bytes() == installed


def test_a_chain_that_did_not_issue_the_certificate_is_refused(tmp_path):
    ca, svc, signed = _signed(tmp_path)
    with pytest.raises(CertificateFileError, match="chain is out of order"):
        ensure_certificate_file(str(svc.cert), cert_pem(signed.cert), chain=[cert_pem(ca.root.cert)])
    assert not svc.cert.exists()


def test_installing_in_check_mode_writes_nothing_and_shows_old_and_new_subject_sans_and_expiry(tmp_path):
    ca, svc, signed = _signed(tmp_path)
    chain = [cert_pem(ca.intermediate.cert)]
    ensure_certificate_file(str(svc.cert), cert_pem(signed.cert), chain=chain)
    before = snapshot(tmp_path / "host")
    newer = sign_csr(svc.csr(["DNS:s3.island.internal"]).csr_pem, ca.intermediate).cert
    result = ensure_certificate_file(str(svc.cert), cert_pem(newer), chain=chain, check_mode=True)
    assert result.changed and result.reason == "certificate content differs"
    assert snapshot(tmp_path / "host") == before
    assert result.before["subject"] == "CN=minio.island.internal"
    assert result.after["subject"] == "CN=s3.island.internal"
    assert result.before["subject_alt_names"] == ["dns:minio.island.internal", "ip:127.0.0.1"]
    assert result.after["subject_alt_names"] == ["dns:s3.island.internal"]
    assert result.before["serial_number"] != result.after["serial_number"]
    assert {"not_after", "issuer"} <= set(result.before) & set(result.after)


def test_atomic_write_replaces_in_one_step_and_cleans_up_after_a_failure(tmp_path):
    path = tmp_path / "file.pem"
    atomic_write(str(path), b"one", 0o640)
    inode = os.stat(path).st_ino
    atomic_write(str(path), b"two", 0o640)
    assert path.read_bytes() == b"two"
    assert os.stat(path).st_ino != inode  # a rename, not an in-place rewrite
    with pytest.raises(TypeError):
        atomic_write(str(path), "not bytes", 0o640)
    assert path.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["file.pem"]


def test_compat_helpers_give_aware_utc_datetimes(tmp_path):
    _, _, signed = _signed(tmp_path)
    not_before, not_after = cert_not_before(signed.cert), cert_not_after(signed.cert)
    assert not_before.tzinfo is not None and not_after.tzinfo is not None
    assert not_before.utcoffset() == datetime.timedelta(0)
    assert 364 <= (not_after - not_before).days <= 366


def test_a_certificate_that_is_not_pem_is_refused_with_what_to_pass_instead(tmp_path):
    with pytest.raises(CertificateFileError, match="pass the PEM that island_cert_sign returned"):
        ensure_certificate_file(
            str(tmp_path / "svc.crt"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        )
    with pytest.raises(CertificateFileError, match="exactly one PEM certificate, found 0"):
        ensure_certificate_file(str(tmp_path / "svc.crt"), "")
    assert not (tmp_path / "svc.crt").exists()


def test_modes_are_accepted_as_octal_strings_or_as_the_number_yaml_makes_of_0600():
    assert parse_mode("0600") == parse_mode("600") == parse_mode(384) == 0o600
    assert parse_mode(None, 0o644) == 0o644
    for bad in ("u=rw", "0800", 70000, True):
        with pytest.raises(FileAttributeError, match="must be octal"):
            parse_mode(bad)


def test_the_signing_ca_key_is_decrypted_only_when_a_certificate_is_signed(tmp_path):
    # A zero-change rerun finds every host's certificate still good: the passphrase-protected key is
    # not decrypted for that (a wrong passphrase shows only when something must be signed).
    from ansible_collections.island.installer.plugins.module_utils.island_pki import PkiError
    from ansible_collections.island.installer.plugins.module_utils.island_pki_ca import load_signing_ca

    ca = make_ca(tmp_path / "ca")
    svc = Service(tmp_path / "host")
    assert svc.issue(ca, SANS).changed
    lazy = load_signing_ca(ca.intermediate.cert_path, ca.intermediate.key_path, "not-the-passphrase")
    again = sign_csr(svc.csr(SANS).csr_pem, lazy, current_pem=svc.current())
    assert not again.changed
    wrong = load_signing_ca(ca.intermediate.cert_path, ca.intermediate.key_path, "not-the-passphrase")
    with pytest.raises(PkiError, match="could not be decrypted"):
        sign_csr(svc.csr([*SANS, "DNS:extra.island.internal"]).csr_pem, wrong, current_pem=svc.current())
