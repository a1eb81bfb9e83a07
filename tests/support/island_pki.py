"""Helpers for the island PKI tests: the island's own CA in a temp dir, issuing, independent checkers.

The checkers are deliberately not our code: ``openssl verify`` (the CLI) and a real TLS handshake
through Python's ``ssl`` module (OpenSSL's X.509 verifier, name constraints included).
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import threading
from pathlib import Path

from ansible_collections.island.installer.plugins.module_utils.island_pki import cert_pem
from ansible_collections.island.installer.plugins.module_utils.island_pki_ca import CaSpec, ensure_ca
from ansible_collections.island.installer.plugins.module_utils.island_pki_host import (
    ensure_certificate_file,
    ensure_key_and_csr,
)
from ansible_collections.island.installer.plugins.module_utils.island_pki_sign import sign_csr

PASSPHRASE = "correct horse battery staple"
DOMAIN = "island.internal"
IP_RANGE = "127.0.0.0/8"


def ca_spec(ca_dir, **overrides):
    kwargs = {"ip_ranges": [IP_RANGE]}
    kwargs.update(overrides)
    passphrase = kwargs.pop("passphrase", PASSPHRASE)
    domains = kwargs.pop("domains", [DOMAIN])
    return CaSpec(str(ca_dir), passphrase, domains, **kwargs)


def make_ca(ca_dir, **overrides):
    return ensure_ca(ca_spec(ca_dir, **overrides))


class Service:
    """A service on a 'host' directory: its key, CSR and installed certificate file."""

    def __init__(self, host_dir, name="svc"):
        self.dir = Path(host_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = self.dir / f"{name}.key"
        self.cert = self.dir / f"{name}.crt"

    def csr(self, sans, **kwargs):
        return ensure_key_and_csr(str(self.key), sans, **kwargs)

    def current(self):
        return self.cert.read_text() if self.cert.exists() else ""

    def issue(self, ca, sans, **sign_kwargs):
        """Host makes key+CSR, controller signs if needed, host installs. Returns the sign result."""
        csr = self.csr(sans)
        signed = sign_csr(csr.csr_pem, ca.intermediate, current_pem=self.current(), **sign_kwargs)
        if signed.changed:
            ensure_certificate_file(
                str(self.cert),
                cert_pem(signed.cert),
                chain=[cert_pem(ca.intermediate.cert)],
                key_path=str(self.key),
            )
        return signed


def write_bundle(path, ca_result):
    Path(path).write_text(ca_result.trust_bundle)
    return str(path)


def openssl_verify(trust_file, cert_file, untrusted_file=None):
    """``openssl verify``; returns (ok, output). The leaf is the first certificate of cert_file."""
    cmd = ["openssl", "verify", "-CAfile", str(trust_file)]
    if untrusted_file is not None:
        cmd += ["-untrusted", str(untrusted_file)]
    cmd.append(str(cert_file))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return proc.returncode == 0, proc.stdout + proc.stderr


@contextlib.contextmanager
def tls_server(chain_file, key_file):
    """A TLS server on 127.0.0.1 (in a thread) presenting ``chain_file``; yields the port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(chain_file), str(key_file))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    errors = []

    def serve():
        try:
            conn, _ = listener.accept()
        except OSError as exc:  # listener closed before a client came
            errors.append(exc)
            return
        with conn:
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"island\n")
            except (ssl.SSLError, OSError) as exc:  # the client refused us: that is a test outcome
                errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        listener.close()
        thread.join(timeout=10)


def tls_fetch(port, trust_file, server_hostname):
    """Connect with Python's ssl (default verification, hostname check) and read the greeting."""
    context = ssl.create_default_context(cafile=str(trust_file))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        return tls.recv(64)


def snapshot(directory):
    """Bytes and mtime of every file under ``directory`` (to prove nothing was touched)."""
    out = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, directory)] = (handle.read(), os.stat(path).st_mtime_ns)
    return out
