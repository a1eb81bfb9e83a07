"""The k3s double's API server /metrics: a client certificate of the cluster's client CA in the group
system:monitoring reads it (Kubernetes's bootstrap RBAC) and nothing else; apiserver_request_total
counts the API requests served, with kube-apiserver's labels."""

from __future__ import annotations

import base64
import json
import re
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from ansible_collections.island.installer.plugins.module_utils.island_k3s_client_cert import converge
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.doubles.k3s import Node, wait_for
from tests.support.net import free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("metrics")
    port = free_port()
    node = Node(
        base,
        "s1",
        "server",
        {
            "cluster-init": True,
            "token": "t0k",
            "node-name": "s1",
            "node-ip": "127.0.0.1",
            "bind-address": "127.0.0.1",
            "https-listen-port": port,
            "write-kubeconfig": str(base / "s1" / "k3s.yaml"),
            "private-registry": str(base / "absent.yaml"),
        },
    ).start()
    try:
        wait_for(node.kubeconfig.exists, what="kubeconfig")
        yield node
    finally:
        node.stop()


def _client(server, tmp_path: Path, name: str, organization: str | None) -> ssl.SSLContext:
    """A TLS context trusting the cluster CA, with a client certificate: the kubeconfig's admin one
    (organization None), or one the client CA signs through island_k3s_client_cert for a key made here."""
    doc = yaml.safe_load(server.kubeconfig.read_text())
    ctx = ssl.create_default_context(
        cadata=base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
    )
    cert_file, key_file = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    if organization is None:
        user = doc["users"][0]["user"]
        cert_file.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key_file.write_bytes(base64.b64decode(user["client-key-data"]))
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        csr = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "whatever")])
        ).sign(key, hashes.SHA256())  # fmt: skip
        tls = server.data_dir / "server" / "tls"
        result = converge(
            csr.public_bytes(serialization.Encoding.PEM).decode(),
            (tls / "client-ca.crt").read_bytes(),
            (tls / "client-ca.key").read_bytes(),
            name,
            organization,
        )
        cert_file.write_text(result["certificate"])
        key_file.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
        )  # fmt: skip
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


def _get(server, path: str, ctx: ssl.SSLContext | None) -> tuple[int, str]:
    if ctx is None:
        doc = yaml.safe_load(server.kubeconfig.read_text())
        ctx = ssl.create_default_context(
            cadata=base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
        )
    try:
        with urllib.request.urlopen(f"https://127.0.0.1:{server.port}{path}", context=ctx, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_monitoring_group_reads_metrics_and_nothing_else(server, tmp_path):
    monitoring = _client(server, tmp_path, "island-prometheus", "system:monitoring")
    status, body = _get(server, "/metrics", monitoring)
    assert status == 200, body
    assert body.startswith("# HELP apiserver_request_total [STABLE] Counter of apiserver requests")
    assert _get(server, "/readyz", monitoring) == (200, "ok")
    status, body = _get(server, "/api/v1/nodes", monitoring)
    assert status == 403
    assert json.loads(body)["message"] == (
        'nodes is forbidden: User "island-prometheus" cannot list resource "nodes" in API group "" '
        "at the cluster scope"
    )
    assert json.loads(body)["reason"] == "Forbidden"


def test_other_identities_are_refused_as_the_api_server_refuses_them(server, tmp_path):
    stranger = _client(server, tmp_path, "stranger", "island-operators")
    status, body = _get(server, "/metrics", stranger)
    assert status == 403
    assert json.loads(body)["message"] == 'forbidden: User "stranger" cannot get path "/metrics"'
    assert _get(server, "/healthz", stranger) == (200, "ok")  # system:public-info-viewer
    assert _get(server, "/metrics", None)[0] == 401  # --anonymous-auth=false
    assert _get(server, "/metrics", _client(server, tmp_path, "admin", None))[0] == 200  # system:masters


def test_apiserver_request_total_counts_the_requests_served(server, tmp_path):
    admin = _client(server, tmp_path, "admin", None)
    wait_for(lambda: "s1" in _get(server, "/api/v1/nodes", admin)[1], what="node s1 listed")
    assert _get(server, "/api/v1/nodes/s1", admin)[0] == 200
    assert _get(server, "/api/v1/nodes/nope", admin)[0] == 404
    assert _get(server, "/api/v1/namespaces/default/pods", admin)[0] == 200
    body = _get(server, "/metrics", _client(server, tmp_path, "island-prometheus", "system:monitoring"))[1]
    assert "# TYPE apiserver_request_total counter" in body

    def count(**labels: str) -> int:
        wanted = {"dry_run": "", "group": "", "version": "v1", "subresource": "", "component": "apiserver"}
        wanted.update(labels)
        for line in body.splitlines():
            match = re.fullmatch(r"apiserver_request_total\{(.*)\} (\d+)", line)
            if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == wanted:
                return int(match.group(2))
        return 0

    assert count(verb="LIST", resource="nodes", scope="cluster", code="200") >= 1
    assert count(verb="GET", resource="nodes", scope="resource", code="200") == 1
    assert count(verb="GET", resource="nodes", scope="resource", code="404") == 1
    assert count(verb="LIST", resource="pods", scope="namespace", code="200") == 1
