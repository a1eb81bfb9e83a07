"""island_secret: secrets generated once (0600 in a 0700 directory), credentials another role made
read, a missing one named before anything changes, nothing written in check mode."""

from __future__ import annotations

import os
import stat

import pytest
from ansible_collections.island.installer.plugins.module_utils.island_secret import (
    ALPHABET,
    SecretError,
    converge,
)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_missing_secret_is_generated_once_0600_in_a_0700_directory(tmp_path):
    secrets_dir = tmp_path / "secrets"
    first = converge(secrets_dir, ["k3s-token", "k3s-agent-token"], length=40)
    assert first["changed"] and first["created"] == ["k3s-token", "k3s-agent-token"]
    token = first["secrets"]["k3s-token"]
    assert len(token) == 40 and set(token) <= set(ALPHABET)
    assert token != first["secrets"]["k3s-agent-token"]
    assert _mode(secrets_dir) == 0o700 and _mode(secrets_dir / "k3s-token") == 0o600
    assert (secrets_dir / "k3s-token").read_text() == token
    again = converge(secrets_dir, ["k3s-token", "k3s-agent-token"], length=40)
    assert not again["changed"] and again["created"] == []
    assert again["secrets"] == first["secrets"]


def test_a_credential_another_role_made_is_read_and_a_missing_one_named_with_the_callers_hint(tmp_path):
    (tmp_path / "minio-user-k3s-etcd").write_text("s3cr3t-key\n")
    os.chmod(tmp_path, 0o700)
    read = converge(tmp_path, [], ["minio-user-k3s-etcd"])
    assert read["secrets"] == {"minio-user-k3s-etcd": "s3cr3t-key"}
    assert (read["changed"], read["created"], read["missing"]) == (False, [], [])
    with pytest.raises(
        SecretError, match=r"minio-user-registry does not exist on the controller: run the minio"
    ):
        converge(tmp_path, ["k3s-token"], ["minio-user-registry"], missing="run the minio role first")
    # Refused before anything changed: the secret to generate was not written.
    assert not (tmp_path / "k3s-token").exists()


def test_check_mode_writes_nothing_and_a_missing_secret_reads_empty(tmp_path):
    secrets_dir = tmp_path / "secrets"
    result = converge(secrets_dir, ["registry-http-secret"], ["minio-user-x"], check_mode=True)
    assert result["changed"] and result["created"] == ["registry-http-secret"]
    assert result["secrets"] == {"registry-http-secret": "", "minio-user-x": ""}
    assert not secrets_dir.exists()


def test_the_directory_is_made_private_again(tmp_path):
    os.chmod(tmp_path, 0o755)  # noqa: S103 - the loose directory the module must tighten
    (tmp_path / "a-secret").write_text("x" * 40)
    assert converge(tmp_path, ["a-secret"])["changed"]
    assert _mode(tmp_path) == 0o700


@pytest.mark.parametrize("name", ["../escape", "sub/dir", ".hidden", "", "a" * 200])
def test_a_name_that_is_not_a_plain_file_name_is_refused(tmp_path, name):
    with pytest.raises(SecretError, match="not a plain file name"):
        converge(tmp_path, [name])
    with pytest.raises(SecretError, match="not a plain file name"):
        converge(tmp_path, [], [name])


def test_a_secret_that_is_a_symbolic_link_or_a_fifo_is_refused_without_blocking(tmp_path):
    (tmp_path / "elsewhere").write_text("x")
    os.symlink(tmp_path / "elsewhere", tmp_path / "linked")
    os.mkfifo(tmp_path / "fifo")
    for name in ("linked", "fifo"):
        with pytest.raises(SecretError, match="is not a regular file"):
            converge(tmp_path, [name])


def test_a_short_length_is_refused():
    with pytest.raises(SecretError, match="too short"):
        converge("/nonexistent", ["x"], length=8, check_mode=True)


def test_without_missing_fails_a_missing_credential_is_returned_for_an_assert_and_nothing_is_written(
    tmp_path,
):
    result = converge(
        tmp_path, ["k3s-token"], ["minio-user-k3s-etcd"], missing="run minio", missing_fails=False
    )
    assert result["missing"] == [str(tmp_path / "minio-user-k3s-etcd")]
    assert result["msg"].endswith("minio-user-k3s-etcd does not exist on the controller: run minio")
    assert result["secrets"] == {} and not result["changed"]
    assert not (tmp_path / "k3s-token").exists()
