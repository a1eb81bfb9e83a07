"""The k3s double refuses what k3s refuses, renders containerd hosts.toml as k3s does, and runs a
cluster of servers and agents that register over HTTPS with the token.

Every process runs under /usr/bin/python3 (the interpreter the double has on a Debian 12 node), on
127.0.0.1 with free ports, and with its own config file and data dir.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import socket
import stat
import subprocess
import threading
import tomllib
import typing
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from tests.bundle.testbundle import double_binary
from tests.support.doubles import run_double
from tests.support.doubles.k3s import (
    DOUBLE,
    Node,
    cli_env,
    messages,
    run,
    server_config,
    wait_for,
    write_yaml,
)
from tests.support.doubles.minio import ROOT_PASSWORD as MINIO_ROOT_PASSWORD
from tests.support.doubles.minio import ROOT_USER as MINIO_ROOT_USER
from tests.support.doubles.minio import s3_client, tls_double
from tests.support.net import free_port
from tests.support.pki import server_pki


@pytest.fixture
def nodes(tmp_path):
    started: list[Node] = []

    def make(name: str, command: str, config: dict) -> Node:
        node = Node(tmp_path, name, command, config)
        started.append(node)
        return node

    yield make
    for node in started:
        node.stop()


def node_table(node: Node) -> dict[str, list[str]]:
    result = node.kubectl("get", "nodes")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    return {line.split()[0]: line.split()[1:] for line in lines[1:]}


# --- command line and config.yaml ---------------------------------------------------------------


def test_version_prints_the_pinned_k3s_and_go_versions():
    result = run("--version")
    assert result.returncode == 0
    first, second = result.stdout.splitlines()
    assert first.startswith("k3s version v1.36.3+k3s1 (")
    assert second.startswith("go version go1.")


def test_kubectl_symlink_runs_the_kubectl_command(tmp_path):
    # install.sh links /usr/local/bin/kubectl to k3s; the double dispatches on its name
    (tmp_path / "kubectl").symlink_to(DOUBLE)
    result = run_double(
        "k3s",
        ["--kubeconfig", str(tmp_path / "absent.yaml"), "get", "nodes"],
        executable=tmp_path / "kubectl",
        env=cli_env(),
    )
    assert result.returncode == 1
    assert f"error: stat {tmp_path / 'absent.yaml'}: no such file or directory" in result.stderr


def test_server_skips_an_unknown_config_key_with_k3s_warning(tmp_path):
    # k3s configfilearg strips config keys the server command does not define, with a warning.
    # A bad value for a real key afterwards makes the run end early, so nothing is started.
    config = write_yaml(tmp_path / "config.yaml", {"no-such-key": True, "https-listen-port": "x"})
    result = run("server", "--config", str(config), "--data-dir", str(tmp_path / "data"))
    assert "Unknown flag --no-such-key found in config.yaml, skipping" in messages(result.stderr)
    assert 'invalid value "x" for flag -https-listen-port: parse error' in messages(result.stderr)
    assert result.returncode == 1


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("no-such-key", "1"),
        ("cluster-init", True),
        ("tls-san", ["api.island.test"]),
        ("write-kubeconfig-mode", "0644"),
    ],
)
def test_agent_refuses_unknown_and_server_only_config_keys(tmp_path, key, value):
    # `agent` has no ValidFlags entry in configfilearg, so its config keys reach the flag parser.
    config = write_yaml(
        tmp_path / "config.yaml", {"server": "https://127.0.0.1:1", "token": "secret", key: value}
    )
    result = run("agent", "--config", str(config), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert f"flag provided but not defined: -{key}" in messages(result.stderr)
    assert "level=fatal" in result.stderr


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"cluster-init": "maybe"}, 'invalid boolean value "maybe" for -cluster-init'),
        (
            {"secrets-encryption": {"enabled": True}},
            'invalid boolean value "map[enabled:true]" for -secrets-encryption',
        ),
        (
            {"https-listen-port": "6443/tcp"},
            'invalid value "6443/tcp" for flag -https-listen-port: parse error',
        ),
        ({"etcd-snapshot-retention": "five"}, 'invalid value "five" for flag -etcd-snapshot-retention'),
        ({"etcd-s3-timeout": "5 minutes"}, 'invalid value "5 minutes" for flag -etcd-s3-timeout'),
        ({"node-label": ["no-equals-sign"]}, "invalid node labels: 'no-equals-sign'"),
        ({"node-taint": ["dedicated=infra:Sometimes"]}, "invalid taint spec"),
        ({"server": "http://10.0.0.1:6443", "token": "t"}, "must be https://<host>:<port>"),
        ({"server": "https://10.0.0.1", "token": "t"}, "must be https://<host>:<port>"),
        ({"server": "https://10.0.0.1:6443"}, "--token is required"),
        ({"token": "K10abc::server"}, "failed to normalize server token"),
    ],
)
def test_server_refuses_ill_typed_or_inconsistent_config(tmp_path, config, message):
    path = write_yaml(tmp_path / "config.yaml", config)
    result = run("server", "--config", str(path), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1, result.stderr
    assert message in messages(result.stderr)
    assert not (tmp_path / "data" / "server" / "token").exists()


def test_agent_requires_server_and_token(tmp_path):
    no_server = write_yaml(tmp_path / "a.yaml", {"token": "secret"})
    no_token = write_yaml(tmp_path / "b.yaml", {"server": "https://127.0.0.1:6443"})
    assert "--server is required" in messages(run("agent", "--config", str(no_server)).stderr)
    assert "--token is required" in messages(run("agent", "--config", str(no_token)).stderr)


def test_unknown_command_line_flags_are_fatal_for_the_server_too(tmp_path):
    result = run("server", "--data-dir", str(tmp_path / "data"), "--bogus")
    assert result.returncode == 1
    assert "flag provided but not defined: -bogus" in messages(result.stderr)


def test_config_dropins_are_read_after_config_yaml(tmp_path):
    config = write_yaml(tmp_path / "config.yaml", {"node-label": ["a=b"]})
    dropins = tmp_path / "config.yaml.d"
    dropins.mkdir()
    write_yaml(dropins / "10-island.yaml", {"node-label+": ["c=d"], "selinux": "sometimes"})
    (dropins / "20-ignored.txt").write_text("selinux: also-bad-but-not-yaml\n")
    result = run("server", "--config", str(config), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert 'invalid boolean value "sometimes" for -selinux' in messages(result.stderr)


# --- registries.yaml and containerd hosts.toml ------------------------------------------------------


def render_hosts(tmp_path: Path, registries: object, **agent_config: object) -> tuple[Node, Path]:
    """Start an agent pointed at a closed port: it renders hosts.toml, then retries the server."""
    reg = write_yaml(tmp_path / "registries.yaml", registries)
    config = {
        "server": f"https://127.0.0.1:{free_port()}",
        "token": "secret",
        "node-name": "agent",
        "private-registry": str(reg),
        **agent_config,
    }
    node = Node(tmp_path, "agent", "agent", config).start()
    certs_d = node.data_dir / "agent" / "etc" / "containerd" / "certs.d"
    wait_for(lambda: "Wrote containerd registry hosts" in node.log(), what="hosts.toml")
    node.stop()
    return node, certs_d


def read_hosts(certs_d: Path, registry: str) -> dict:
    text = (certs_d / registry / "hosts.toml").read_text()
    assert text.startswith("# File generated by k3s. DO NOT EDIT.\n")
    return tomllib.loads(text)


ISLAND_REGISTRIES = {
    "mirrors": {
        "docker.io": {
            "endpoint": ["https://registry.island.test:5000"],
            "rewrite": {"^rancher/(.*)": "island/rancher/$1"},
        },
        "registry.k8s.io": {"endpoint": ["registry.island.test:5000"]},
        "*": {"endpoint": ["https://registry.island.test:5000"]},
    },
    "configs": {
        "registry.island.test:5000": {
            "auth": {"username": "k3s", "password": "pull-secret"},
            "tls": {"ca_file": "/etc/ssl/island/ca.pem"},
        }
    },
}


def test_hosts_toml_points_each_registry_at_the_island_mirror(tmp_path):
    _, certs_d = render_hosts(tmp_path, ISLAND_REGISTRIES)
    assert sorted(p.name for p in certs_d.iterdir()) == [
        "_default",
        "docker.io",
        "registry.island.test:5000",
        "registry.k8s.io",
    ]
    # the layout of k3s's own output
    assert (certs_d / "docker.io" / "hosts.toml").read_text().splitlines()[:6] == [
        "# File generated by k3s. DO NOT EDIT.",
        "",
        'server = "https://registry-1.docker.io/v2"',
        'capabilities = ["pull", "resolve", "push"]',
        "",
        "[host]",
    ]
    docker = read_hosts(certs_d, "docker.io")
    assert docker["server"] == "https://registry-1.docker.io/v2"
    mirror = docker["host"]["https://registry.island.test:5000/v2"]
    assert mirror["capabilities"] == ["pull", "resolve"]
    assert mirror["ca"] == ["/etc/ssl/island/ca.pem"]
    assert mirror["rewrite"] == {"^rancher/(.*)": "island/rancher/$1"}
    # an endpoint without scheme is https (not localhost), and gets the same CA from configs
    k8s = read_hosts(certs_d, "registry.k8s.io")
    assert k8s["host"]["https://registry.island.test:5000/v2"]["ca"] == ["/etc/ssl/island/ca.pem"]
    # "*" becomes _default, which has no default server of its own
    default = read_hosts(certs_d, "_default")
    assert "server" not in default
    assert list(default["host"]) == ["https://registry.island.test:5000/v2"]
    # the registry itself: its TLS settings on the default endpoint; auth never lands in hosts.toml
    own = read_hosts(certs_d, "registry.island.test:5000")
    assert own["server"] == "https://registry.island.test:5000/v2"
    assert own["ca"] == ["/etc/ssl/island/ca.pem"]
    assert "pull-secret" not in (certs_d / "registry.island.test:5000" / "hosts.toml").read_text()
    assert stat.S_IMODE((certs_d / "docker.io" / "hosts.toml").stat().st_mode) == 0o600


def test_the_upstream_endpoint_listed_last_becomes_the_default_server(tmp_path):
    registries = {
        "mirrors": {
            "docker.io": {"endpoint": ["https://mirror.island.test/", "https://registry-1.docker.io"]}
        }
    }
    _, certs_d = render_hosts(tmp_path, registries)
    hosts = read_hosts(certs_d, "docker.io")
    assert hosts["server"] == "https://registry-1.docker.io/v2"
    assert list(hosts["host"]) == ["https://mirror.island.test/v2"]


def test_disable_default_registry_endpoint_omits_the_upstream_server(tmp_path):
    _, certs_d = render_hosts(tmp_path, ISLAND_REGISTRIES, **{"disable-default-registry-endpoint": True})
    for registry in ("docker.io", "registry.k8s.io", "_default"):
        hosts = read_hosts(certs_d, registry)
        assert "server" not in hosts
        assert list(hosts["host"]) == ["https://registry.island.test:5000/v2"]


def test_a_new_registries_yaml_replaces_k3s_generated_directories_and_keeps_others(tmp_path):
    node, certs_d = render_hosts(tmp_path, ISLAND_REGISTRIES)
    manual = certs_d / "manual.example:5000"
    manual.mkdir()
    (manual / "hosts.toml").write_text('server = "https://manual.example:5000"\n')
    write_yaml(
        tmp_path / "registries.yaml",
        {"mirrors": {"quay.io": {"endpoint": ["https://registry.island.test:5000"]}}},
    )
    node.start()
    wait_for(lambda: "Wrote containerd registry hosts" in node.log(), what="hosts.toml again")
    node.stop()
    assert sorted(p.name for p in certs_d.iterdir()) == ["manual.example:5000", "quay.io"]


def test_registries_yaml_unknown_keys_are_ignored_and_bad_endpoints_skipped_as_k3s_does(tmp_path):
    registries = {
        "mirrors": {
            "quay.io": {
                "endpoint": [
                    "https://bad host:5000",
                    "https://registry.island.test:5000",
                    "https://registry.island.test:5000",
                ],
                "endpoints": ["typo-is-ignored"],
            }
        },
        "config": {"typo": "ignored too"},
    }
    node, certs_d = render_hosts(tmp_path, registries)
    assert "Ignoring invalid endpoint URL 0=https://bad host:5000 for quay.io" in node.log()
    assert "Skipping duplicate endpoint URL 2=https://registry.island.test:5000 for quay.io" in node.log()
    assert list(read_hosts(certs_d, "quay.io")["host"]) == ["https://registry.island.test:5000/v2"]


@pytest.mark.parametrize(
    ("registries", "message"),
    [
        (
            {"mirrors": {"docker.io": {"endpoint": "https://r:5000"}}},
            "line 3: cannot unmarshal !!str `https://r:5000` into []string",
        ),
        ({"mirrors": ["docker.io"]}, "cannot unmarshal !!seq into map[string]registries.Mirror"),
        (
            {"configs": {"r:5000": {"tls": {"insecure_skip_verify": "maybe"}}}},
            "cannot unmarshal !!str `maybe` into bool",
        ),
        ({"configs": {"r:5000": {"auth": {"password": ["a"]}}}}, "cannot unmarshal !!seq into string"),
        ("mirrors: [unclosed", "yaml:"),
    ],
)
def test_agent_refuses_registries_yaml_of_the_wrong_shape(tmp_path, registries, message):
    reg = write_yaml(tmp_path / "registries.yaml", registries)
    config = write_yaml(
        tmp_path / "config.yaml",
        {"server": "https://127.0.0.1:1", "token": "secret", "private-registry": str(reg)},
    )
    result = run("agent", "--config", str(config), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert f"failed to load private registry configuration from {reg}" in messages(result.stderr)
    assert message in messages(result.stderr)


# --- a cluster: servers, agents, kubectl -----------------------------------------------------------


@pytest.mark.slow
def test_servers_and_agent_register_and_kubectl_shows_them_ready(tmp_path, nodes):
    p1, p2 = free_port(), free_port()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(20)
    s1 = nodes(
        "s1",
        "server",
        server_config(
            tmp_path,
            "s1",
            p1,
            **{"cluster-init": True, "tls-san": "api.island.test,10.9.8.7", "write-kubeconfig-mode": "0640"},
        ),
    ).start(env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock")})
    # Type=notify units work: the server says READY=1 once it serves
    assert notify.recv(100) == b"READY=1"
    notify.close()
    token_file = s1.data_dir / "server" / "token"
    wait_for(token_file.exists, what="node token")
    wait_for(lambda: "k3s is up and running" in s1.log(), what="first server")
    token = token_file.read_text().strip()

    # token format K10<sha256 of the cluster CA bundle>::server:<secret>, files 0600
    ca = (s1.data_dir / "server" / "tls" / "server-ca.crt").read_bytes()
    assert token.startswith(f"K10{hashlib.sha256(ca).hexdigest()}::server:")
    for name in ("token", "agent-token"):
        assert stat.S_IMODE((s1.data_dir / "server" / name).stat().st_mode) == 0o600
    assert os.readlink(s1.data_dir / "server" / "node-token") == "token"
    assert stat.S_IMODE((s1.data_dir / "server").stat().st_mode) == 0o700
    assert stat.S_IMODE((s1.data_dir / "server" / "tls" / "server-ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(s1.kubeconfig.stat().st_mode) == 0o640
    kubeconfig = yaml.safe_load(s1.kubeconfig.read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{p1}"
    serving = x509.load_pem_x509_certificate(
        (s1.data_dir / "server" / "tls" / "serving-kube-apiserver.crt").read_bytes()
    )
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "api.island.test" in sans.get_values_for_type(x509.DNSName)
    assert "10.9.8.7" in [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]

    s2 = nodes(
        "s2",
        "server",
        # unquoted 0644 is the YAML integer 420, which k3s reads as the octal mode 0420
        server_config(
            tmp_path,
            "s2",
            p2,
            server=f"https://127.0.0.1:{p1}",
            token=token,
            **{"write-kubeconfig-mode": 420},
        ),
    ).start()
    agent_token = (s1.data_dir / "server" / "agent-token").read_text().strip()
    a1 = nodes(
        "a1",
        "agent",
        {
            "server": f"https://127.0.0.1:{p1}",
            "token": agent_token,
            "node-name": "a1",
            "node-ip": "127.0.0.1",
            "node-label": ["island.test/pool=general"],
            "kubelet-arg": ["node-status-update-frequency=500ms"],
            "private-registry": str(tmp_path / "absent-registries.yaml"),
        },
    ).start()

    expected = {
        "s1": ["Ready", "control-plane,etcd"],
        "s2": ["Ready", "control-plane,etcd"],
        "a1": ["Ready", "<none>"],
    }

    def all_ready(node: Node):
        if not node.kubeconfig.exists():
            return False
        table = node_table(node)
        return {name: row[:2] for name, row in table.items()} == expected and table

    for server in (s1, s2):
        table = wait_for(lambda server=server: all_ready(server), what=f"all nodes Ready on {server.name}")
        assert all(row[3] == "v1.36.3+k3s1" for row in table.values())
    assert stat.S_IMODE(s2.kubeconfig.stat().st_mode) == 0o420

    # the joining server got the same cluster CA; wide and json output carry the details
    assert (s2.data_dir / "server" / "tls" / "server-ca.crt").read_bytes() == ca
    wide = s1.kubectl("get", "nodes", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[5:7] == ["INTERNAL-IP", "EXTERNAL-IP"]
    node_json = json.loads(s1.kubectl("get", "node", "a1", "-o", "json").stdout)
    assert node_json["metadata"]["labels"]["island.test/pool"] == "general"
    assert s1.kubectl("get", "nodes", "-o", "name").stdout.split() == ["node/a1", "node/s1", "node/s2"]
    assert "Server Version: v1.36.3+k3s1" in s2.kubectl("version").stdout

    # the selectors, JSONPath and wait that roles use to check nodes
    servers = s1.kubectl(
        "get",
        "nodes",
        "-l",
        "node-role.kubernetes.io/control-plane=true",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    )
    assert servers.stdout == "s1 s2"
    agents = s1.kubectl("get", "nodes", "--selector=!node-role.kubernetes.io/control-plane", "-o", "name")
    assert agents.stdout.split() == ["node/a1"]
    ready = s1.kubectl("get", "node/a1", "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')
    assert ready.stdout == "True"
    waited = s2.kubectl("wait", "--for=condition=Ready", "nodes", "--all", "--timeout=10s")
    assert waited.returncode == 0, waited.stderr
    assert sorted(waited.stdout.splitlines()) == [
        "node/a1 condition met",
        "node/s1 condition met",
        "node/s2 condition met",
    ]

    # cordon on one server shows on the other; uncordon reverts; drain accepts the role's flags
    assert s2.kubectl("cordon", "a1").stdout.strip() == "node/a1 cordoned"
    wait_for(lambda: node_table(s1)["a1"][0] == "Ready,SchedulingDisabled", what="cordon replicated")
    assert s1.kubectl("uncordon", "a1").stdout.strip() == "node/a1 uncordoned"
    wait_for(lambda: node_table(s2)["a1"][0] == "Ready", what="uncordon replicated")
    drain = s1.kubectl("drain", "s2", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=300s")
    assert drain.returncode == 0, drain.stderr
    assert drain.stdout.splitlines() == ["node/s2 cordoned", "node/s2 drained"]
    assert s1.kubectl("drain", "s2", "--timeout=soon").returncode == 1
    s1.kubectl("uncordon", "s2")

    # a node that stops heartbeating turns NotReady after the grace period
    a1.stop()
    wait_for(lambda: node_table(s1)["a1"][0] == "NotReady", timeout=15, what="a1 NotReady")
    assert node_table(s2)["s1"][0] == "Ready"
    timed_out = s1.kubectl("wait", "--for=condition=Ready", "node/a1", "--timeout=1s")
    assert timed_out.returncode == 1
    assert "timed out waiting for the condition on nodes/a1" in timed_out.stderr

    # etcd-snapshot save writes under the data dir's server/db/snapshots
    snap = run(
        "etcd-snapshot", "save", "--name", "pre-upgrade", "--data-dir", str(s1.data_dir), "--node-name", "s1"
    )
    assert snap.returncode == 0, snap.stderr
    snapshots = list((s1.data_dir / "server" / "db" / "snapshots").iterdir())
    assert len(snapshots) == 1
    assert snapshots[0].name.startswith("pre-upgrade-s1-")


@pytest.mark.slow
def test_wrong_tokens_are_refused(tmp_path, nodes):
    port = free_port()
    s1 = nodes(
        "s1", "server", server_config(tmp_path, "s1", port, **{"cluster-init": True, "token": "right"})
    ).start()
    wait_for(lambda: "k3s is up and running" in s1.log(), what="first server")
    token = (s1.data_dir / "server" / "token").read_text().strip()
    ca_part = token.rsplit(":", 1)[0]

    # an agent whose token carries another cluster's CA hash keeps retrying, as k3s-agent does
    bad_hash = nodes(
        "a1",
        "agent",
        {
            "server": f"https://127.0.0.1:{port}",
            "token": "K10" + "0" * 64 + "::node:right",
            "node-name": "a1",
        },
    ).start()
    wait_for(
        lambda: bad_hash.log().count("token CA hash does not match the Cluster CA certificate hash") >= 2,
        what="CA hash refusal, twice",
    )
    assert bad_hash.proc.poll() is None

    # an agent with the right CA hash but a wrong secret is refused by the server
    bad_secret = nodes(
        "a2",
        "agent",
        {"server": f"https://127.0.0.1:{port}", "token": ca_part + ":wrong", "node-name": "a2"},
    ).start()
    wait_for(lambda: "401 Unauthorized" in bad_secret.log(), what="401 for the agent")

    # a server joining with a wrong secret exits with a fatal error (systemd restarts it)
    joiner = nodes(
        "s2",
        "server",
        server_config(tmp_path, "s2", free_port(), server=f"https://127.0.0.1:{port}", token="wrong"),
    ).start()
    assert joiner.proc.wait(timeout=20) == 1
    assert "level=fatal" in joiner.log()
    assert (
        "starting kubernetes: preparing server: "
        f"https://127.0.0.1:{port}/v1-k3s/server-bootstrap: 401 Unauthorized" in messages(joiner.log())
    )
    # a short token cannot pin the CA: k3s warns
    assert "the token does not include a CA hash" in messages(joiner.log())

    assert set(node_table(s1)) == {"s1"}

    # the token of an existing server cannot change under it
    s1.stop()
    config = yaml.safe_load(s1.config_file.read_text())
    write_yaml(s1.config_file, {**config, "token": "changed"})
    s1.start()
    assert s1.proc.wait(timeout=20) == 1
    assert "bootstrap data already found and encrypted with different token" in s1.log()


@pytest.mark.slow
def test_agent_restarted_while_its_server_is_down_rejoins_through_another_server(tmp_path, nodes):
    p1, p2 = free_port(), free_port()
    s1 = nodes(
        "s1", "server", server_config(tmp_path, "s1", p1, **{"cluster-init": True, "token": "t0k"})
    ).start()
    wait_for(lambda: "k3s is up and running" in s1.log(), what="first server")
    s2 = nodes(
        "s2", "server", server_config(tmp_path, "s2", p2, server=f"https://127.0.0.1:{p1}", token="t0k")
    ).start()
    agent_config = {
        "server": f"https://127.0.0.1:{p1}",
        "token": "t0k",
        "node-name": "a1",
        "node-ip": "127.0.0.1",
        "kubelet-arg": ["node-status-update-frequency=500ms"],
        "private-registry": str(tmp_path / "absent-registries.yaml"),
    }
    a1 = nodes("a1", "agent", agent_config).start()
    wait_for(lambda: s2.kubeconfig.exists() and node_table(s2).get("a1", [""])[0] == "Ready", what="a1 on s2")
    lb_file = a1.data_dir / "agent" / "etc" / "k3s-agent-load-balancer.json"
    saved = wait_for(lambda: lb_file.exists() and json.loads(lb_file.read_text()), what="load balancer file")
    assert saved == {"ServerURL": f"https://127.0.0.1:{p1}", "ServerAddresses": [f"127.0.0.1:{p2}"]}

    a1.stop()
    wait_for(lambda: node_table(s2)["a1"][0] == "NotReady", timeout=15, what="a1 NotReady")
    s1.stop()
    a1.start()
    wait_for(lambda: node_table(s2)["a1"][0] == "Ready", timeout=15, what="a1 back through s2")
    assert f"Connected to cluster at https://127.0.0.1:{p2}" in a1.log()
    wait_for(lambda: node_table(s2)["s1"][0] == "NotReady", timeout=15, what="s1 NotReady")


# --- a rolling upgrade: cordon, drain, events, version skew, the pre-upgrade snapshot -------------

NEXT_VERSION = "v1.37.1+k3s1"


def upgraded_double(directory: Path, version: str = NEXT_VERSION) -> Path:
    """The double with its K3S_VERSION line replaced, as the upgrade test bundle carries it."""
    copy = directory / f"k3s-{version}"
    copy.write_bytes(double_binary("k3s", version))
    return copy


def start_cluster(tmp_path: Path, nodes, servers: int = 1, agents: int = 1) -> list[Node]:
    """servers s1..sN (embedded etcd) and agents a1..aN, every node Ready on s1."""
    ports = [free_port() for _ in range(servers)]
    first = nodes(
        "s1", "server", server_config(tmp_path, "s1", ports[0], **{"cluster-init": True, "token": "t0k"})
    ).start()
    wait_for(lambda: "k3s is up and running" in first.log(), what="first server")
    started = [first]
    for index in range(1, servers):
        name = f"s{index + 1}"
        config = server_config(
            tmp_path, name, ports[index], server=f"https://127.0.0.1:{ports[0]}", token="t0k"
        )
        started.append(nodes(name, "server", config).start())
    for index in range(agents):
        name = f"a{index + 1}"
        config = {
            "server": f"https://127.0.0.1:{ports[0]}",
            "token": "t0k",
            "node-name": name,
            "node-ip": "127.0.0.1",
            "kubelet-arg": ["node-status-update-frequency=500ms"],
            "private-registry": str(tmp_path / "absent-registries.yaml"),
        }
        started.append(nodes(name, "agent", config).start())
    names = {node.name for node in started}

    def all_ready():
        table = node_table(first)
        return set(table) == names and all(row[0] == "Ready" for row in table.values())

    wait_for(all_ready, what="every node Ready")
    return started


def node_events(server: Node, node: str) -> list[dict]:
    """The node's events in the order they happened: the name's suffix is the recorder's UnixNano."""
    result = server.kubectl(
        "get",
        "events",
        "-A",
        "--field-selector",
        f"involvedObject.kind=Node,involvedObject.name={node}",
        "-o",
        "json",
    )
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)["items"]
    return sorted(items, key=lambda e: int(e["metadata"]["name"].rsplit(".", 1)[1], 16))


