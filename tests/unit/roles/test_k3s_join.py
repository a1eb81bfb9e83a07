"""Nodes join with the secure token (issue 15, item 11): roles/k3s/tasks/join.yml reads the first
server's K10<sha256 of the cluster CA>::server:<token> and ::node:<agent token> files, and refuses
anything else (the short token, which pins no CA, or another cluster's token) with a message that
names the file and the host, never the token."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support.playbook import run_local_tasks

CA_HASH = hashlib.sha256(b"-----BEGIN CERTIFICATE-----\ncluster CA\n").hexdigest()


def _tasks(data_dir: Path) -> list:
    return [
        {
            "name": "The join tokens are read through the k3s role",
            "ansible.builtin.include_role": {"name": "k3s", "tasks_from": "join"},
            "vars": {
                "k3s_data_dir": str(data_dir),
                "k3s_first_server": "localhost",
                "island_secrets_dir": "/secrets",
                "k3s_secrets": {"token": "server-secret", "agent_token": "agent-secret"},
            },
        },
        {
            "name": "The tokens are shown (test only)",
            "ansible.builtin.debug": {"msg": "JOIN={{ k3s_join_tokens.server }}|{{ k3s_join_tokens.agent }}"},
        },
    ]


def _data_dir(tmp_path: Path, token: str, agent_token: str) -> Path:
    server = tmp_path / "data" / "server"
    server.mkdir(parents=True)
    (server / "token").write_text(token + "\n")
    (server / "agent-token").write_text(agent_token + "\n")
    return tmp_path / "data"


def test_the_nodes_join_with_the_tokens_pinned_to_the_cluster_ca(tmp_path):
    data = _data_dir(tmp_path, f"K10{CA_HASH}::server:server-secret", f"K10{CA_HASH}::node:agent-secret")
    result = run_local_tasks(tmp_path, _tasks(data))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"JOIN=K10{CA_HASH}::server:server-secret|K10{CA_HASH}::node:agent-secret" in result.stdout


def test_a_short_token_that_pins_no_ca_is_refused_without_showing_it(tmp_path):
    data = _data_dir(tmp_path, "server-secret", f"K10{CA_HASH}::node:agent-secret")
    result = run_local_tasks(tmp_path, _tasks(data))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert f"{data}/server/token or agent-token on localhost" in output
    assert "K10<sha256 of the cluster CA>::server:<token>" in output
    assert "server-secret" not in output
    assert "JOIN=" not in output


def test_another_clusters_token_is_refused(tmp_path):
    data = _data_dir(tmp_path, f"K10{CA_HASH}::server:other-secret", f"K10{CA_HASH}::node:agent-secret")
    result = run_local_tasks(tmp_path, _tasks(data))
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output
    assert "holds another token than /secrets/k3s-token" in output
    assert "other-secret" not in output
