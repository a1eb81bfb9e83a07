"""The registry's metrics as the registry role configures them, read by the real distribution 2.8.2.

The role's configuration of both processes (roles/registry/vars/main.yml, rendered by Ansible with
the island model of an inventory with and without a monitoring host) is handed to Debian's
docker-registry: its debug server, on 127.0.0.1 only, serves the Prometheus metrics at the path the
model's scrape job names, and pprof beside them (which is why the TLS front, not the debug server,
faces the island); the registry's own TLS port serves no metrics.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import yaml

from tests.support.net import free_port
from tests.support.oci import REGISTRY_BIN, make_pki
from tests.support.playbook import ROOT, TEST_ISLAND, local_inventory, run_playbook

needs_docker_registry = pytest.mark.skipif(
    not os.access(REGISTRY_BIN, os.X_OK), reason="needs Debian's docker-registry"
)
GROUPS = {
    "island_dns": ["reg1"],
    "island_registry": ["reg1"],
    "island_minio": ["reg1"],
    "island_gitea": ["reg1"],
    "k3s_servers": ["reg1"],
}


def _rendered(tmp_path, groups) -> dict:
    """The registry role's config.yml and config-push.yml for reg1, as the role renders them."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        yaml.safe_dump(local_inventory(groups, {"reg1": {"island_address": "10.98.0.10"}}, **TEST_ISLAND))
    )
    out = tmp_path / "rendered.json"
    play = [
        {
            "name": "The registry role's configuration is rendered",
            "hosts": "reg1",
            "gather_facts": False,
            "vars_files": [
                str(ROOT / "roles/registry/defaults/main.yml"),
                str(ROOT / "roles/registry/vars/main.yml"),
            ],
            "vars": {
                "island_secrets_dir": str(tmp_path),
                "registry_secrets": {"http": "h", "s3": ""},
                "island": "{{ groups | island.installer.island_model(hostvars, island_domain) }}",
            },
            "tasks": [
                {
                    "name": "Both processes' configurations are written",
                    "ansible.builtin.copy": {
                        "dest": str(out),
                        "mode": "0600",
                        "content": (
                            "{{ {'nodes': registry_config"
                            " | combine(registry_config_for_nodes, recursive=true),"
                            " 'push': registry_config | combine(registry_config_for_push, recursive=true),"
                            " 'jobs': _registry_metrics_jobs} | to_json }}"
                        ),
                    },
                }
            ],
        }
    ]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    result = run_playbook(path, inventory=inventory)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text())


def test_without_a_monitoring_host_the_registry_runs_no_debug_server(tmp_path):
    rendered = _rendered(tmp_path, GROUPS)
    assert "debug" not in rendered["nodes"]["http"]
    assert "debug" not in rendered["push"]["http"]
    assert rendered["jobs"] == []


def _get(url, context=None):
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:  # noqa: S310 - test URLs
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


@needs_docker_registry
def test_each_process_serves_its_metrics_on_loopback_only_as_the_role_configures_it(tmp_path):
    rendered = _rendered(tmp_path, {**GROUPS, "island_monitoring": ["reg1"]})
    # The role's settings: loopback, each process its own port (the model's metrics ports).
    assert rendered["nodes"]["http"]["debug"] == {
        "addr": "127.0.0.1:5002",
        "prometheus": {"enabled": True, "path": "/metrics"},
    }
    assert rendered["push"]["http"]["debug"]["addr"] == "127.0.0.1:5003"
    assert [job["job"] for job in rendered["jobs"]] == ["registry", "registry_push"]

    # Debian's docker-registry reads them: the same configuration, on this machine's free ports.
    pki = make_pki(tmp_path / "pki")
    config = rendered["nodes"]
    port, debug_port = free_port(), free_port()
    config["http"] |= {
        "addr": f"127.0.0.1:{port}",
        "tls": {"certificate": str(pki["cert"]), "key": str(pki["key"])},
    }
    config["http"]["debug"]["addr"] = f"127.0.0.1:{debug_port}"
    config["storage"]["filesystem"]["rootdirectory"] = str(tmp_path / "storage")
    config["auth"]["htpasswd"]["path"] = str(tmp_path / "htpasswd")
    (tmp_path / "htpasswd").write_text("")
    (tmp_path / "config.yml").write_text(json.dumps(config))
    log = (tmp_path / "registry.log").open("wb")
    proc = subprocess.Popen(
        [REGISTRY_BIN, "serve", str(tmp_path / "config.yml")], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        status, body = 0, ""
        while time.monotonic() < deadline and status != 200:
            try:
                status, body = _get(f"http://127.0.0.1:{debug_port}{rendered['jobs'][0]['path']}")
            except OSError:
                time.sleep(0.1)
        assert status == 200, (tmp_path / "registry.log").read_text()
        assert "# TYPE registry_" in body
        # pprof is there too: the debug server must not face the island.
        assert _get(f"http://127.0.0.1:{debug_port}/debug/pprof/")[0] == 200
        # The registry's own port serves the API only.
        context = ssl.create_default_context(cafile=str(pki["ca"]))
        assert _get(f"https://127.0.0.1:{port}/metrics", context)[0] == 404
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
