"""The island's backup archive (module_utils/island_backup): age-encrypted tar, checked by its manifest.

The stock ``age`` tool (Debian package ``age``, tools/lib/setup.sh) makes the keys and decrypts an
archive by hand; tampering is done the way an attacker holding the recipient (a public key) can:
decrypt, change the plaintext tar, encrypt again to the same recipient.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pyrage
import pytest
from ansible_collections.island.installer.plugins.module_utils import island_backup
from ansible_collections.island.installer.plugins.module_utils.island_backup import (
    BackupInputError,
    create,
    extract,
    load_identities,
    prune,
    verify,
)
from ansible_collections.island.installer.plugins.module_utils.island_backup_age import (
    BackupDecryptError,
    BackupIntegrityError,
    encrypt,
)

NOW = datetime.datetime(2026, 12, 3, 2, 43, 33, tzinfo=datetime.UTC)
SNAPSHOT = os.urandom(200 * 1024)  # spans several 64 KiB age chunks


def _keygen(path):
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    os.chmod(path, 0o600)
    return subprocess.run(
        ["age-keygen", "-y", str(path)], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def key(tmp_path):
    """(identity file, recipient) made by the stock age-keygen."""
    path = tmp_path / "key.txt"
    return path, _keygen(path)


@pytest.fixture
def parts(tmp_path):
    state = tmp_path / "state"
    ca = state / "ca"
    (ca / "sub").mkdir(parents=True)
    (ca / "empty").mkdir()
    (ca / "root.key").write_text("root key\n")
    os.chmod(ca / "root.key", 0o600)
    (ca / "sub" / "a.crt").write_text("certificate\n")
    (state / "island-receipt.json").write_text('{"bundle": "island 2026.11.0"}\n')
    (state / "etcd-snapshot").write_bytes(SNAPSHOT)
    return [
        {"name": "ca", "path": str(ca)},
        {"name": "receipt", "path": str(state / "island-receipt.json")},
        {"name": "etcd-snapshot", "path": str(state / "etcd-snapshot")},
    ]


@pytest.fixture
def backup(tmp_path, key, parts):
    out = tmp_path / "media"
    out.mkdir()
    return create(str(out), parts, [key[1]], island_name="demo", island_domain="island.internal", now=NOW)


def _tree(root):
    """{relative path: (mode, content or None)} of a directory tree."""
    out = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(base, name)
            st = os.lstat(path)
            content = Path(path).read_bytes() if stat.S_ISREG(st.st_mode) else None
            out[os.path.relpath(path, root)] = (stat.S_IMODE(st.st_mode), content)
    return out


def _plaintext(archive, key):
    return pyrage.decrypt(Path(archive).read_bytes(), [pyrage.x25519.Identity.from_str(_secret(key))])


def _secret(key):
    return next(line for line in key[0].read_text().splitlines() if line.startswith("AGE-SECRET-KEY-1"))


def _reencrypt(archive, key, plaintext):
    with open(archive, "wb") as handle:
        handle.write(pyrage.encrypt(plaintext, [pyrage.x25519.Recipient.from_str(key[1])]))


def _rebuild(archive, key, change):
    """Rewrite the plaintext tar member by member through ``change(members) -> [(TarInfo, bytes)]``."""
    with tarfile.open(fileobj=io.BytesIO(_plaintext(archive, key))) as source:
        members = [(m, source.extractfile(m).read() if m.isreg() else None) for m in source.getmembers()]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in change(members):
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    _reencrypt(archive, key, out.getvalue())


def _member(plaintext, name):
    with tarfile.open(fileobj=io.BytesIO(bytes(plaintext))) as tar:
        return tar.getmember(name)


def _refused(archive, key):
    with pytest.raises(BackupIntegrityError) as caught:
        verify(archive, load_identities(str(key[0])))
    return caught.value


def test_a_round_trip_gives_back_every_part_with_its_modes(tmp_path, key, parts, backup):
    archive = backup["path"]
    assert os.path.basename(archive) == "island-backup-20261203T024333Z.tar.age"
    assert stat.S_IMODE(os.stat(archive).st_mode) == 0o600
    manifest = backup["manifest"]
    assert manifest["format"] == "island-backup" and manifest["format_version"] == 1
    assert manifest["created"] == "2026-12-03T02:43:33Z"
    assert manifest["island"] == {"name": "demo", "domain": "island.internal"}
    snapshot = next(p for p in manifest["parts"] if p["name"] == "etcd-snapshot")
    assert snapshot["kind"] == "file" and snapshot["size"] == len(SNAPSHOT)
    assert snapshot["sha256"] == hashlib.sha256(SNAPSHOT).hexdigest()

    identities = load_identities(str(key[0]))
    checked = verify(archive, identities)
    assert checked["changed"] is False and checked["parts"] == ["ca", "receipt", "etcd-snapshot"]
    assert (checked["sha256"], checked["size"]) == (backup["sha256"], backup["size"])
    assert checked["manifest_sha256"] == backup["manifest_sha256"]

    dest = tmp_path / "restore"
    result = extract(archive, str(dest), identities)
    assert result["changed"] is True and stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert _tree(dest / "parts" / "ca") == _tree(parts[0]["path"])
    assert (dest / "parts" / "etcd-snapshot").read_bytes() == SNAPSHOT
    assert json.loads((dest / "manifest.json").read_text()) == manifest
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".island-backup")] == []


def test_the_stock_age_tool_decrypts_it_and_tar_extracts_it_and_the_sums_match(tmp_path, key, backup):
    by_hand = tmp_path / "by-hand"
    by_hand.mkdir()
    age = subprocess.Popen(["age", "-d", "-i", str(key[0]), backup["path"]], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(by_hand)], stdin=age.stdout, check=True)
    age.stdout.close()
    assert age.wait() == 0
    names = sorted(os.listdir(by_hand))
    assert names == ["manifest.json", "manifest.json.sha256", "parts"]
    subprocess.run(["sha256sum", "--check", "--strict", "manifest.json.sha256"], cwd=by_hand, check=True)
    manifest = json.loads((by_hand / "manifest.json").read_text())
    assert manifest == backup["manifest"]
    checked = 0
    for part in manifest["parts"]:
        files = [("", part)] if part["kind"] == "file" else [(e["path"], e) for e in part["entries"]]
        for rel, entry in files:
            if entry.get("type", "file") != "file":
                continue
            path = by_hand / "parts" / part["name"] / rel if rel else by_hand / "parts" / part["name"]
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], path
            assert f"{stat.S_IMODE(path.stat().st_mode):04o}" == entry["mode"]
            checked += 1
    assert checked == 4


@pytest.mark.parametrize(
    ("member", "part"),
    [
        ("parts/receipt", "receipt"),
        ("parts/ca/sub/a.crt", "ca"),
        ("parts/ca/root.key", "ca"),
        ("parts/etcd-snapshot", "etcd-snapshot"),
    ],
)
def test_one_byte_changed_in_any_part_and_reencrypted_is_refused_naming_the_part(key, backup, member, part):
    plaintext = bytearray(_plaintext(backup["path"], key))
    info = _member(plaintext, member)
    plaintext[info.offset_data + info.size // 2] ^= 0x01
    _reencrypt(backup["path"], key, bytes(plaintext))
    error = _refused(backup["path"], key)
    assert error.problems == [error.problems[0]] and error.problems[0].startswith(
        f"part {part}: {member} has sha256"
    )
    assert f"part {part}" in str(error)


def test_a_changed_manifest_is_refused(key, backup):
    plaintext = bytearray(_plaintext(backup["path"], key))
    info = _member(plaintext, "manifest.json")
    offset = info.offset_data + bytes(plaintext[info.offset_data :]).index(b'"size": ') + len(b'"size": ')
    plaintext[offset] = ord("7") if plaintext[offset] != ord("7") else ord("8")
    _reencrypt(backup["path"], key, bytes(plaintext))
    assert "manifest.json does not match manifest.json.sha256" in str(_refused(backup["path"], key))


def test_a_missing_part_and_an_extra_part_are_refused_naming_them(key, backup):
    def change(members):
        kept = [(info, data) for info, data in members if info.name != "parts/receipt"]
        extra = tarfile.TarInfo("parts/extra")
        extra.size = 2
        return [*kept, (extra, b"x\n")]

    _rebuild(backup["path"], key, change)
    problems = _refused(backup["path"], key).problems
    assert problems == [
        "extra part extra: parts/extra is not in the manifest",
        "part receipt is missing from the archive",
    ]


def test_a_missing_file_of_a_directory_part_is_refused_naming_the_part(key, backup):
    _rebuild(
        backup["path"], key, lambda members: [(i, d) for i, d in members if i.name != "parts/ca/sub/a.crt"]
    )
    assert _refused(backup["path"], key).problems == [
        "part ca: 1 member(s) missing, parts/ca/sub/a.crt first"
    ]


def test_a_flipped_ciphertext_byte_is_refused_by_age(key, backup):
    data = bytearray(Path(backup["path"]).read_bytes())
    data[len(data) // 2] ^= 0x01
    with open(backup["path"], "wb") as handle:
        handle.write(data)
    with pytest.raises(BackupDecryptError, match=r"age refuses its content .*altered or damaged"):
        verify(backup["path"], load_identities(str(key[0])))


def test_the_wrong_identity_is_refused_with_a_clear_message(tmp_path, backup):
    other = tmp_path / "other.txt"
    _keygen(other)
    with pytest.raises(BackupDecryptError, match="the identity given is not one of the recipients"):
        verify(backup["path"], load_identities(str(other)))


@pytest.mark.parametrize("kind", ["traversal", "symlink", "device", "manifest-traversal"])
def test_traversal_links_and_devices_are_refused_and_extract_writes_nothing(tmp_path, key, backup, kind):
    def change(members):
        if kind == "manifest-traversal":  # the attacker rewrites the manifest and its sum too
            manifest = json.loads(members[0][1])
            manifest["parts"][0]["entries"][0]["path"] = "../../evil"
            data = island_backup.render_manifest(manifest)
            members[0][0].size, members[1][0].size = len(data), len(island_backup.manifest_sum_line(data))
            members[0:2] = [(members[0][0], data), (members[1][0], island_backup.manifest_sum_line(data))]
            return members
        bad = tarfile.TarInfo(
            {"traversal": "parts/ca/../../../evil", "symlink": "parts/ca/link"}.get(kind, "dev")
        )
        if kind == "traversal":
            bad.size = 5
            return [*members, (bad, b"evil\n")]
        bad.type, bad.linkname = (
            (tarfile.SYMTYPE, "/etc/shadow") if kind == "symlink" else (tarfile.CHRTYPE, "")
        )
        return [*members, (bad, None)]

    _rebuild(backup["path"], key, change)
    error = _refused(backup["path"], key)
    expected = {
        "traversal": "part ca: member 'parts/ca/../../../evil' has a path that leaves its directory",
        "symlink": "part ca: parts/ca/link is a link, device or other special member; refused",
        "device": "archive: dev is a link, device or other special member; refused",
        "manifest-traversal": "part ca: manifest.json entry '../../evil': a path that leaves its directory",
    }[kind]
    assert error.problems[0].startswith(expected)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(BackupIntegrityError):
        extract(backup["path"], str(tmp_path / "restore"), load_identities(str(key[0])))
    assert sorted(os.listdir(tmp_path)) == before
    assert not (tmp_path / "restore").exists() and not (tmp_path.parent / "evil").exists()


def test_extract_refuses_a_destination_that_is_not_empty(tmp_path, key, backup):
    dest = tmp_path / "restore"
    dest.mkdir()
    (dest / "keep").write_text("mine")
    with pytest.raises(BackupInputError, match="exists and is not an empty directory"):
        extract(backup["path"], str(dest), load_identities(str(key[0])))
    assert os.listdir(dest) == ["keep"]


def test_prune_keeps_the_newest_n_by_the_time_in_their_names(tmp_path):
    directory = tmp_path / "media"
    directory.mkdir()
    names = [f"island-backup-2026120{day}T010000Z.tar.age" for day in range(1, 6)]
    for name in [*names, "notes.txt", "island-backup-latest.tar.age"]:
        (directory / name).write_text("x")
    (directory / "island-backup-20261209T010000Z.tar.age").symlink_to(directory / "notes.txt")
    preview = prune(str(directory), 2, check_mode=True)
    assert preview["removed"] == names[2::-1] and len(os.listdir(directory)) == 8
    result = prune(str(directory), 2)
    assert result["changed"] is True and result["kept"] == names[:2:-1]
    assert sorted(os.listdir(directory)) == sorted(
        [*names[3:], "notes.txt", "island-backup-latest.tar.age", "island-backup-20261209T010000Z.tar.age"]
    )
    assert prune(str(directory), 2)["changed"] is False
    with pytest.raises(BackupInputError, match="keep at least 1"):
        prune(str(directory), 0)


def test_check_mode_writes_nothing(tmp_path, key, parts):
    out = tmp_path / "media"
    out.mkdir()
    preview = create(str(out), parts, [key[1]], now=NOW, check_mode=True)
    assert preview["changed"] is True and preview["path"].endswith("island-backup-20261203T024333Z.tar.age")
    assert [p["name"] for p in preview["manifest"]["parts"]] == ["ca", "receipt", "etcd-snapshot"]
    assert os.listdir(out) == []
    real = create(str(out), parts, [key[1]], now=NOW)
    dest = tmp_path / "restore"
    assert extract(real["path"], str(dest), load_identities(str(key[0])), check_mode=True)["changed"] is True
    assert not dest.exists()


def test_bad_inputs_are_refused_before_anything_is_written(tmp_path, key, parts):
    out = tmp_path / "media"
    out.mkdir()
    with pytest.raises(BackupInputError, match="recipient 1 is a private key") as caught:
        create(str(out), parts, [_secret(key)], now=NOW)
    assert _secret(key) not in str(caught.value)
    link = tmp_path / "state" / "ca" / "link"
    link.symlink_to("/etc/hostname")
    with pytest.raises(BackupInputError, match=f"part ca: {link} is a symbolic link"):
        create(str(out), parts, [key[1]], now=NOW)
    link.unlink()
    with pytest.raises(
        BackupInputError, match=r"part name 'CA' is not valid.*part name receipt is given twice"
    ):
        create(str(out), [{"name": "CA", "path": "x"}, parts[1], parts[1]], [key[1]], now=NOW)
    inside = tmp_path / "state" / "ca" / "backups"
    inside.mkdir()
    with pytest.raises(BackupInputError, match="lies inside part ca"):
        create(str(inside), parts, [key[1]], now=NOW)
    assert os.listdir(out) == [] and os.listdir(inside) == []


def test_an_identity_file_readable_by_others_is_refused(key):
    os.chmod(key[0], 0o644)
    with pytest.raises(BackupInputError, match=f"mode 0644; it holds a private key.*chmod 600 {key[0]}"):
        load_identities(str(key[0]))


def test_a_manifest_of_the_wrong_shape_is_refused_naming_the_fault(backup):
    good = backup["manifest"]
    assert island_backup.manifest_problems(good) == []

    def with_ca(**changes):
        return {**good, "parts": [{**good["parts"][0], **changes}, *good["parts"][1:]]}

    entries = sorted(good["parts"][0]["entries"], key=lambda entry: entry["type"] != "file")  # a file first
    cases = {
        "format_version 2": {**good, "format_version": 2},
        "no list of parts": {**good, "parts": "ca"},
        "part name None": {**good, "parts": [5]},
        "bad mode or source": with_ca(source=5),
        "neither file nor directory": with_ca(kind="link"),
        "bad size or sha256": with_ca(entries=[{**entries[0], "size": -1}, *entries[1:]]),
        "listed twice": with_ca(entries=[entries[0], entries[0]]),
        "does not match its entries": with_ca(entries=entries[1:]),
    }
    for fault, manifest in cases.items():
        problems = island_backup.manifest_problems(manifest)
        assert len(problems) == 1 and fault in problems[0], (fault, problems)


@pytest.mark.parametrize("fail_at", ["middle", "last flush"])
def test_a_full_disk_while_encrypting_is_an_error_even_in_the_last_flush(key, fail_at):
    """pyrage 1.4.0 drops its output buffer's last flush error (a Rust BufWriter dropped); not here."""
    recipients = island_backup.parse_recipients([key[1]])
    payload = os.urandom(4 * 64 * 1024 + 100)  # the last age chunk, 100 + 16 bytes, stays in pyrage's buffer

    class Full(io.RawIOBase):
        calls = 0

        def writable(self):
            return True

        def write(self, data):
            self.calls += 1
            if (fail_at == "middle" and self.calls == 3) or (fail_at == "last flush" and len(data) == 116):
                raise OSError(errno.ENOSPC, "No space left on device")
            return len(data)

    with pytest.raises(BackupInputError, match=r"cannot write media/x.tar.age \(.*No space left on device"):
        encrypt(lambda out: out.write(payload), Full(), recipients, "media/x.tar.age")


