"""The real kubectl (v1.35, tests/doubles/k3s/kubectl.pin) talks to the k3s double as to k3s.

`k3s kubectl` on a node runs the kubectl the double carries, staged into the data dir as k3s stages
its CLIs; an operator's kubectl on the controller reaches the same API through the kubeconfig. Both
get nodes, wait for Ready, cordon, drain (pods evicted through the eviction API) and uncordon.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from tests.support.doubles.k3s import Node, run, wait_for, write_yaml
from tests.support.doubles.k3s import controller_kubectl as kubectl
from tests.support.net import free_port

PIN = dict(
    line.split("=", 1)
    for line in (Path(__file__).parent / "kubectl.pin").read_text().splitlines()
    if line and not line.startswith("#")
)


def pod(name: str, node: str, owner: str | None) -> dict:
    metadata: dict = {"name": name, "namespace": "default"}
    if owner:
        metadata["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "controller": True,
             "uid": "5f0e0d0c-0000-4000-8000-000000000001"}
        ]  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "registry.island.test/app:1"}]},
    }


@pytest.fixture
def cluster(tmp_path):
    """A server s1 and an agent a1 of the double, both Ready; NotReady 3 s after a missed heartbeat."""
    port = free_port()
    server = Node(
        tmp_path,
        "s1",
        "server",
        {
            "cluster-init": True,
            "token": "t0k",
            "node-name": "s1",
            "node-ip": "127.0.0.1",
            "bind-address": "127.0.0.1",
            "https-listen-port": port,
            "write-kubeconfig": str(tmp_path / "s1" / "k3s.yaml"),
            "private-registry": str(tmp_path / "absent.yaml"),
            "kube-controller-manager-arg": ["node-monitor-grace-period=3s"],
            "kubelet-arg": ["node-status-update-frequency=500ms"],
        },
    ).start()
    agent = Node(
        tmp_path,
        "a1",
        "agent",
        {
            "server": f"https://127.0.0.1:{port}",
            "token": "t0k",
            "node-name": "a1",
            "node-ip": "127.0.0.1",
            "kubelet-arg": ["node-status-update-frequency=500ms"],
            "private-registry": str(tmp_path / "absent.yaml"),
        },
    )
    try:
        wait_for(server.kubeconfig.exists, what="kubeconfig")
        agent.start()
        yield server, agent
    finally:
        agent.stop()
        server.stop()


def test_k3s_kubectl_is_the_real_kubectl_staged_in_the_data_dir(tmp_path):
    config = write_yaml(tmp_path / "config.yaml", {"data-dir": str(tmp_path / "data")})
    result = run("kubectl", "version", "--client", "-o", "json", env={"K3S_CONFIG_FILE": str(config)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["clientVersion"]["gitVersion"] == PIN["kubectl_version"]
    # staged as k3s stages its CLIs: <data-dir>/data/<hash>/bin/kubectl, the pinned binary
    (staged,) = (tmp_path / "data" / "data").glob("*/bin/kubectl")
    assert hashlib.sha256(staged.read_bytes()).hexdigest() == PIN["kubectl_sha256"]


@pytest.mark.slow
def test_the_controllers_kubectl_gets_waits_cordons_drains_and_uncordons(cluster):
    server, agent = cluster
    config = server.kubeconfig
    # a1 may not be registered yet when `--all` lists: wait for both names first
    wait_for(
        lambda: set(kubectl(config, "get", "nodes", "-o", "name").stdout.split()) == {"node/a1", "node/s1"}
    )
    waited = kubectl(config, "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=30s")
    assert waited.returncode == 0, waited.stderr
    assert sorted(waited.stdout.splitlines()) == ["node/a1 condition met", "node/s1 condition met"]
    table = kubectl(config, "get", "nodes").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert {line.split()[0]: line.split()[1] for line in table[1:]} == {"a1": "Ready", "s1": "Ready"}
    for path in ("/healthz", "/livez", "/readyz"):
        assert kubectl(config, "get", "--raw", path).stdout == "ok"

    # two pods on a1: one a ReplicaSet manages, one no controller manages
    for manifest in (pod("web-1", "a1", "web"), pod("bare", "a1", None)):
        created = kubectl(config, "create", "--validate=false", "-f", "-", stdin=json.dumps(manifest))
        assert created.returncode == 0, created.stderr
    assert kubectl(config, "get", "pods", "-o", "name").stdout.split() == ["pod/bare", "pod/web-1"]

    # kubectl drain refuses the unmanaged pod without --force, as upstream, and evicts nothing
    refused = kubectl(config, "drain", "a1", "--ignore-daemonsets", "--timeout=30s")
    assert refused.returncode == 1
    assert "cannot delete Pods that declare no controller (use --force to override): default/bare" in (
        refused.stderr
    )
    assert kubectl(config, "get", "node", "a1", "-o", "jsonpath={.spec.unschedulable}").stdout == "true"
    drained = kubectl(config, "drain", "a1", "--ignore-daemonsets", "--force", "--timeout=30s")
    assert drained.returncode == 0, drained.stderr
    assert "Warning: deleting Pods that declare no controller: default/bare" in drained.stderr
    assert "evicting pod default/web-1" in drained.stdout
    assert "pod/web-1 evicted" in drained.stdout
    assert "node/a1 drained" in drained.stdout
    assert kubectl(config, "get", "pods", "-o", "name").stdout == ""
    status = kubectl(config, "get", "nodes", "a1").stdout.splitlines()[1].split()[1]
    assert status == "Ready,SchedulingDisabled"
    assert kubectl(config, "uncordon", "a1").stdout == "node/a1 uncordoned\n"

    # the watch sees the agent go: the node lifecycle controller marks Ready Unknown after the grace
    agent.stop()
    gone = kubectl(config, "wait", "--for=condition=Ready=Unknown", "node/a1", "--timeout=30s")
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout == "node/a1 condition met\n"


def test_the_api_wants_the_kubeconfigs_client_certificate(cluster, tmp_path):
    server, _ = cluster
    doc = yaml.safe_load(server.kubeconfig.read_text())
    doc["users"][0]["user"] = {"token": "K10not-the-admin-certificate"}
    anonymous = write_yaml(tmp_path / "anonymous.yaml", doc)
    result = kubectl(anonymous, "get", "nodes")
    assert result.returncode == 1
    assert "error: You must be logged in to the server" in result.stderr
    # and the cluster CA is verified: a kubeconfig naming another CA is refused by kubectl
    other = base64.b64encode(Path("/etc/ssl/certs/ca-certificates.crt").read_bytes()).decode()
    doc = yaml.safe_load(server.kubeconfig.read_text())
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = other
    wrong_ca = write_yaml(tmp_path / "wrong-ca.yaml", doc)
    assert "x509" in kubectl(wrong_ca, "get", "nodes").stderr
