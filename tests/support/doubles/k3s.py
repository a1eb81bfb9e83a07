"""The k3s double in tests: a server or agent process of the double with its config.yaml, data
directory and log (through the doubles' launcher), and the double's CLI (kubectl included)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from tests.support import ROOT
from tests.support.doubles import SYSTEM_PYTHON, DoubleProcess, double_path, run_double
from tests.support.net import wait_until

DOUBLE = double_path("k3s")
PYTHON = SYSTEM_PYTHON
KUBECTL = ROOT / ".cache" / "kubectl" / "kubectl"
"""The real kubectl the double carries, as the controller runs it (tests/doubles/k3s/kubectl.pin)."""

# `k3s kubectl` stages the kubectl the double carries into <data-dir>/data/<hash>/bin, the data dir
# read from the config file as k3s does; the tests point K3S_CONFIG_FILE at one shared data dir, so
# it is staged once and never under /var/lib/rancher on the test machine.
_CLI_CONFIG = ROOT / ".cache" / "doubles" / "k3s-cli" / "config.yaml"


def cli_env(extra: dict | None = None) -> dict:
    if not _CLI_CONFIG.is_file():
        _CLI_CONFIG.parent.mkdir(parents=True, exist_ok=True)
        _CLI_CONFIG.write_text(yaml.safe_dump({"data-dir": str(_CLI_CONFIG.parent / "data")}))
    return {**os.environ, "K3S_CONFIG_FILE": str(_CLI_CONFIG), **(extra or {})}


def run(*args: str, timeout: float = 20, env: dict | None = None) -> subprocess.CompletedProcess:
    if args[:1] == ("kubectl",):
        return run_double("k3s", args, timeout=timeout, env=cli_env(env))
    return run_double("k3s", args, timeout=timeout, env={**os.environ, **env} if env else None)


def messages(stderr: str) -> str:
    """The log lines' msg values, unquoted (logrus quotes them as Go's %q does)."""
    out = []
    for line in stderr.splitlines():
        if " msg=" in line:
            out.append(json.loads(line.split(" msg=", 1)[1]))
        else:
            out.append(line)
    return "\n".join(out)


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def wait_for(predicate, timeout: float = 20, interval: float = 0.2, what: str = "condition"):
    """``predicate()``'s first true result, polled every ``interval`` s for ``timeout`` s."""
    return wait_until(predicate, timeout=timeout, interval=interval, what=what)


class Node:
    """One k3s server or agent process of the double, with its config, data dir and log."""

    def __init__(self, base: Path, name: str, command: str, config: dict):
        self.name = name
        self.command = command
        self.dir = base / name
        self.dir.mkdir()
        self.config_file = self.dir / "config.yaml"
        self.data_dir = self.dir / "data"
        self.log_file = self.dir / "k3s.log"
        self.kubeconfig = self.dir / "k3s.yaml"
        self.port = config.get("https-listen-port")
        write_yaml(self.config_file, config)
        self.proc: subprocess.Popen | None = None
        self.binary = DOUBLE  # a copy with another K3S_VERSION stands for an upgraded binary

    def start(self, env: dict | None = None) -> Node:
        self.process = DoubleProcess(
            "k3s",
            [self.command, "--config", str(self.config_file), "--data-dir", str(self.data_dir)],
            env={**os.environ, **(env or {})},
            log=self.log_file,
            append=False,
            executable=self.binary,
        ).spawn()
        self.proc = self.process.proc
        return self

    def log(self) -> str:
        return self.log_file.read_text()

    def stop(self) -> None:
        if self.proc is not None:
            self.process.stop(timeout=10)

    def kubectl(self, *args: str) -> subprocess.CompletedProcess:
        return run("kubectl", "--kubeconfig", str(self.kubeconfig), *args)


def server_config(base: Path, name: str, port: int, **extra: object) -> dict:
    """A k3s server's config.yaml on loopback under ``base/<name>``, with ``extra`` keys."""
    config = {
        "node-name": name,
        "node-ip": "127.0.0.1",
        "bind-address": "127.0.0.1",
        "https-listen-port": port,
        "write-kubeconfig": str(base / name / "k3s.yaml"),
        "private-registry": str(base / "absent-registries.yaml"),
        # real kube-controller-manager and kubelet flags, shortened so NotReady shows in seconds
        "kube-controller-manager-arg": ["node-monitor-grace-period=3s"],
        "kubelet-arg": ["node-status-update-frequency=500ms"],
    }
    config.update(extra)
    return config


def controller_kubectl(kubeconfig, *args: str, stdin: str | None = None, timeout: float = 60):
    """The controller's kubectl (the real binary), as an operator runs it with the fetched kubeconfig
    (a path, or a Node, whose kubeconfig is used)."""
    kubeconfig = getattr(kubeconfig, "kubeconfig", kubeconfig)
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
