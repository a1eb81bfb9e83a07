"""The MinIO double in tests: a server certificate from a throwaway CA in MinIO's certs layout, and
the double as a process through the doubles' launcher.

The double runs under the interpreter named by MINIO_DOUBLE_PYTHON, by default the virtual
environment /var/tmp/minio-double-venv (Debian's /usr/bin/python3 with system site packages plus
pip-requirements.txt). Tests that need a running double skip when that interpreter cannot import
what the double needs.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.support import doubles as launcher
from tests.support.pki import TRADITIONAL, throwaway_ca, write_private

DOUBLE = launcher.double_path("minio")
DEFAULT_PYTHON = "/var/tmp/minio-double-venv/bin/python"
ROOT_USER, ROOT_PASSWORD = "island-root", "root-secret-123"


def double_python():
    return os.environ.get("MINIO_DOUBLE_PYTHON", DEFAULT_PYTHON)


def double_python_problem():
    """None if the interpreter can run the double, else why not (for pytest.skip)."""
    python = double_python()
    if not Path(python).exists():
        return (
            f"{python} does not exist (set MINIO_DOUBLE_PYTHON; see tests/doubles/minio/pip-requirements.txt)"
        )
    check = subprocess.run(
        [python, "-c", "import moto, argon2, flask, werkzeug, cryptography"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode:
        return f"{python} cannot import the double's packages: {check.stderr.strip().splitlines()[-1]}"
    return None


def make_pki(directory, names=("localhost",), ips=("127.0.0.1",)):
    """A CA and a server certificate under directory: ca.crt, certs/public.crt, certs/private.key
    (the layout of MinIO's --certs-dir, the CA also under certs/CAs)."""
    directory = Path(directory)
    ca = throwaway_ca("Island Test CA", days=2)
    cert, key = ca.issue(names[0], [*names, *ips], key_format=TRADITIONAL)
    certs = directory / "certs"
    (certs / "CAs").mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    (certs / "CAs" / "island-ca.crt").write_bytes(ca.cert_pem)
    (certs / "public.crt").write_bytes(cert)
    write_private(certs / "private.key", key)
    return directory / "ca.crt", certs


def run_double(args, env=None, timeout=30):
    """Run the double to completion (for refusals and --version)."""
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith("MINIO_") or k == "MINIO_DOUBLE_PYTHON"
    }
    full_env.update(env or {})
    python = double_python() if Path(double_python()).exists() else sys.executable
    return launcher.run_double("minio", args, python=python, env=full_env, timeout=timeout)


class Double:
    """A running double; stop() ends it (by its own pid)."""

    def __init__(self, args, *, env=None, port, scheme="https", ca_file=None, log=None):
        self.port, self.scheme, self.ca_file = port, scheme, ca_file
        self.args, self.env = args, env or {}
        self.log = Path(log) if log else None
        self.proc = None
        self.start()

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIO_")}
        if "MINIO_CONFIG_ENV_FILE" not in self.env:
            env.update({"MINIO_ROOT_USER": ROOT_USER, "MINIO_ROOT_PASSWORD": ROOT_PASSWORD})
        env.update(self.env)
        self.proc = launcher.DoubleProcess(
            "minio", ["server", *self.args], python=double_python(), env=env, log=self.log
        )
        self.proc.start(lambda: self.status("/minio/health/live") == 200)

    def ssl_context(self):
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else None

    def url(self, path=""):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def status(self, path):
        try:
            with urllib.request.urlopen(self.url(path), timeout=5, context=self.ssl_context()) as resp:  # noqa: S310
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def stop(self):
        if self.proc is not None:
            self.proc.stop(timeout=10)
