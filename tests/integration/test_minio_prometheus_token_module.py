"""island_minio_prometheus_token through Ansible: the token is written once 0600 on the controller,
a rerun changes nothing, check mode writes nothing, and neither key nor token reaches the output."""

from __future__ import annotations

import json
import os
import stat

from tests.support.playbook import ansible_doc, run_json_play

SECRET = "root-secret-for-the-test"


def _play(tmp_path, path, secret=SECRET):
    play = tmp_path / "play.yml"
    task = {
        "name": "Prometheus's token for MinIO",
        "island.installer.island_minio_prometheus_token": {
            "path": str(path),
            "access_key": "island-root",
            "secret_key": secret,
        },
    }
    play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]))
    return play


def test_the_token_is_written_once_and_a_rerun_changes_nothing(tmp_path):
    path = tmp_path / "secrets" / "minio-prometheus-token"
    path.parent.mkdir(mode=0o700)
    proc, results = run_json_play(_play(tmp_path, path), "--check")
    assert proc.returncode == 0, proc.stdout
    assert results[0]["changed"] and not path.exists()
    proc, results = run_json_play(_play(tmp_path, path))
    assert proc.returncode == 0, proc.stdout
    assert results[0]["changed"] and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    token = path.read_text()
    assert token.count(".") == 2 and token not in proc.stdout and SECRET not in proc.stdout
    proc, results = run_json_play(_play(tmp_path, path))
    assert not results[0]["changed"] and path.read_text() == token
    proc, results = run_json_play(_play(tmp_path, path, secret="a-new-root-secret"))
    assert results[0]["changed"] and "current secret key" in results[0]["reason"]
    assert path.read_text() != token


def test_module_documentation_renders_with_ansible_doc():
    proc = ansible_doc("--json", "island_minio_prometheus_token")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["island_minio_prometheus_token"]["doc"]
    assert doc["options"]["secret_key"]["no_log"] is True
