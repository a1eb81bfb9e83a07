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
from tests.support.net import free_port
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


# MinIO refuses drives on the root filesystem in every layout but a single drive, except in CI/CD
# mode (cmd/xl-storage.go getDiskInfo, RELEASE.2025-09-07T16-13-09Z; see the double's Drives). The
# tests' drives are directories under pytest's tmp_path, so a test double runs in that mode unless
# the test says otherwise (``ci_cd=False``: the root drive tests, with drives on / and elsewhere).
CI_CD = {"MINIO_CI_CD": "on"}


class Double:
    """A running double; stop() ends it (by its own pid). start() returns once ``ready`` answers 200:
    by default /minio/health/cluster, so the object layer is up (MinIO answers
    /minio/health/live before it has initialised); a node of a distributed deployment whose peers
    are not running yet waits on /minio/health/live instead."""

    def __init__(
        self,
        args,
        *,
        env=None,
        port,
        scheme="https",
        ca_file=None,
        log=None,
        ready="/minio/health/cluster",
        ci_cd=True,
    ):
        self.port, self.scheme, self.ca_file = port, scheme, ca_file
        self.args, self.env, self.ready = args, {**(CI_CD if ci_cd else {}), **(env or {})}, ready
        self.log = Path(log) if log else None
        self.proc = None
        self.start()

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIO_") and k != "CI"}
        if "MINIO_CONFIG_ENV_FILE" not in self.env:
            env.update({"MINIO_ROOT_USER": ROOT_USER, "MINIO_ROOT_PASSWORD": ROOT_PASSWORD})
        env.update(self.env)
        self.proc = launcher.DoubleProcess(
            "minio", ["server", *self.args], python=double_python(), env=env, log=self.log
        )
        self.proc.start(lambda: self.status(self.ready) == 200)

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


def tls_double(base, drives=("data",), console=True):
    """A running double over TLS under ``base``: a throwaway CA's certificate in MinIO's certs
    layout, free ports (the console's too unless ``console`` is false), the drives (paths under
    ``base``, MinIO's ellipsis notation allowed), its log in minio.log. Skips the test, saying why,
    when the double's interpreter cannot run it."""
    import pytest

    problem = double_python_problem()
    if problem:
        pytest.skip(problem)
    base = Path(base)
    ca_file, certs = make_pki(base)
    port = free_port()
    args = ["--address", f"127.0.0.1:{port}"]
    if console:
        args += ["--console-address", f"127.0.0.1:{free_port()}"]
    args += ["--certs-dir", str(certs), *(str(base / drive) for drive in drives)]
    return Double(args, port=port, ca_file=ca_file, log=base / "minio.log")


def s3_client(double, access_key=ROOT_USER, secret_key=ROOT_PASSWORD):
    """boto3's S3 client for the double (path-style, the island CA verifying its TLS)."""
    import boto3
    from botocore.client import Config

    return boto3.client(
        "s3",
        endpoint_url=double.url(),
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        verify=str(double.ca_file),
        config=Config(
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def admin_client(double, access_key=ROOT_USER, secret_key=ROOT_PASSWORD):
    """The MinIO SDK's admin client (what `mc admin` speaks) for the double over verified TLS."""
    import urllib3
    from minio import MinioAdmin
    from minio.credentials import StaticProvider

    return MinioAdmin(
        endpoint=f"127.0.0.1:{double.port}",
        credentials=StaticProvider(access_key, secret_key),
        secure=True,
        http_client=urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(double.ca_file)),
    )