def reasons(events: list[dict]) -> list[str]:
    return [e["reason"] for e in events]


def test_cordon_uncordon_and_drain_answer_as_kubectl_does(tmp_path, nodes):
    s1, _agent = start_cluster(tmp_path, nodes)

    first = s1.kubectl("cordon", "a1")
    assert (first.returncode, first.stdout) == (0, "node/a1 cordoned\n")
    again = s1.kubectl("cordon", "a1")
    assert (again.returncode, again.stdout) == (0, "node/a1 already cordoned\n")
    assert node_table(s1)["a1"][0] == "Ready,SchedulingDisabled"
    node = json.loads(s1.kubectl("get", "node", "a1", "-o", "json").stdout)
    assert node["spec"]["unschedulable"] is True
    assert {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"} in node["spec"]["taints"]
    assert s1.kubectl("get", "node", "a1", "-o", "jsonpath={.spec.unschedulable}").stdout == "true"
    assert s1.kubectl("uncordon", "a1").stdout == "node/a1 uncordoned\n"
    assert s1.kubectl("uncordon", "a1").stdout == "node/a1 already uncordoned\n"
    assert "unschedulable" not in json.loads(s1.kubectl("get", "node", "a1", "-o", "json").stdout)["spec"]

    # an unknown node is the API server's NotFound, and nothing else is touched
    missing = s1.kubectl("cordon", "a1", "nope")
    assert missing.returncode == 1
    assert missing.stderr == 'Error from server (NotFound): nodes "nope" not found\n'
    assert node_table(s1)["a1"][0] == "Ready"
    usage = s1.kubectl("uncordon")
    assert usage.returncode == 1
    assert usage.stderr.splitlines() == [
        "error: USAGE: uncordon NODE [flags]",
        "See 'kubectl uncordon -h' for help and examples",
    ]

    # drain refuses what kubectl's flag parser refuses, before it cordons anything
    for flags, message in [
        (["--evict-everything"], "error: unknown flag: --evict-everything"),
        (["-x"], "error: unknown shorthand flag: 'x' in -x"),
        (
            ["--timeout=soon"],
            'error: invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"',
        ),
        (
            ["--timeout=30"],
            'error: invalid argument "30" for "--timeout" flag: time: missing unit in duration "30"',
        ),
        (
            ["--grace-period=later"],
            'error: invalid argument "later" for "--grace-period" flag: '
            'strconv.ParseInt: parsing "later": invalid syntax',
        ),
        (
            ["--force=maybe"],
            'error: invalid argument "maybe" for "--force" flag: '
            'strconv.ParseBool: parsing "maybe": invalid syntax',
        ),
        (["--timeout"], "error: flag needs an argument: --timeout"),
    ]:
        refused = s1.kubectl("drain", "a1", *flags)
        assert refused.returncode == 1, flags
        assert refused.stderr.splitlines() == [message, "See 'kubectl drain --help' for usage."], flags
    assert node_table(s1)["a1"][0] == "Ready"
    # cordon has no drain flags
    assert "error: unknown flag: --force" in s1.kubectl("cordon", "a1", "--force").stderr

    # a client dry run changes nothing
    dry = s1.kubectl("drain", "a1", "--dry-run=client")
    assert dry.stdout.splitlines() == ["node/a1 cordoned (dry run)", "node/a1 drained (dry run)"]
    bare = s1.kubectl("cordon", "a1", "--dry-run")
    assert bare.stdout == "node/a1 cordoned (dry run)\n"
    assert "--dry-run is deprecated and can be replaced with --dry-run=client." in bare.stderr
    bad = s1.kubectl("cordon", "a1", "--dry-run=maybe")
    assert bad.returncode == 1
    assert bad.stderr == 'error: Invalid dry-run value (maybe). Must be "none", "server", or "client".\n'
    assert node_table(s1)["a1"][0] == "Ready"

    # the upgrade's drain: cordon, evict (no pods here), drained; a second drain finds it cordoned
    flags = [
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=300s",
        "--grace-period",
        "-1",
        "--force",
    ]
    drained = s1.kubectl("drain", "a1", *flags)
    assert (drained.returncode, drained.stdout.splitlines()) == (0, ["node/a1 cordoned", "node/a1 drained"])
    redrained = s1.kubectl("drain", "a1", *flags)
    assert redrained.stdout.splitlines() == ["node/a1 already cordoned", "node/a1 drained"]
    assert node_table(s1)["a1"][0] == "Ready,SchedulingDisabled"

    # a label selector picks the nodes; a name and a selector together are refused
    assert (
        s1.kubectl("uncordon", "-l", "!node-role.kubernetes.io/control-plane").stdout
        == "node/a1 uncordoned\n"
    )
    both = s1.kubectl("cordon", "a1", "-l", "kubernetes.io/hostname=a1")
    assert both.returncode == 1
    assert both.stderr.startswith("error: cannot specify both a node name and a --selector option\n")


@pytest.mark.slow
def test_events_show_each_node_drained_restarted_on_the_new_version_and_uncordoned(tmp_path, nodes):
    s1, s2, a1 = start_cluster(tmp_path, nodes, servers=2)
    new_binary = upgraded_double(tmp_path)

    def upgrade(node: Node, server: Node) -> None:
        assert server.kubectl("drain", node.name, "--ignore-daemonsets", "--timeout=60s").returncode == 0
        # the old kubelet notices the cordon at its next status sync (node-status-update-frequency)
        wait_for(
            lambda: "NodeNotSchedulable" in reasons(node_events(server, node.name)), what="NodeNotSchedulable"
        )
        node.stop()
        node.binary = new_binary
        node.start()

        def back():
            info = json.loads(server.kubectl("get", "node", node.name, "-o", "json").stdout)
            ready = [c["status"] for c in info["status"]["conditions"] if c["type"] == "Ready"]
            return info["status"]["nodeInfo"]["kubeletVersion"] == NEXT_VERSION and ready == ["True"]

        wait_for(back, what=f"{node.name} Ready on {NEXT_VERSION}")
        assert server.kubectl("uncordon", node.name).returncode == 0
        wait_for(
            lambda: reasons(node_events(server, node.name))[-1] == "NodeSchedulable", what="NodeSchedulable"
        )

    # servers first, one at a time, then the agent: a 1.37 server joins a 1.36 one, a 1.37 agent
    # works with them (upstream asks for servers before agents; k3s itself refuses neither)
    upgrade(s2, s1)
    table = node_table(s1)
    assert (table["s1"][3], table["s2"][3], table["a1"][3]) == ("v1.36.3+k3s1", NEXT_VERSION, "v1.36.3+k3s1")
    assert f"Server Version: {NEXT_VERSION}" in s2.kubectl("version").stdout
    upgrade(s1, s2)
    upgrade(a1, s1)
    assert {row[3] for row in node_table(s2).values()} == {NEXT_VERSION}
    assert all(row[0] == "Ready" for row in node_table(s2).values())

    # the events as a verify reads them: on either server, through the sync
    windows = []
    for name in ("s2", "s1", "a1"):
        events = node_events(s2, name)
        for event in events:
            assert event["metadata"]["namespace"] == "default"
            assert event["involvedObject"] == {"kind": "Node", "name": name, "uid": name}
            assert event["source"] == {"component": "kubelet", "host": name}
            assert event["eventTime"] is None
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["lastTimestamp"])
        # from the first cordon on: the old kubelet saw it, the new binary started (and, being a new
        # kubelet, reports the cordon again), came Ready, and saw the uncordon
        cordoned = reasons(events).index("NodeNotSchedulable")
        tail = events[cordoned:]
        assert reasons(tail) == [
            "NodeNotSchedulable",
            "Starting",
            "NodeNotReady",
            "NodeNotSchedulable",
            "NodeReady",
            "NodeSchedulable",
        ], reasons(events)
        assert tail[1]["message"] == "Starting kubelet."
        assert tail[1]["metadata"]["annotations"] == {"k3s-double.test/version": NEXT_VERSION}
        assert tail[0]["message"] == f"Node {name} status is now: NodeNotSchedulable"
        first_start = events[0]
        assert first_start["reason"] == "Starting"
        assert first_start["metadata"]["annotations"] == {"k3s-double.test/version": "v1.36.3+k3s1"}
        stamp = [int(e["metadata"]["name"].rsplit(".", 1)[1], 16) for e in tail]
        windows.append((stamp[0], stamp[-1]))
    # one node at a time: each node's cordoned window ends before the next one's begins
    assert all(windows[i][1] < windows[i + 1][0] for i in range(len(windows) - 1)), windows

    # the default table, and a field label the API server does not know
    table_out = s1.kubectl("get", "events", "--field-selector", "reason=NodeReady").stdout.splitlines()
    assert table_out[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any("node/a1" in line and "Node a1 status is now: NodeReady" in line for line in table_out[1:])
    unknown = s1.kubectl("get", "events", "-A", "--field-selector", "spec.nodeName=a1")
    assert unknown.returncode == 1
    # the real kubectl wraps the API server's message (kubectl v1.35 resource.Builder)
    assert unknown.stderr == (
        'Error from server (BadRequest): Unable to find "/v1, Resource=events" that match label selector "", '
        'field selector "spec.nodeName=a1": field label not supported: spec.nodeName\n'
    )


def test_etcd_snapshot_save_names_the_snapshot_and_ls_lists_it(tmp_path, nodes):
    port = free_port()
    s1 = nodes("s1", "server", server_config(tmp_path, "s1", port, **{"cluster-init": True})).start()
    wait_for((s1.data_dir / "server" / "db" / "double-state.json").exists, what="server state")
    common = ["--data-dir", str(s1.data_dir), "--node-name", "s1"]

    saved = run("etcd-snapshot", "save", "--name", "pre-upgrade", *common)
    assert saved.returncode == 0, saved.stderr
    name = re.search(r"Snapshot (pre-upgrade-s1-\d+) saved\.", messages(saved.stderr)).group(1)
    assert saved.stdout == ""  # k3s logs it; it prints nothing on stdout

    listed = run("etcd-snapshot", "ls", *common)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["Name", "Location", "Size", "Created"]
    path = s1.data_dir / "server" / "db" / "snapshots" / name
    assert row.split()[:3] == [name, path.as_uri(), str(path.stat().st_size)]
    as_json = json.loads(run("etcd-snapshot", "list", "-o", "json", *common).stdout)
    assert [item["spec"]["snapshotName"] for item in as_json["items"]] == [name]
    assert as_json["items"][0]["spec"]["location"] == path.as_uri()

    refused = run("etcd-snapshot", "ls", "-o", "xml", *common)
    assert refused.returncode == 1
    assert "invalid output format: xml" in messages(refused.stderr)
    assert run("etcd-snapshot", "save", "extra", *common).returncode == 1
    no_output_flag = run("etcd-snapshot", "save", "-o", "json", *common)
    assert "Incorrect Usage: flag provided but not defined: -o" in no_output_flag.stderr


class _S3Recorder(http.server.BaseHTTPRequestHandler):
    requests: typing.ClassVar[list] = []

    def do_PUT(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _S3Recorder.requests.append((self.path, dict(self.headers), body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        return


def botocore_signature(method: str, url: str, headers: dict, body: bytes, secret: str) -> str:
    """The SigV4 signature botocore (an independent implementation) computes for this request."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    signed = {k.lower(): v for k, v in headers.items() if k.lower() in ("x-amz-date", "x-amz-content-sha256")}
    request = AWSRequest(method=method, url=url, data=body, headers=signed)
    request.context["timestamp"] = signed["x-amz-date"]
    auth = S3SigV4Auth(Credentials("unused", secret), "s3", "us-east-1")
    auth._modify_request_before_signing(request)
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request)


@pytest.mark.slow
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https-with-endpoint-ca"])
def test_etcd_snapshot_save_uploads_to_s3_with_a_signed_put(tmp_path, nodes, tls):
    import ssl

    _S3Recorder.requests.clear()
    s3 = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _S3Recorder)
    endpoint = f"127.0.0.1:{s3.server_address[1]}"
    s3_keys = {
        "etcd-s3": True,
        "etcd-s3-endpoint": endpoint,
        "etcd-s3-bucket": "k3s-snapshots",
        "etcd-s3-folder": "island",
        "etcd-s3-access-key": "AKIDISLAND",
        "etcd-s3-secret-key": "island-secret",
    }
    if tls:
        ca, cert, key = make_registry_pki(tmp_path)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        s3.socket = ctx.wrap_socket(s3.socket, server_side=True)
        s3_keys["etcd-s3-endpoint-ca"] = str(ca)
    else:
        s3_keys["etcd-s3-insecure"] = True
    threading.Thread(target=s3.serve_forever, daemon=True).start()
    config = server_config(
        tmp_path,
        "s1",
        free_port(),
        **{"cluster-init": True, "tls-san": ["ignored-by-etcd-snapshot"], **s3_keys},
    )
    s1 = nodes("s1", "server", config).start()
    wait_for((s1.data_dir / "server" / "db" / "double-state.json").exists, what="server state")
    try:
        result = run("etcd-snapshot", "save", "--config", str(s1.config_file), "--data-dir", str(s1.data_dir))
    finally:
        s3.shutdown()
    assert result.returncode == 0, result.stderr
    # etcd-snapshot has its own flag set: server keys in config.yaml are skipped with a warning
    assert "Unknown flag --tls-san found in config.yaml, skipping" in messages(result.stderr)
    (path, headers, body), *_ = _S3Recorder.requests
    assert path.startswith("/k3s-snapshots/island/on-demand-s1-")
    assert headers["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    authorization = headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDISLAND/")
    expected = botocore_signature("PUT", f"http://{endpoint}{path}", headers, body, "island-secret")
    assert authorization.endswith(f"Signature={expected}")
    local = next((s1.data_dir / "server" / "db" / "snapshots").iterdir())
    assert local.read_bytes() == body


def snapshot_locations(config: Path, data_dir: Path) -> dict[str, set[str]]:
    """`k3s etcd-snapshot ls -o json`: each snapshot name with its locations."""
    listed = run("etcd-snapshot", "ls", "-o", "json", "--config", str(config), "--data-dir", str(data_dir))
    assert listed.returncode == 0, listed.stderr
    locations: dict[str, set[str]] = {}
    for item in json.loads(listed.stdout)["items"]:
        locations.setdefault(item["spec"]["snapshotName"], set()).add(item["spec"]["location"])
    return locations


@pytest.mark.slow
def test_etcd_snapshot_save_exits_0_when_the_upload_fails_and_only_ls_tells(tmp_path, nodes):
    # k3s saves locally and logs the S3 error on the server only: the command succeeds either way,
    # and `ls -o json` (local snapshots and the bucket's objects) shows whether it reached S3
    minio = tls_double(tmp_path / "minio")
    try:
        s3_client(minio).create_bucket(Bucket="k3s-snapshots")
        s3_keys = {
            "etcd-s3": True,
            "etcd-s3-endpoint": f"127.0.0.1:{minio.port}",
            "etcd-s3-endpoint-ca": str(minio.ca_file),
            "etcd-s3-bucket": "k3s-snapshots",
            "etcd-s3-folder": "island",
            "etcd-s3-access-key": MINIO_ROOT_USER,
            "etcd-s3-secret-key": MINIO_ROOT_PASSWORD,
        }
        s1 = nodes(
            "s1", "server", server_config(tmp_path, "s1", free_port(), **{"cluster-init": True, **s3_keys})
        )
        s1.start()
        wait_for((s1.data_dir / "server" / "db" / "double-state.json").exists, what="server state")
        good = run(
            "etcd-snapshot",
            "save",
            "--name",
            "good",
            "--config",
            str(s1.config_file),
            "--data-dir",
            str(s1.data_dir),
        )
        assert good.returncode == 0, good.stderr
        bad_config = write_yaml(
            tmp_path / "bad.yaml", {**s3_keys, "node-name": "s1", "etcd-s3-secret-key": "not-the-secret"}
        )
        bad = run(
            "etcd-snapshot",
            "save",
            "--name",
            "bad",
            "--config",
            str(bad_config),
            "--data-dir",
            str(s1.data_dir),
        )
        assert bad.returncode == 0, bad.stderr
        assert re.search(r"Snapshot bad-s1-\d+ saved\.", messages(bad.stderr))
        assert "S3" not in bad.stderr + bad.stdout
        server_log = (s1.data_dir / "server" / "logs" / "etcd-snapshot.log").read_text()
        assert "Error received during snapshot upload to S3: 403" in messages(server_log)

        locations = snapshot_locations(s1.config_file, s1.data_dir)
        (good_name,) = [n for n in locations if n.startswith("good-s1-")]
        (bad_name,) = [n for n in locations if n.startswith("bad-s1-")]
        assert {loc.split("://")[0] for loc in locations[good_name]} == {"file", "s3"}
        assert f"s3://k3s-snapshots/island/{good_name}" in locations[good_name]
        assert {loc.split("://")[0] for loc in locations[bad_name]} == {"file"}
    finally:
        minio.stop()


# --- a real containerd reads the rendered hosts.toml ---------------------------------------------


def make_registry_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a serving certificate for 127.0.0.1 (ca.crt, server.crt, server.key)."""
    paths = server_pki(directory, "127.0.0.1", ["127.0.0.1"], common_name="island registry test CA")
    return paths["ca"], paths["cert"], paths["key"]


def push_image(address: str, ca: Path, repository: str, tag: str) -> str:
    """Push a one-layer OCI image with plain HTTP calls; return the manifest digest."""
    import gzip
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(ca))

    def request(method, url, data=None, headers=None):
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310 - https URLs built here
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:  # noqa: S310 - https URLs built here
            return resp.headers

    def blob(data: bytes) -> dict:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        location = request("POST", f"https://{address}/v2/{repository}/blobs/uploads/")["Location"]
        sep = "&" if "?" in location else "?"
        url = location if location.startswith("https://") else f"https://{address}{location}"
        request("PUT", f"{url}{sep}digest={digest}", data, {"Content-Type": "application/octet-stream"})
        return {"digest": digest, "size": len(data)}

    layer = gzip.compress(b"island layer" * 100, mtime=0)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config.encode())},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **blob(layer)}],
        }
    ).encode()
    request(
        "PUT",
        f"https://{address}/v2/{repository}/manifests/{tag}",
        manifest,
        {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


@pytest.mark.slow
@pytest.mark.skipif(
    not (
        Path("/usr/bin/containerd").exists()
        and Path("/usr/bin/docker-registry").exists()
        and os.geteuid() == 0
    ),
    reason="needs Debian's containerd and docker-registry, and root",
)
def test_real_containerd_pulls_through_the_rendered_hosts_toml(tmp_path):
    import tempfile

    ca, cert, key = make_registry_pki(tmp_path)
    port = free_port()
    address = f"127.0.0.1:{port}"
    registry_config = tmp_path / "registry.yml"
    registry_config.write_text(
        json.dumps(
            {
                "version": 0.1,
                "storage": {"filesystem": {"rootdirectory": str(tmp_path / "storage")}},
                "http": {"addr": address, "tls": {"certificate": str(cert), "key": str(key)}},
            }
        )
    )
    short = Path(tempfile.mkdtemp(prefix="k3sd-", dir="/tmp"))  # a unix socket path must be short
    (short / "containerd.toml").write_text(
        f'version = 2\nroot = "{short}/root"\nstate = "{short}/state"\n'
        f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "{short}/c.sock"\n'
    )
    procs = []
    try:
        with (tmp_path / "registry.log").open("w") as log:
            procs.append(
                subprocess.Popen(
                    ["/usr/bin/docker-registry", "serve", str(registry_config)], stdout=log, stderr=log
                )
            )
        with (short / "containerd.log").open("w") as log:
            procs.append(
                subprocess.Popen(
                    ["/usr/bin/containerd", "--config", str(short / "containerd.toml")],
                    stdout=log,
                    stderr=log,
                )
            )
        wait_for((short / "c.sock").exists, what="containerd socket")

        def pushed():
            try:
                return push_image(address, ca, "library/busybox", "1.36")
            except OSError:
                return None

        digest = wait_for(pushed, what="registry up and image pushed")

        registries = {
            "mirrors": {"docker.io": {"endpoint": [f"https://{address}"]}},
            "configs": {address: {"tls": {"ca_file": str(ca)}}},
        }
        _, certs_d = render_hosts(tmp_path, registries, **{"disable-default-registry-endpoint": True})

        def ctr(*args):
            return subprocess.run(
                ["/usr/bin/ctr", "--address", str(short / "c.sock"), *args],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        fetched = ctr("content", "fetch", "--hosts-dir", str(certs_d), "docker.io/library/busybox:1.36")
        assert fetched.returncode == 0, fetched.stderr
        images = ctr("images", "ls")
        assert "docker.io/library/busybox:1.36" in images.stdout
        assert digest in images.stdout
        # the ns parameter shows containerd took the request as a mirror of docker.io
        log = (tmp_path / "registry.log").read_text()
        assert "HEAD /v2/library/busybox/manifests/1.36?ns=docker.io" in log
        assert f"GET /v2/library/busybox/manifests/{digest}?ns=docker.io" in log
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        subprocess.run(["rm", "-rf", str(short)], check=False)
