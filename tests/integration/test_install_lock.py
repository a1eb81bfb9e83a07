"""A file of the bundle goes live on a host only once its sha256 THERE is the lock's (issue 15, item 8):
island_install (the roles' one way to put a bundle file in place) stages the bundle's file beside its
place, checks the staged copy against the lock on the host, and renames it into place. A bundle file
changed after verification never reaches the live path, and leaves no staged copy behind."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support.playbook import run_local_tasks


def _tasks(bundle: Path, dest: Path, lock_sha256: str) -> list:
    return [
        {
            "name": "The file is installed from the bundle",
            "island_install": {
                "bundle_dir": str(bundle),
                "lock": [{"path": "bin/tool", "sha256": lock_sha256, "size": 1}],
                "files": [{"src": "bin/tool", "dest": str(dest), "mode": "0755"}],
            },
            "register": "_installed",
        },
        {
            "name": "The result is shown",
            "ansible.builtin.debug": {"msg": "CHANGED={{ _installed.replaced | length > 0 }}"},
        },
    ]


def _setup(tmp_path: Path, content: bytes) -> tuple[Path, Path]:
    bundle = tmp_path / "bundle"
    (bundle / "bin").mkdir(parents=True)
    (bundle / "bin" / "tool").write_bytes(content)
    live = tmp_path / "live"
    live.mkdir()
    return bundle, live / "tool"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_file_matching_the_lock_goes_live_with_its_mode_and_a_rerun_changes_nothing(tmp_path):
    bundle, dest = _setup(tmp_path, b"new binary\n")
    first = run_local_tasks(tmp_path, _tasks(bundle, dest, _sha256(b"new binary\n")))
    assert first.returncode == 0, first.stdout + first.stderr
    assert dest.read_bytes() == b"new binary\n"
    assert dest.stat().st_mode & 0o7777 == 0o755
    assert "CHANGED=True" in first.stdout
    assert list(dest.parent.iterdir()) == [dest]

    again = run_local_tasks(tmp_path, _tasks(bundle, dest, _sha256(b"new binary\n")))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "CHANGED=False" in again.stdout
    assert "changed=0" in again.stdout


def test_a_bundle_file_changed_after_verification_never_replaces_the_live_file(tmp_path):
    bundle, dest = _setup(tmp_path, b"tampered binary\n")
    dest.write_bytes(b"old binary\n")
    lock = _sha256(b"verified binary\n")
    result = run_local_tasks(tmp_path, _tasks(bundle, dest, lock))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert f"the bundle's lock says {lock}" in output
    assert _sha256(b"tampered binary\n") in output
    assert "was left as it was" in output
    # the live file is the old one, and the staged copy is gone
    assert dest.read_bytes() == b"old binary\n"
    assert list(dest.parent.iterdir()) == [dest]


def test_check_mode_reports_the_change_and_writes_nothing(tmp_path):
    bundle, dest = _setup(tmp_path, b"new binary\n")
    dest.write_bytes(b"old binary\n")
    result = run_local_tasks(tmp_path, _tasks(bundle, dest, _sha256(b"new binary\n")), "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CHANGED=True" in result.stdout
    assert dest.read_bytes() == b"old binary\n"
    assert list(dest.parent.iterdir()) == [dest]
