"""The one launcher for every test double (tests/doubles/<name>/<name>, see tests/doubles/README.md).

A double is an executable Python script that stands in for an upstream binary. Tests run it the
way the test bundle does, under an interpreter, either to completion (``run_double``: refusals,
``version``) or as a server (``DoubleProcess``: started, waited for until it answers, stopped by
its own pid). Per-double set-up (config files, certificates, clients) lives beside this file:
``gitea``, ``minio``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support import ROOT
from tests.support.net import wait_until

DOUBLES = ROOT / "tests" / "doubles"
SYSTEM_PYTHON = "/usr/bin/python3"
"""The interpreter of the Debian 12 test containers, which run the doubles from the bundle."""


def double_path(name: str) -> Path:
    """The executable of the double ``name`` (coredns, gitea, k3s, minio)."""
    return DOUBLES / name / name


def run_double(name: str, args, *, python: str = SYSTEM_PYTHON, env=None, timeout: float = 30, **kwargs):
    """Run the double to completion; its output is captured as text, never raises on failure."""
    return subprocess.run(
        [python, str(double_path(name)), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


class DoubleProcess:
    """A double running as a server: stdout and stderr go to ``log`` (appended) or nowhere."""

    def __init__(self, name: str, args, *, python: str = SYSTEM_PYTHON, env=None, log=None):
        self.name, self.args, self.python, self.env = name, list(args), python, env
        self.log = Path(log) if log else None
        self.proc: subprocess.Popen | None = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    @property
    def returncode(self) -> int | None:
        """The process's exit status once it ended (None while it runs or before start)."""
        return self.proc.poll() if self.proc is not None else None

    def _alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"the {self.name} double exited with {self.proc.returncode}:\n{self.log_text()}"
            )

    def start(self, ready: Callable[[], object], timeout: float = 30) -> DoubleProcess:
        """Start the process and wait until ``ready()`` is true (OSError counts as not yet)."""
        out = self.log.open("ab") if self.log else subprocess.DEVNULL  # lives with the process
        try:
            self.proc = subprocess.Popen(
                [self.python, str(double_path(self.name)), *self.args],
                env=self.env if self.env is not None else dict(os.environ),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        finally:
            if self.log:
                out.close()
        try:
            wait_until(ready, timeout=timeout, alive=self._alive, what=f"the {self.name} double answering")
        except TimeoutError as exc:
            self.stop()
            raise RuntimeError(f"{exc}:\n{self.log_text()}") from None
        return self

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; only this process. ``proc`` keeps its
        return code."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
