"""protect-kernel-defaults in the k3s double: like the kubelet (kubernetes v1.36
pkg/kubelet/cm/container_manager_linux.go setupKernelTunables), a server or agent exits when a
kernel parameter differs from the kubelet's value, naming each in the kubelet's words, and runs when
all match. ISLAND_TEST_SYSCTL_D (test-only) makes it read a sysctl.d directory as if systemd-sysctl
had applied it, because test containers share the CI host's read-only /proc/sys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.doubles import run_double
from tests.support.doubles.k3s import Node, messages, wait_for, write_yaml
from tests.support.net import free_port

CIS = {
    "vm.panic_on_oom": 0,
    "vm.overcommit_memory": 1,
    "kernel.panic": 10,
    "kernel.panic_on_oops": 1,
    "kernel.keys.root_maxkeys": 1000000,
    "kernel.keys.root_maxbytes": 25000000,
}


def _sysctl_d(tmp_path: Path, files: dict[str, dict[str, int]]) -> Path:
    directory = tmp_path / "sysctl.d"
    directory.mkdir()
    for name, values in files.items():
        (directory / name).write_text("# test\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return directory


def _run(tmp_path: Path, command: str, config: dict, sysctl_d: Path | None):
    config_file = write_yaml(tmp_path / "config.yaml", config)
    env = {k: v for k, v in os.environ.items() if k != "ISLAND_TEST_SYSCTL_D"}
    if sysctl_d is not None:
        env["ISLAND_TEST_SYSCTL_D"] = str(sysctl_d)
    return run_double(
        "k3s", [command, "--config", str(config_file), "--data-dir", str(tmp_path / "data")], env=env
    )


def _server(tmp_path: Path, **extra) -> dict:
    return {
        "node-name": "s1",
        "node-ip": "127.0.0.1",
        "bind-address": "127.0.0.1",
        "https-listen-port": free_port(),
        "write-kubeconfig": str(tmp_path / "k3s.yaml"),
        "private-registry": str(tmp_path / "absent-registries.yaml"),
        "cluster-init": True,
        "token": "secret",
        **extra,
    }


def test_a_server_with_the_host_defaults_exits_naming_each_parameter_as_the_kubelet_does(tmp_path):
    # vm.overcommit_memory 0, kernel.panic 0 and kernel.panic_on_oops 0: Debian's defaults
    directory = _sysctl_d(tmp_path, {"90-kubelet.conf": {**CIS, "vm.overcommit_memory": 0}})
    (directory / "95-local.conf").write_text("kernel.panic=0\nkernel/panic_on_oops = 0\n")
    result = _run(tmp_path, "server", _server(tmp_path, **{"protect-kernel-defaults": True}), directory)
    text = messages(result.stderr)
    assert result.returncode == 1, text
    assert "kubelet exited: [" in text
    assert "invalid kernel flag: vm/overcommit_memory, expected value: 1, actual value: 0" in text
    assert "invalid kernel flag: kernel/panic, expected value: 10, actual value: 0" in text
    assert "invalid kernel flag: kernel/panic_on_oops, expected value: 1, actual value: 0" in text
    assert "vm/panic_on_oom" not in text
    assert not (tmp_path / "k3s.yaml").exists()


def test_an_agent_refuses_too(tmp_path):
    directory = _sysctl_d(tmp_path, {"90-kubelet.conf": {**CIS, "kernel.keys.root_maxkeys": 200}})
    config = {"server": "https://127.0.0.1:1", "token": "secret", "protect-kernel-defaults": True}
    result = _run(tmp_path, "agent", config, directory)
    text = messages(result.stderr)
    assert result.returncode == 1, text
    flag = "kernel/keys/root_maxkeys, expected value: 1000000, actual value: 200"
    assert f"kubelet exited: invalid kernel flag: {flag}" in text


def test_without_a_sysctl_d_override_the_double_reads_the_kernel(tmp_path):
    # whatever this machine's kernel says: the double refuses exactly the parameters that differ
    differ = []
    for key, expected in CIS.items():
        actual = int(Path("/proc/sys", key.replace(".", "/")).read_text())
        if actual != expected:
            flag = key.replace(".", "/")
            differ.append(f"invalid kernel flag: {flag}, expected value: {expected}, actual value: {actual}")
    if not differ:
        pytest.skip("this machine's kernel already has the kubelet's values")
    result = _run(tmp_path, "server", _server(tmp_path, **{"protect-kernel-defaults": True}), None)
    text = messages(result.stderr)
    assert result.returncode == 1, text
    for line in differ:
        assert line in text


def test_with_every_value_set_the_server_runs(tmp_path):
    directory = _sysctl_d(tmp_path, {"90-kubelet.conf": CIS})
    node = Node(tmp_path, "s1", "server", _server(tmp_path / "s1-cfg", **{"protect-kernel-defaults": True}))
    (tmp_path / "s1-cfg").mkdir()
    try:
        node.start(env={"ISLAND_TEST_SYSCTL_D": str(directory)})
        wait_for((tmp_path / "s1-cfg" / "k3s.yaml").exists, what="the server's kubeconfig")
        assert node.proc.poll() is None
        assert "invalid kernel flag" not in node.log()
    finally:
        node.stop()


def test_without_protect_kernel_defaults_nothing_is_checked(tmp_path):
    directory = _sysctl_d(tmp_path, {"90-kubelet.conf": {**CIS, "kernel.panic": 0}})
    node = Node(tmp_path, "a1", "agent", {"server": "https://127.0.0.1:1", "token": "secret"})
    try:
        node.start(env={"ISLAND_TEST_SYSCTL_D": str(directory)})
        # past the kubelet's start: it goes on to reach its server
        wait_for(lambda: "Failed to validate connection" in node.log(), what="the agent's first join attempt")
        assert node.proc.poll() is None
        assert "invalid kernel flag" not in node.log()
    finally:
        node.stop()
