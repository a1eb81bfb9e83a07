"""Start the MinIO double for tests: a throwaway CA, a server certificate, free ports, a process.

The double runs under the interpreter named by MINIO_DOUBLE_PYTHON, by default the virtual
environment /var/tmp/minio-double-venv (Debian's /usr/bin/python3 with system site packages plus
pip-requirements.txt). Tests that need a running double skip when that interpreter cannot import
what the double needs.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DOUBLE = Path(__file__).resolve().parent / "minio"
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(directory, names=("localhost",), ips=("127.0.0.1",)):
    """A CA and a server certificate under directory: ca.crt, certs/public.crt, certs/private.key."""
    directory = Path(directory)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Island Test CA"))
        .issuer_name(_name("Island Test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    certs = directory / "certs"
    (certs / "CAs").mkdir(parents=True, exist_ok=True)
    pem_ca = ca_cert.public_bytes(serialization.Encoding.PEM)
    (directory / "ca.crt").write_bytes(pem_ca)
    (certs / "CAs" / "island-ca.crt").write_bytes(pem_ca)
    (certs / "public.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (certs / "private.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    os.chmod(certs / "private.key", 0o600)
    return directory / "ca.crt", certs


def run_double(args, env=None, timeout=30):
    """Run the double to completion (for refusals and --version)."""
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith("MINIO_") or k == "MINIO_DOUBLE_PYTHON"
    }
    full_env.update(env or {})
    python = double_python() if Path(double_python()).exists() else sys.executable
    return subprocess.run(
        [python, str(DOUBLE), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


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
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [double_python(), str(DOUBLE), "server", *self.args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        self.wait_live()

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

    def wait_live(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.log.read_text(errors="replace") if self.log else ""
                raise RuntimeError(f"the MinIO double exited with {self.proc.returncode}:\n{log}")
            try:
                if self.status("/minio/health/live") == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the MinIO double did not become live")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
