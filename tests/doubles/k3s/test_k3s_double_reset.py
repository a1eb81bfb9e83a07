"""A lost cluster comes back from an etcd snapshot through k3s's cluster-reset, as the k3s double
does it (README.md "Cluster reset and restore"; k3s v1.36.3+k3s1 pkg/etcd/etcd.go Reset/Restore,
pkg/cluster/cluster.go start, pkg/cluster/storage.go, pkg/cli/server/server.go), and every step
k3s refuses is refused with nothing changed.

The documented procedure (docs.k3s.io/cli/etcd-snapshot, "Restoring a Cluster from a Snapshot",
HA): stop k3s on every server; on one, `k3s server --cluster-reset
--cluster-reset-restore-path=<snapshot>`, which exits once done; start it without the flags; on the
others delete (here: move aside) <data-dir>/server/db and start them so they join again.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import time
from pathlib import Path

import pytest

from tests.support.doubles import k3s
from tests.support.doubles.k3s import Node, messages, run, wait_for
from tests.support.doubles.k3s import controller_kubectl as kubectl
from tests.support.net import free_port

RESET_DONE = "Managed etcd cluster membership has been reset, restart without --cluster-reset flag now."


def server_config(base: Path, name: str, port: int, **extra: object) -> dict:
    """A server of these tests: every one shares the token the bootstrap data is kept under."""
    return k3s.server_config(base, name, port, **{"token": "s3cret", **extra})


def create_pod(node: Node, name: str) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": "a1", "containers": [{"name": "app", "image": "registry.island.test/app:1"}]},
    }
    created = kubectl(node, "create", "--validate=false", "-f", "-", stdin=json.dumps(manifest))
    assert created.returncode == 0, created.stderr


def reset(node: Node, *extra: str):
    """`k3s server --cluster-reset ...` in the foreground, as an operator runs it."""
    return run(
        "server", "--config", str(node.config_file), "--data-dir", str(node.data_dir),
        "--cluster-reset", *extra, timeout=60,
    )  # fmt: skip


def db_files(node: Node) -> dict[str, str]:
    """Every file under <data-dir>/server/db by path, with its sha256: what "nothing changed" means."""
    db = node.data_dir / "server" / "db"
    return {
        str(p.relative_to(db)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(db.rglob("*"))
        if p.is_file()
    }


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def island(tmp_path):
    """Servers s1 (cluster-init) and s2 and an agent a1, all Ready; pod `before` is in the snapshot
    saved on s1, then pod `after` is created and a1 cordoned."""
    p1, p2 = free_port(), free_port()
    s1 = Node(tmp_path, "s1", "server", server_config(tmp_path, "s1", p1, **{"cluster-init": True}))
    s2 = Node(tmp_path, "s2", "server", server_config(tmp_path, "s2", p2, server=f"https://127.0.0.1:{p1}"))
    a1 = Node(
        tmp_path,
        "a1",
        "agent",
        {
            "server": f"https://127.0.0.1:{p1}",
            "token": "s3cret",
            "node-name": "a1",
            "node-ip": "127.0.0.1",
            "kubelet-arg": ["node-status-update-frequency=500ms"],
            "private-registry": str(tmp_path / "absent-registries.yaml"),
        },
    )
    try:
        s1.start()
        wait_for(lambda: "k3s is up and running" in s1.log(), what="s1")
        s2.start()
        a1.start()
        wait_for(
            lambda: (
                kubectl(s1, "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=2s").returncode == 0
                and len(kubectl(s1, "get", "nodes", "-o", "name").stdout.split()) == 3
            ),
            timeout=30,
            what="s1, s2 and a1 Ready",
        )
        create_pod(s1, "before")
        # the double's datastore file follows its memory at every heartbeat: the snapshot reads the file
        state = s1.data_dir / "server" / "db" / "double-state.json"
        wait_for(lambda: "default/before" in state.read_text(), what="pod before saved")
        saved = run(
            "etcd-snapshot", "save", "--name", "pre-loss", "--data-dir", str(s1.data_dir), "--node-name", "s1"
        )
        assert saved.returncode == 0, saved.stderr
        name = re.search(r"Snapshot (pre-loss-s1-\d+) saved\.", messages(saved.stderr)).group(1)
        snapshot = s1.data_dir / "server" / "db" / "snapshots" / name
        create_pod(s1, "after")
        assert kubectl(s1, "cordon", "a1").returncode == 0
        wait_for(
            lambda: "after" in kubectl(s2, "get", "pods", "-o", "name").stdout, what="s2 has the later pod"
        )
        yield {"s1": s1, "s2": s2, "a1": a1, "snapshot": snapshot, "base": tmp_path}
    finally:
        for node in (a1, s2, s1):
            node.stop()


def test_a_snapshot_ends_with_the_sha256_of_what_precedes_it(island):
    data = island["snapshot"].read_bytes()
    # etcd's layout: a database of a multiple of 512 bytes, then its 32-byte sha256
    assert len(data) % 512 == 32
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]
    # the token is not in the clear: the bootstrap data is encrypted with it
    assert b"s3cret" not in data


def test_the_documented_procedure_restores_the_cluster_as_of_the_snapshot(island):
    s1, s2, a1, snapshot = island["s1"], island["s2"], island["a1"], island["snapshot"]

    # a k3s already running on this server: the reset fails on its listener, nothing moves
    before = db_files(s1)
    running = reset(s1, f"--cluster-reset-restore-path={snapshot}")
    assert running.returncode == 1
    assert "init cluster datastore and https: listen tcp 127.0.0.1:" in messages(running.stderr)
    assert "address already in use" in messages(running.stderr)
    # (the running server may have saved its state in between: compare what a reset would move)
    assert set(db_files(s1)) == set(before)
    assert not (s1.data_dir / "server" / "db" / "reset-flag").exists()

    # 1. k3s stops on every server (the agent keeps running, as in the docs)
    s1.stop()
    s2.stop()

    # a restore path alone is refused by the command line check
    before = db_files(s1)
    alone = run(
        "server", "--config", str(s1.config_file), "--data-dir", str(s1.data_dir),
        f"--cluster-reset-restore-path={snapshot}",
    )  # fmt: skip
    assert alone.returncode == 1
    assert "invalid flag use; --cluster-reset required with --cluster-reset-restore-path" in messages(
        alone.stderr
    )
    assert db_files(s1) == before

    # 2. on s1: reset and restore; k3s exits once the one-member cluster is up
    done = reset(s1, f"--cluster-reset-restore-path={snapshot}")
    assert done.returncode == 0, done.stderr
    log = messages(done.stderr)
    moved = re.search(r"Pre-restore etcd database moved to (\S+)", log).group(1)
    assert RESET_DONE in log
    assert (Path(moved) / "double-state.json").exists()  # the database it had, moved aside, not deleted
    assert (s1.data_dir / "server" / "db" / "reset-flag").exists()

    # a second reset is refused while the reset-flag file is there, naming it
    again = reset(s1)
    assert again.returncode == 1
    flag = s1.data_dir / "server" / "db" / "reset-flag"
    assert (
        "cluster-reset was successfully performed, please remove the cluster-reset flag and start k3s "
        "normally, if you need to perform another cluster reset, you must first manually delete the "
        f"{flag} file"
    ) in messages(again.stderr)

    # 3. s1 starts without the flags: the reset-flag file goes, the cluster is as of the snapshot
    s1.start()
    wait_for(lambda: "k3s is up and running" in s1.log(), what="s1 after the restore")
    assert not flag.exists()
    assert kubectl(s1, "get", "pods", "-o", "name").stdout.split() == ["pod/before"]
    assert kubectl(s1, "get", "node", "a1", "-o", "jsonpath={.spec.unschedulable}").stdout == ""

    # s2 with the database it had is not a member of the new cluster: it never gets ready
    s2.start()
    wait_for(
        lambda: "this server is a not a member of the etcd cluster" in s2.log(),
        timeout=20,
        what="s2 refused with its old database",
    )
    assert "k3s is up and running" not in s2.log()
    assert not listening(s2.port)
    assert kubectl(s1, "get", "pods", "-o", "name").stdout.split() == ["pod/before"]  # nothing merged back
    s2.stop()

    # 4. on s2: the old database moved aside (kept), then it starts and joins again
    (s2.data_dir / "server" / "db").rename(s2.data_dir / "server" / "db-before-restore")
    s2.start()
    wait_for(lambda: "k3s is up and running" in s2.log(), what="s2 joined again")
    wait_for(
        lambda: (
            kubectl(s1, "wait", "--for=condition=Ready", "nodes", "--all", "--timeout=2s").returncode == 0
            and sorted(kubectl(s1, "get", "nodes", "-o", "name").stdout.split())
            == ["node/a1", "node/s1", "node/s2"]
        ),
        timeout=30,
        what="every node Ready",
    )
    wait_for(
        lambda: kubectl(s2, "get", "pods", "-o", "name").stdout.split() == ["pod/before"], what="s2 in step"
    )
    assert a1.proc.poll() is None


def test_a_file_that_is_not_a_sound_snapshot_is_refused_its_database_kept_aside(island, tmp_path):
    """k3s checks that the path is a file before anything; etcd checks the snapshot's sum after k3s
    moved the database aside (Restore): it is then in etcd-old-<time>, whole, and nothing is reset."""
    s1, snapshot = island["s1"], island["snapshot"]
    s1.stop()
    island["s2"].stop()
    data = snapshot.read_bytes()
    broken = {
        "truncated": data[:-1],
        "changed": data[:10] + bytes([data[10] ^ 1]) + data[11:],
        "not-a-database": (b"{}" + b" " * 510) + hashlib.sha256(b"{}" + b" " * 510).digest(),
    }
    expected = {
        "truncated": "snapshot missing hash but --skip-hash-check=false",
        "changed": "expected sha256 ",
        "not-a-database": "invalid database",
    }
    before = db_files(s1)
    # with etcd-s3 on, k3s reads the path as an object's name in the bucket: a local file needs it off
    s3 = reset(s1, f"--cluster-reset-restore-path={snapshot}", "--etcd-s3")
    assert s3.returncode == 1
    assert "give --etcd-s3=false to restore a local file" in messages(s3.stderr)
    missing = reset(s1, f"--cluster-reset-restore-path={tmp_path / 'absent'}")
    assert f"etcd: snapshot path does not exist: {tmp_path / 'absent'}" in messages(missing.stderr)
    directory = reset(s1, f"--cluster-reset-restore-path={tmp_path}")
    assert f"etcd: snapshot path must be a file, not a directory: {tmp_path}" in messages(directory.stderr)
    assert db_files(s1) == before
    for name, content in broken.items():
        path = tmp_path / name
        path.write_bytes(content)
        state = {k: v for k, v in db_files(s1).items() if not k.startswith(("snapshots/", "etcd-old-"))}
        result = reset(s1, f"--cluster-reset-restore-path={path}")
        assert result.returncode == 1, name
        log = messages(result.stderr)
        assert expected[name] in log, (name, result.stderr)
        moved = Path(re.search(r"Pre-restore etcd database moved to (\S+)", log).group(1))
        kept = {f"{moved.name}/{k}": v for k, v in state.items()}
        assert {k: v for k, v in db_files(s1).items() if k.startswith(moved.name)} == kept, name
        assert not (s1.data_dir / "server" / "db" / "reset-flag").exists()
        assert not (s1.data_dir / "server" / "db" / "double-state.json").exists()
        # the operator puts it back (k3s leaves that to them too)
        for file in moved.iterdir():
            file.rename(s1.data_dir / "server" / "db" / file.name)
        moved.rmdir()
        time.sleep(1)  # etcd-old-<unix time>: one a second


def test_a_token_that_did_not_write_the_snapshot_cannot_open_it(island):
    s1, snapshot = island["s1"], island["snapshot"]
    s1.stop()
    island["s2"].stop()
    # as k3s: the old database is moved aside first, then the bootstrap data does not open
    result = reset(s1, f"--cluster-reset-restore-path={snapshot}", "--token", "another")
    assert result.returncode == 1
    log = messages(result.stderr)
    assert "bootstrap data already found and encrypted with different token" in log
    moved = re.search(r"Pre-restore etcd database moved to (\S+)", log).group(1)
    assert (Path(moved) / "double-state.json").exists()
    assert RESET_DONE not in log
    # a normal start with that token is refused the same way; with the right one the reset works
    wrong = run(
        "server", "--config", str(s1.config_file), "--data-dir", str(s1.data_dir), "--token", "another",
        timeout=30,
    )  # fmt: skip
    assert wrong.returncode == 1
    assert "bootstrap data already found and encrypted with different token" in messages(wrong.stderr)
    again = reset(s1, f"--cluster-reset-restore-path={snapshot}")
    assert again.returncode == 0, again.stderr


def test_a_new_host_gets_the_clusters_ca_and_token_from_the_snapshot(island, tmp_path):
    s1, snapshot = island["s1"], island["snapshot"]
    s1.stop()
    island["s2"].stop()
    fresh = Node(tmp_path, "s9", "server", server_config(tmp_path, "s9", free_port()))
    copy = tmp_path / "restore.db"
    shutil.copy(snapshot, copy)
    done = reset(fresh, f"--cluster-reset-restore-path={copy}")
    assert done.returncode == 0, done.stderr
    tls, old_tls = fresh.data_dir / "server" / "tls", s1.data_dir / "server" / "tls"
    assert (tls / "server-ca.crt").read_bytes() == (old_tls / "server-ca.crt").read_bytes()
    assert (fresh.data_dir / "server" / "token").read_text() == (s1.data_dir / "server" / "token").read_text()


def test_a_server_left_running_through_a_reset_elsewhere_is_not_merged_back(island):
    """The docs stop every server first; one that was not stopped keeps the old cluster's identity,
    and the restored server does not take its view (etcd rejects a peer of another cluster ID)."""
    s1, s2, snapshot = island["s1"], island["s2"], island["snapshot"]
    s1.stop()
    assert reset(s1, f"--cluster-reset-restore-path={snapshot}").returncode == 0
    s1.start()
    wait_for(lambda: "k3s is up and running" in s1.log(), what="s1 after the restore")
    # s2 pushes its view to s1 at every heartbeat (500 ms): s1 keeps the snapshot's objects
    for _ in range(8):
        assert kubectl(s1, "get", "pods", "-o", "name").stdout.split() == ["pod/before"]
        time.sleep(0.5)
    # and s2, of the old cluster, keeps its own
    assert sorted(kubectl(s2, "get", "pods", "-o", "name").stdout.split()) == ["pod/after", "pod/before"]