def test_an_ssh_ed25519_key_works_as_recipient_and_identity(tmp_path, parts):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    out = tmp_path / "media"
    out.mkdir()
    made = create(str(out), parts, [(tmp_path / "id_ed25519.pub").read_text()], now=NOW)
    assert verify(made["path"], load_identities(str(key)))["parts"] == ["ca", "receipt", "etcd-snapshot"]
    listing = subprocess.run(
        ["age", "-d", "-i", str(key), made["path"]], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(listing)) as tar:
        assert tar.getnames()[:2] == ["manifest.json", "manifest.json.sha256"]


def test_a_default_restore_leaves_the_parts_restored_onto_hosts_to_their_plays(tmp_path, key, parts):
    staging = tmp_path / "staging"
    (staging / "gitea" / "secrets").mkdir(parents=True)
    (staging / "gitea" / "gitea-dump.tar.gz").write_bytes(b"dump")
    (staging / "minio-apps").mkdir()
    (staging / "minio-apps" / "object").write_text("object\n")
    out = tmp_path / "media"
    out.mkdir()
    host_parts = [
        {"name": "gitea", "path": str(staging / "gitea")},
        {"name": "minio-apps", "path": str(staging / "minio-apps")},
    ]
    made = create(str(out), parts + host_parts, [key[1]], now=NOW)
    shutil.rmtree(tmp_path / "state")
    shutil.rmtree(staging)
    identities = load_identities(str(key[0]))
    preview = island_backup.restore(made["path"], identities, check_mode=True)
    assert preview["parts"] == ["ca", "receipt"]
    named = island_backup.restore(made["path"], identities, parts=["gitea"], check_mode=True)
    assert named["parts"] == ["gitea"]
    assert not staging.exists()
