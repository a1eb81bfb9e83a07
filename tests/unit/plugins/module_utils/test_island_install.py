"""Files in place in one module call (module_utils/island_install, issue 16): directories, rendered
files, bundle copies checked against the lock, owners and modes, retired files pruned, files read
back; check mode changes nothing and diff mode shows what would change."""

from __future__ import annotations

import hashlib
import os

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_install import InstallError, converge
from ansible_collections.island.installer.plugins.module_utils.island_io import FileAttributeError


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _content(dest, text, mode="0644"):
    return {"dest": str(dest), "content": text, "sha256": _sha(text.encode()), "mode": mode}


def test_a_rendered_file_and_its_directory_are_made_then_a_rerun_changes_nothing(tmp_path):
    target = tmp_path / "etc" / "unit.service"
    first = converge([{"path": str(target.parent), "mode": "0750"}], [_content(target, "[Unit]\n")], [])
    assert first["changed"]
    assert first["replaced"] == [str(target)]
    assert target.read_text() == "[Unit]\n"
    assert target.stat().st_mode & 0o7777 == 0o644
    assert target.parent.stat().st_mode & 0o7777 == 0o750
    again = converge([{"path": str(target.parent), "mode": "0750"}], [_content(target, "[Unit]\n")], [])
    assert not again["changed"]
    assert again["changed_files"] == [] and again["replaced"] == []


def test_a_mode_set_right_is_a_change_but_not_a_replaced_content(tmp_path):
    target = tmp_path / "tool"
    target.write_text("same\n")
    target.chmod(0o600)
    result = converge([], [_content(target, "same\n", mode="0755")], [])
    assert result["changed"] and result["changed_files"] == [str(target)]
    assert result["replaced"] == []
    assert result["files"][0]["reason"] == "mode 0600 -> 0755"
    assert target.stat().st_mode & 0o7777 == 0o755


def test_check_mode_reports_every_change_with_its_diff_and_writes_nothing(tmp_path):
    target = tmp_path / "unit.service"
    target.write_text("ExecStart=/old\n")
    gone = tmp_path / "island-root-r1.crt"
    gone.write_text("old root\n")
    result = converge(
        [{"path": str(tmp_path / "new-dir")}],
        [_content(target, "ExecStart=/new\n")],
        [],
        check_mode=True,
        diff=True,
        prune=[{"path": str(tmp_path), "pattern": "island-root-r*.crt"}],
    )
    assert result["changed"]
    assert target.read_text() == "ExecStart=/old\n"
    assert gone.exists() and not (tmp_path / "new-dir").exists()
    diffs = {d["before_header"]: d for d in result["diff"]}
    assert diffs[str(target)]["before"] == "ExecStart=/old\n"
    assert diffs[str(target)]["after"] == "ExecStart=/new\n"
    assert diffs[str(gone)] == {
        "before_header": str(gone),
        "after_header": str(gone),
        "before": "present\n",
        "after": "",
    }
    assert "directory (absent)" in diffs[str(tmp_path / "new-dir")]["after"]


def test_prune_removes_only_matching_files_that_are_not_placed(tmp_path):
    keep = tmp_path / "island-root-r2.crt"
    retired = tmp_path / "island-root-r1.crt"
    retired.write_text("retired\n")
    other = tmp_path / "someone-elses.crt"
    other.write_text("not ours\n")
    result = converge(
        [],
        [_content(keep, "current\n")],
        [],
        prune=[{"path": str(tmp_path), "pattern": "island-root-r*.crt"}],
    )
    assert result["pruned"] == [str(retired)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["island-root-r2.crt", "someone-elses.crt"]


def test_a_bundle_file_not_on_the_host_asks_for_a_transfer_then_goes_live_from_its_checked_copy(tmp_path):
    dest = tmp_path / "bin" / "tool"
    dest.parent.mkdir()
    staged = tmp_path / "staged"
    staged.write_bytes(b"binary\n")
    entry = {"dest": str(dest), "src": "bin/tool", "sha256": _sha(b"binary\n"), "mode": "0755"}
    asked = converge([], [dict(entry)], [])
    assert asked["transfer"] == [str(dest)] and not dest.exists()
    placed = converge([], [dict(entry, staged=str(staged))], [])
    assert placed["replaced"] == [str(dest)] and placed["transfer"] == []
    assert dest.read_bytes() == b"binary\n" and dest.stat().st_mode & 0o7777 == 0o755
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tool"]


def test_a_copy_that_is_not_the_locks_never_goes_live_and_leaves_nothing_behind(tmp_path):
    dest = tmp_path / "tool"
    dest.write_bytes(b"old\n")
    staged = tmp_path / "staged"
    staged.write_bytes(b"tampered\n")
    entry = {"dest": str(dest), "src": "bin/tool", "sha256": _sha(b"verified\n"), "staged": str(staged)}
    with pytest.raises(InstallError) as err:
        converge([], [entry], [])
    assert f"has sha256 {_sha(b'tampered' + bytes([10]))}" in str(err.value)
    assert f"the bundle's lock says {_sha(b'verified' + bytes([10]))}" in str(err.value)
    assert dest.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["staged", "tool"]


def test_a_link_at_the_live_path_is_replaced_by_the_file_not_followed(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("[Unit]\n")
    target = tmp_path / "unit.service"
    os.symlink(elsewhere, target)
    result = converge([], [_content(target, "[Unit]\n")], [])
    assert result["replaced"] == [str(target)]
    assert not target.is_symlink() and target.read_text() == "[Unit]\n"
    assert elsewhere.read_text() == "[Unit]\n"


def test_files_are_read_back_and_a_missing_one_reads_as_none(tmp_path):
    record = tmp_path / "k3s.json"
    record.write_text('{"version": "v1.36.0+k3s1"}\n')
    result = converge([], [], [str(record), str(tmp_path / "absent.json")])
    assert result["read"] == {
        str(record): '{"version": "v1.36.0+k3s1"}\n',
        str(tmp_path / "absent.json"): None,
    }
    assert not result["changed"]


def test_an_unknown_owner_or_a_bad_mode_is_named(tmp_path):
    with pytest.raises(FileAttributeError, match=r"/f: user 'no-such-user' does not exist on this host"):
        converge([], [dict(_content(tmp_path / "f", "x"), owner="no-such-user")], [])
    with pytest.raises(FileAttributeError, match=r"/f: mode 'rwx' must be octal"):
        converge([], [_content(tmp_path / "f", "x", mode="rwx")], [])
    (tmp_path / "plain").write_text("")
    with pytest.raises(InstallError, match=r"exists and is not a directory"):
        converge([{"path": str(tmp_path / "plain")}], [], [])
