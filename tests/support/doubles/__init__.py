"""The one launcher for every test double (tests/doubles/<name>/<name>, built by ``build``).

A double is an executable Python script that stands in for an upstream binary. Tests run it the
way the test bundle does, under an interpreter, either to completion (``run_double``: refusals,
``version``) or as a server (``DoubleProcess``: spawned, waited for until it answers, stopped by
its own pid). Per-double set-up (config files, certificates, clients) lives beside this file:
``gitea``, ``minio``.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.doubles.build import built_double
from tests.support.net import wait_until

SYSTEM_PYTHON = "/usr/bin/python3"
"""The interpreter of the Debian 12 test containers, which run the doubles from the bundle."""


def double_path(name: str) -> Path:
    """The executable of the double ``name`` (coredns, gitea, k3s, minio): its source
    tests/doubles/<name>/<name> built into one file with the common base, as the test bundle ships it
    (tests/support/doubles/build.py)."""
    return built_double(name)


def run_double(
    name: str,
    args,
    *,
    python: str = SYSTEM_PYTHON,
    env=None,
    timeout: float | None = 30,
    executable=None,
    **kwargs,
):
    """Run the double to completion; its output is captured as text, never raises on failure.
    ``kwargs`` go to subprocess.run (cwd, input)."""
    return subprocess.run(
        [python, str(executable or double_path(name)), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


class DoubleProcess:
    """A double running as a server.

    Its stdout goes to ``log`` and its stderr to ``stderr_log`` (to ``log`` when not given); the
    files are truncated unless ``append``; without ``log`` both are discarded. ``executable`` runs
    another file than tests/doubles/<name>/<name> (a copy standing for an upgraded binary).
    ``proc`` is the subprocess.Popen once spawned.
    """

    def __init__(
        self, name: str, args, *, python: str = SYSTEM_PYTHON, env=None, log=None, stderr_log=None,
        append: bool = True, cwd=None, executable=None,
    ):  # fmt: skip
        self.name, self.args, self.python, self.env, self.cwd = name, list(args), python, env, cwd
        self.executable = Path(executable) if executable else double_path(name)
        self.log = Path(log) if log else None
        self.stderr_log = Path(stderr_log) if stderr_log else None
        self.mode = "ab" if append else "wb"
        self.proc: subprocess.Popen | None = None

    def log_text(self) -> str:
        paths = (self.log, self.stderr_log)
        return "".join(p.read_text(errors="replace") for p in paths if p is not None and p.exists())

    @property
    def returncode(self) -> int | None:
        """The process's exit status once it ended (None while it runs or before it started)."""
        return self.proc.poll() if self.proc is not None else None

    def _alive(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(
                f"the {self.name} double exited with {self.proc.returncode}:\n{self.log_text()}"
            )

    def spawn(self) -> DoubleProcess:
        """Start the process and return at once (the files live on with the process)."""
        out = self.log.open(self.mode) if self.log else subprocess.DEVNULL
        err = self.stderr_log.open(self.mode) if self.stderr_log else subprocess.STDOUT
        try:
            self.proc = subprocess.Popen(
                [self.python, str(self.executable), *self.args],
                env=self.env if self.env is not None else dict(os.environ),
                cwd=self.cwd,
                stdout=out,
                stderr=err,
            )
        finally:
            for handle in (out, err):
                if hasattr(handle, "close"):
                    handle.close()
        return self

    def wait_ready(self, ready: Callable[[], object], timeout: float = 30) -> DoubleProcess:
        """Wait until ``ready()`` is true (OSError counts as not yet); a process that exits first,
        or a timeout, raises RuntimeError with its log (the process is stopped then)."""
        try:
            wait_until(ready, timeout=timeout, alive=self._alive, what=f"the {self.name} double answering")
        except TimeoutError as exc:
            self.stop()
            raise RuntimeError(f"{exc}:\n{self.log_text()}") from None
        return self

    def start(self, ready: Callable[[], object], timeout: float = 30) -> DoubleProcess:
        """spawn(), then wait_ready()."""
        return self.spawn().wait_ready(ready, timeout)

    def stop(self, timeout: float = 20, sig: int = signal.SIGTERM) -> int | None:
        """Send ``sig`` (SIGTERM), then SIGKILL after ``timeout`` seconds; only this process.
        Returns its exit status (``proc`` keeps it)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.returncode
