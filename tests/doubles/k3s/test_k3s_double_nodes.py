"""Node lifecycle in the k3s double: embedded-etcd members as k3s v1.36 keeps them, `kubectl delete
node`, and a lost server replaced under the same name (README "etcd members and node deletion").

Every process runs under /usr/bin/python3 on 127.0.0.1 with free ports, as in test_k3s_double.py.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
import stat
import time
import urllib.request

import pytest

from tests.doubles.k3s.test_k3s_double import node_table, nodes, start_cluster  # noqa: F401
from tests.support.doubles.k3s import Node, server_config, wait_for
from tests.support.net import free_port

pytestmark = pytest.mark.slow

MEMBER_NAME = re.compile(r"^(?P<node>s\d)-[0-9a-f]{8}$")


def db_info(server: Node) -> list[dict]:
    """k3s's /db/info from a local client (no credentials needed on 127.0.0.1), verified TLS."""
    context = ssl.create_default_context(cafile=str(server.data_dir / "server" / "tls" / "server-ca.crt"))
    with urllib.request.urlopen(f"https://127.0.0.1:{server.port}/db/info", context=context) as answer:
        return json.load(answer)["members"]


def db_info_from_afar(server: Node, user: str | None = None, password: str = "") -> int:
    """The status /db/info answers a client that is not local (source 127.0.0.2: only 127.0.0.1 and
    ::1 are local to k3s's IsLocalOrHasRole), with Basic credentials or none."""
    context = ssl.create_default_context(cafile=str(server.data_dir / "server" / "tls" / "server-ca.crt"))
    conn = http.client.HTTPSConnection(
        "127.0.0.1", server.port, context=context, source_address=("127.0.0.2", 0), timeout=5
    )
    headers = {}
    if user is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        conn.request("GET", "/db/info", headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def node_json(server: Node, name: str) -> dict:
    result = server.kubectl("get", "node", name, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_servers_are_etcd_members_named_after_their_nodes_and_annotated(tmp_path, nodes):  # noqa: F811
    s1, s2, s3, _a1 = start_cluster(tmp_path, nodes, servers=3, agents=1)
    wait_for(lambda: len(db_info(s1)) == 3 and not any(m.get("isLearner") for m in db_info(s1)))
    members = db_info(s1)
    by_node = {MEMBER_NAME.match(m["name"])["node"]: m for m in members}
    assert set(by_node) == {"s1", "s2", "s3"}
    assert by_node["s2"]["peerURLs"] == ["https://127.0.0.1:2380"]
    assert by_node["s2"]["clientURLs"] == ["https://127.0.0.1:2379"]
    # the member name is made once and kept in <data-dir>/server/db/etcd/name, 0600
    name_file = s2.data_dir / "server" / "db" / "etcd" / "name"
    assert name_file.read_text() == by_node["s2"]["name"]
    assert stat.S_IMODE(name_file.stat().st_mode) == 0o600
    # a client that is not local needs the server token (the k3s:server role); node credentials do not do
    assert db_info_from_afar(s1) == 401
    agent_secret = (s1.data_dir / "server" / "agent-token").read_text().strip().split("::node:", 1)[1]
    assert db_info_from_afar(s1, "node", agent_secret) == 403
    assert db_info_from_afar(s1, "server", "t0k") == 200
    # every server answers the same list once synced
    wait_for(lambda: sorted(m["name"] for m in db_info(s3)) == sorted(by_node[n]["name"] for n in by_node))

    node = node_json(s1, "s2")
    annotations = node["metadata"]["annotations"]
    assert annotations["etcd.k3s.cattle.io/node-name"] == by_node["s2"]["name"]
    assert annotations["etcd.k3s.cattle.io/node-address"] == "127.0.0.1"
    voter = next(c for c in node["status"]["conditions"] if c["type"] == "EtcdIsVoter")
    assert (voter["status"], voter["reason"]) == ("True", "MemberNotLearner")
    agent = node_json(s1, "a1")
    assert not any(k.startswith("etcd.k3s.cattle.io/") for k in agent["metadata"]["annotations"])
    assert not any(c["type"] == "EtcdIsVoter" for c in agent["status"]["conditions"])

    # a restart keeps the member (same name, no second member)
    s2.stop()
    s2.start()
    wait_for(lambda: "k3s is up and running" in s2.log(), what="s2 restarted")
    time.sleep(1.5)
    assert sorted(m["name"] for m in db_info(s1)) == sorted(m["name"] for m in members)


def test_kubectl_delete_node_removes_the_node_and_a_servers_etcd_member(tmp_path, nodes):  # noqa: F811
    s1, s2, _s3, a1 = start_cluster(tmp_path, nodes, servers=3, agents=1)
    wait_for(lambda: len(db_info(s2)) == 3)
    s3_member = node_json(s1, "s3")["metadata"]["annotations"]["etcd.k3s.cattle.io/node-name"]

    missing = s1.kubectl("delete", "node", "nosuch")
    assert missing.returncode == 1
    assert 'nodes "nosuch" not found' in missing.stderr

    deleted = s1.kubectl("delete", "node", "s3")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip() == 'node "s3" deleted'
    assert "Removing etcd member s3 from cluster" in s1.log()
    assert f"Removing name={s3_member} " in s1.log()
    # gone on every server, its member too, and its still-running kubelet does not bring it back
    for server in (s1, s2):
        wait_for(lambda server=server: "s3" not in node_table(server), what="s3 gone")
        wait_for(lambda server=server: s3_member not in [m["name"] for m in db_info(server)])
    time.sleep(1.5)
    assert "s3" not in node_table(s2)
    assert len(db_info(s1)) == 2

    # an agent's node goes without touching etcd
    assert s1.kubectl("delete", "node", "a1").returncode == 0
    wait_for(lambda: "a1" not in node_table(s2), what="a1 gone")
    assert len(db_info(s2)) == 2
    # restarted, a deleted node registers again (its kubelet registers at start)
    a1.stop()
    a1.start()
    wait_for(lambda: node_table(s1).get("a1", [""])[0] == "Ready", what="a1 back")


def test_a_lost_server_is_replaced_under_its_name_once_its_member_is_removed(tmp_path, nodes):  # noqa: F811
    s1, s2, s3, _ = start_cluster(tmp_path, nodes, servers=3, agents=1)
    wait_for(lambda: len(db_info(s1)) == 3)
    old_member = node_json(s1, "s3")["metadata"]["annotations"]["etcd.k3s.cattle.io/node-name"]
    s3.stop()  # the host is lost: nothing of it is used again

    def replacement(dir_name: str) -> Node:
        config = server_config(
            tmp_path, "s3", free_port(), server=f"https://127.0.0.1:{s1.port}", token="t0k"
        )
        config["write-kubeconfig"] = str(tmp_path / dir_name / "k3s.yaml")
        return nodes(dir_name, "server", config)

    # a fresh machine named s3 while the lost s3 is still a member: k3s refuses to join
    fresh = replacement("s3-fresh").start()
    assert fresh.proc.wait(timeout=20) == 1
    assert "etcd cluster join failed: duplicate node name found, please use a unique name for this node" in (
        fresh.log()
    )
    # ...and removes its name file, so the next start makes a new member name
    assert not (fresh.data_dir / "server" / "db" / "etcd" / "name").exists()

    assert s1.kubectl("delete", "node", "s3").returncode == 0
    wait_for(lambda: old_member not in [m["name"] for m in db_info(s1)])
    again = replacement("s3-again").start()
    wait_for(lambda: node_table(s1).get("s3", [""])[0] == "Ready", what="replacement Ready")
    wait_for(lambda: len(db_info(s1)) == 3 and not any(m.get("isLearner") for m in db_info(s1)))
    new_member = (again.data_dir / "server" / "db" / "etcd" / "name").read_text()
    assert new_member != old_member
    assert MEMBER_NAME.match(new_member)["node"] == "s3"
    assert new_member in [m["name"] for m in db_info(s2)]
