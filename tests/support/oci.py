"""Real servers and real images for the OCI client tests, the test bundle and the seeding benchmark.

- ``make_pki``: a server certificate for 127.0.0.1/localhost from a throwaway CA (tests.support.pki).
- ``Registry``: Debian's CNCF distribution 2.8.2 (`/usr/bin/docker-registry`) on 127.0.0.1 on a
  free port, TLS with that certificate, htpasswd (bcrypt) auth, and its access log parsed.
- ``ImageFactory``: small real OCI images written into an OCI layout (gzip layers from tar files
  made here, configs, manifests, a multi-arch index).
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.parse
from pathlib import Path

import bcrypt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support.net import free_port
from tests.support.pki import throwaway_ca, write_private

REGISTRY_BIN = "/usr/bin/docker-registry"
USER = "seeder"
PASSWORD = "correct horse battery staple"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_TYPES = {
    "manifest": OCI_MANIFEST,
    "index": OCI_INDEX,
    "config": "application/vnd.oci.image.config.v1+json",
    "layer": "application/vnd.oci.image.layer.v1.tar+gzip",
}
DOCKER_TYPES = {
    "manifest": "application/vnd.docker.distribution.manifest.v2+json",
    "index": "application/vnd.docker.distribution.manifest.list.v2+json",
    "config": "application/vnd.docker.container.image.v1+json",
    "layer": "application/vnd.docker.image.rootfs.diff.tar.gzip",
}

# distribution 2.8.2 writes a gorilla/handlers combined access log line per request to stdout, e.g.
# 127.0.0.1 - - [21/Nov/2026:13:00:00 +0000] "PUT /v2/library/a/manifests/1 HTTP/1.1" 201 0 "" "ua"
_ACCESS_RE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) ')


needs_registry = pytest.mark.skipif(
    not (os.access(REGISTRY_BIN, os.X_OK) and shutil.which("skopeo")),
    reason="needs Debian's docker-registry and skopeo",
)


# --- PKI -----------------------------------------------------------------------------------------
def make_pki(directory, common_name="island test CA", sans=("localhost", "127.0.0.1")):
    """Write ca.crt, server.crt, server.key into ``directory`` from a throwaway CA; return their paths.

    ``sans``: the server certificate's subject alternative names (IP addresses or DNS names).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = throwaway_ca(common_name)
    cert, key = ca.issue("registry.island.test", sans)
    # skopeo's --cert-dir reads every *.crt as a CA and pairs *.cert with *.key as a client
    # certificate, so the directory of ca.crt holds nothing else.
    (directory / "server").mkdir(exist_ok=True)
    paths = {
        "ca": directory / "ca.crt",
        "cert": directory / "server" / "server.crt",
        "key": directory / "server" / "server.key",
        "ca_key": directory / "server" / "ca.key",
    }
    paths["ca"].write_bytes(ca.cert_pem)
    paths["cert"].write_bytes(cert)
    write_private(paths["key"], key)
    write_private(paths["ca_key"], ca.key_pem())
    return paths


# --- Registry ------------------------------------------------------------------------------------
class Registry:
    """One docker-registry process; storage and port survive stop()/start()."""

    def __init__(self, workdir, pki, port=None, user=USER, password=PASSWORD, *, storage=None, env=None):
        """``storage``: the configuration's storage section instead of the filesystem one (for
        example the s3 driver); ``env``: environment for the process over os.environ (None removes a
        name)."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.user = user
        self.password = password
        self.storage = self.workdir / "storage"
        self.log_path = self.workdir / "registry.log"
        self.proc = None
        self.env = env
        htpasswd = self.workdir / "htpasswd"
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        htpasswd.write_text(f"{user}:{hashed}\n")
        config = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": storage
            or {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
            "http": {
                "addr": self.address,
                # A fixed secret keeps upload sessions (_state) valid across a restart.
                "secret": "island-test-secret",
                "tls": {"certificate": str(pki["cert"]), "key": str(pki["key"])},
            },
            "auth": {"htpasswd": {"realm": "island-test", "path": str(htpasswd)}},
        }
        self.config = self.workdir / "config.yml"
        self.config.write_text(json.dumps(config))  # JSON is YAML

    def start(self, timeout=20):
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=self._environment(),
        )
        log.close()
        # Readiness probe only: the certificate may carry other names on purpose (mismatch tests).
        ctx = ssl.create_default_context(cafile=str(self.pki["ca"]))
        ctx.check_hostname = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_path.read_text()[-2000:]}")
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw,
                    ctx.wrap_socket(raw, server_hostname="127.0.0.1"),
                ):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not listen on {self.address}")

    def _environment(self):
        """None (inherit), or os.environ updated with self.env, where a None value removes a name."""
        if not self.env:
            return None
        env = {**os.environ, **self.env}
        return {k: v for k, v in env.items() if v is not None}

    def kill(self):
        """SIGKILL: the abrupt end a power cut or OOM gives."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    # -- request log --------------------------------------------------------------------------------
    def log_mark(self):
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def requests(self, since=0):
        """(method, path, status) of every request the registry logged after ``since``."""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        return [
            (m["method"], urllib.parse.unquote(m["path"]), int(m["status"]))
            for m in _ACCESS_RE.finditer(text)
        ]

    def writes(self, since=0):
        return [r for r in self.requests(since) if r[0] in ("POST", "PUT", "PATCH", "DELETE")]

    def client(self, **kwargs):
        from ansible_collections.island.installer.plugins.module_utils.island_oci import RegistryClient

        kwargs.setdefault("ca_file", str(self.pki["ca"]))
        kwargs.setdefault("username", self.user)
        kwargs.setdefault("password", self.password)
        kwargs.setdefault("retries", 1)
        kwargs.setdefault("backoff", 0.05)
        return RegistryClient(self.address, **kwargs)

    def skopeo_args(self, prefix=""):
        """TLS verified against the test CA (a cert dir holding ca.crt), credentials given."""
        return [
            f"--{prefix}cert-dir",
            str(self.pki["ca"].parent),
            f"--{prefix}creds",
            f"{self.user}:{self.password}",
        ]

    def copy_out(self, repo_ref, destination, *flags):
        """skopeo, an independent client, copies ``repo_ref`` out of this registry into the OCI
        layout reference ``destination`` (``dir`` or ``dir:name``), digests preserved; returns
        the finished process."""
        return run(
            ["skopeo", "copy", *flags, "--preserve-digests", *self.skopeo_args("src-"),
             f"docker://{self.address}/{repo_ref}", f"oci:{destination}"]
        )  # fmt: skip

    def skopeo_raw(self, repo_ref):
        """Manifest bytes as skopeo, an independent client, reads them."""
        out = subprocess.run(
            ["skopeo", "inspect", "--raw", *self.skopeo_args(), f"docker://{self.address}/{repo_ref}"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        return out.stdout


# --- Images --------------------------------------------------------------------------------------
def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(members):
    """An uncompressed tar (PAX) of ``members`` {path: bytes}, in their order, mode 0644, mtime 0."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def make_layer(files):
    """A gzip-compressed layer tar with ``files`` {path: bytes}; deterministic. Returns (blob, diff_id)."""
    tar_bytes = tar_of(dict(sorted(files.items())))
    blob = gzip.compress(tar_bytes, compresslevel=6, mtime=0)
    return blob, sha256(tar_bytes)


class ImageFactory:
    """Writes real OCI images into an OCI layout (the format the bundle carries)."""

    def __init__(self, layout):
        self.layout = layout.init()

    def blob(self, data):
        return self.layout.write_blob(data)

    def image_manifest(self, layers, arch="amd64", label="x", docker=False):
        """Store config + manifest for ``layers`` [(blob, diff_id)]; return the manifest descriptor.

        ``docker``: Docker image manifest v2 schema 2 media types instead of OCI ones.
        """
        types = DOCKER_TYPES if docker else OCI_TYPES
        layer_descs = []
        for blob, _diff in layers:
            layer_descs.append(
                {
                    "mediaType": types["layer"],
                    "digest": self.blob(blob),
                    "size": len(blob),
                }
            )
        config = json.dumps(
            {
                "architecture": arch,
                "os": "linux",
                "config": {"Labels": {"test": label}},
                "rootfs": {"type": "layers", "diff_ids": [d for _b, d in layers]},
            },
            sort_keys=True,
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": types["manifest"],
                "config": {
                    "mediaType": types["config"],
                    "digest": self.blob(config),
                    "size": len(config),
                },
                "layers": layer_descs,
            },
            indent=3,  # unusual formatting on purpose: re-serialising would change the digest
        ).encode()
        return {"mediaType": types["manifest"], "digest": self.blob(manifest), "size": len(manifest)}

    def image(self, ref, layers, **kwargs):
        desc = self.image_manifest(layers, **kwargs)
        self.layout.set_image(_parse(ref), desc)
        return desc

    def index(self, ref, platforms, layers_by_platform, label="multi", docker=False):
        types = DOCKER_TYPES if docker else OCI_TYPES
        children = []
        for platform in platforms:
            os_name, arch = platform.split("/")
            desc = self.image_manifest(layers_by_platform[platform], arch=arch, label=label, docker=docker)
            desc["platform"] = {"os": os_name, "architecture": arch}
            children.append(desc)
        index = json.dumps({"schemaVersion": 2, "mediaType": types["index"], "manifests": children}).encode()
        desc = {"mediaType": types["index"], "digest": self.blob(index), "size": len(index)}
        self.layout.set_image(_parse(ref), desc)
        return desc


def _parse(ref):
    from ansible_collections.island.installer.plugins.module_utils.island_oci import ImageReference

    return ImageReference.parse(ref)


def run(cmd, **kwargs):
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 300)
    return subprocess.run(cmd, check=False, **kwargs)


def make_docker_archive(path, images):
    """Write a legacy `docker save` archive (docker <= 24 layout) holding ``images``.

    ``images``: list of (repo_tags, [layer file dicts]). Layers are uncompressed tars in
    ``<id>/layer.tar`` with ``VERSION`` and ``json`` beside them; configs are ``<sha256>.json``.
    Returns {repo_tag: (config bytes, [layer tar bytes])}.
    """
    members = {}
    manifest, repositories, out = [], {}, {}
    for repo_tags, layer_files in images:
        layer_tars = []
        for files in layer_files:
            raw = io.BytesIO()
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for name, data in sorted(files.items()):
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime = len(data), 0
                    tar.addfile(info, io.BytesIO(data))
            layer_tars.append(raw.getvalue())
        diff_ids = [sha256(t) for t in layer_tars]
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
        ).encode()
        layer_names = []
        for tar_bytes, diff_id in zip(layer_tars, diff_ids, strict=True):
            layer_id = diff_id.split(":")[1]
            members[f"{layer_id}/layer.tar"] = tar_bytes
            members[f"{layer_id}/VERSION"] = b"1.0"
            members[f"{layer_id}/json"] = json.dumps({"id": layer_id}).encode()
            layer_names.append(f"{layer_id}/layer.tar")
        config_name = sha256(config).split(":")[1] + ".json"
        members[config_name] = config
        manifest.append({"Config": config_name, "RepoTags": repo_tags, "Layers": layer_names})
        for tag in repo_tags:
            repo, _, name = tag.rpartition(":")
            repositories.setdefault(repo, {})[name] = layer_names[-1].split("/")[0]
            out[tag] = (config, layer_tars)
    members["manifest.json"] = json.dumps(manifest).encode()
    members["repositories"] = json.dumps(repositories).encode()
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return out


# --- Token authentication (docker token spec, as distribution 2.8.2 verifies it) -----------------
def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A token service for distribution's `auth: token`: HTTPS, Basic credentials in, ES256 JWT out.

    distribution 2.8.2 (registry/auth/token) verifies the JWT's `x5c` chain against
    `rootcertbundle`, then `iss`, `aud` (= service), `exp`/`nbf`, and the `access` claim.
    """

    issuer = "island-test-issuer"
    service = "island-test-registry"

    def __init__(self, workdir, pki, user=USER, password=PASSWORD):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.user, self.password = user, password
        self.requests = []
        ca_key = serialization.load_pem_private_key(Path(pki["ca_key"]).read_bytes(), None)
        ca = x509.load_pem_x509_certificate(Path(pki["ca"]).read_bytes())
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "island token signer")]))
            .issuer_name(ca.subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(ca_key, hashes.SHA256())
        )
        self.port = free_port()
        self.realm = f"https://127.0.0.1:{self.port}/token"
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                server.requests.append(query)
                expected = "Basic " + base64.b64encode(f"{server.user}:{server.password}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"token": server.token(query.get("scope", [])), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pki["cert"]), str(pki["key"]))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def token(self, scopes):
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {
            "typ": "JWT",
            "alg": "ES256",
            "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": self.issuer,
            "sub": self.user,
            "aud": self.service,
            "exp": now + 300,
            "nbf": now - 60,
            "iat": now,
            "jti": os.urandom(8).hex(),
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def configure(self, registry):
        """Switch a (stopped) Registry from htpasswd to this token service."""
        config = json.loads(registry.config.read_text())
        config["auth"] = {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(registry.pki["ca"]),
            }
        }
        registry.config.write_text(json.dumps(config))

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
