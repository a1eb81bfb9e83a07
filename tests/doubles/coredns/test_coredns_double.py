"""The CoreDNS test double behaves like CoreDNS 1.14.3 where the roles can see it.

Each test starts the double as the dns role does (``coredns -conf FILE``) with Debian's
/usr/bin/python3, on 127.0.0.1 and free high ports, and asks it questions with the real ``dig``.
"""

from __future__ import annotations

import datetime
import http.client
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.doubles import SYSTEM_PYTHON, DoubleProcess, double_path, run_double
from tests.support.net import free_tcp_and_udp_port as free_port
from tests.support.net import port_open
from tests.support.pki import ThrowawayCA, key_pem, throwaway_ca, write_private

DOUBLE = double_path("coredns")
PYTHON = SYSTEM_PYTHON

ZONE = """\
$ORIGIN island.test.
$TTL 300
@       IN SOA  ns1.island.test. hostmaster.island.test. {serial} 7200 3600 1209600 60
@       IN NS   ns1
ns1     IN A    127.0.0.1
registry IN A   {registry}
registry IN AAAA fd00::10
git     IN CNAME registry
_https._tcp IN SRV 0 5 443 registry
note    IN TXT  "island of trust"
"""

REVERSE_ZONE = """\
$ORIGIN 0.0.10.in-addr.arpa.
$TTL 300
@   IN SOA ns1.island.test. hostmaster.island.test. 1 7200 3600 1209600 60
@   IN NS  ns1.island.test.
10  IN PTR registry.island.test.
"""


@dataclass
class Answer:
    status: str
    flags: set[str]
    answer: list[str]
    authority: list[str]


def dig(port: int, name: str, rtype: str = "A", tcp: bool = False) -> Answer:
    cmd = ["dig", "@127.0.0.1", "-p", str(port), name, rtype, "+norec", "+time=2", "+tries=1"]
    cmd += ["+noall", "+comments", "+answer", "+authority"] + (["+tcp"] if tcp else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True).stdout
    status = re.search(r"status: (\w+)", out).group(1)
    flags = set(re.search(r";; flags: ([\w ]*);", out).group(1).split())
    sections: dict[str, list[str]] = {"ANSWER": [], "AUTHORITY": []}
    current = None
    for line in out.splitlines():
        m = re.match(r";; (\w+) SECTION:", line)
        if m:
            current = m.group(1)
        elif line and not line.startswith(";") and current in sections:
            sections[current].append(" ".join(line.split()))
    return Answer(status, flags, sections["ANSWER"], sections["AUTHORITY"])


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Double:
    """A running double; stdout and stderr are collected in files for the assertions."""

    def __init__(self, workdir: Path, corefile: str, *args: str):
        self.dir = workdir
        self.corefile = workdir / "Corefile"
        self.corefile.write_text(corefile)
        self.out = workdir / "stdout.log"
        self.err = workdir / "stderr.log"
        self.process = DoubleProcess(
            "coredns", ["-conf", str(self.corefile), *args], log=self.out, stderr_log=self.err,
            append=False, cwd=workdir,
        ).spawn()  # fmt: skip
        self.proc = self.process.proc

    def wait_serving(self, port: int) -> Double:
        self.process.wait_ready(lambda: port_open(port), timeout=10)
        return self

    def stdout(self) -> str:
        return self.out.read_text()

    def wait_output(self, text: str, timeout: float = 10) -> str:
        """The double's stdout once it holds `text` (it logs from its own threads, a moment later)."""
        deadline = time.monotonic() + timeout
        while text not in self.stdout():
            assert time.monotonic() < deadline, f"{text!r} not logged within {timeout} s: {self.stdout()}"
            time.sleep(0.1)
        return self.stdout()

    def stop(self) -> int:
        return self.process.stop(timeout=10)

    def __enter__(self) -> Double:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def refused(tmp_path: Path, corefile: str, *args: str) -> str:
    """Run the double on a config it must refuse; return what it said on stderr."""
    (tmp_path / "Corefile").write_text(corefile)
    result = run_double("coredns", args or ["-conf", "Corefile"], cwd=tmp_path, timeout=10)
    assert result.returncode != 0, f"the double accepted it:\n{result.stdout}"
    return result.stderr.strip()


@pytest.fixture(scope="module")
def island(tmp_path_factory):
    """One double serving the island zone and a reverse zone, with health, ready and metrics."""
    work = tmp_path_factory.mktemp("island")
    (work / "db.island.test").write_text(ZONE.format(serial=1, registry="10.0.0.10"))
    (work / "db.10.0.0").write_text(REVERSE_ZONE)
    dns_port, health, ready, metrics = free_port(), free_port(), free_port(), free_port()
    corefile = f"""\
# island DNS, as the dns role writes it
island.test:{dns_port} 0.0.10.in-addr.arpa:{dns_port} {{
    bind 127.0.0.1
    file {work}/db.island.test island.test
    file "{work}/db.10.0.0" 0.0.10.in-addr.arpa
    errors
    log
    health 127.0.0.1:{health}
    ready 127.0.0.1:{ready}
    prometheus 127.0.0.1:{metrics}
}}
"""
    double = Double(work, corefile).wait_serving(dns_port)
    yield {"dns": dns_port, "health": health, "ready": ready, "metrics": metrics, "double": double}
    double.stop()


# ------------------------------------------------------------------ command line


def test_version_prints_the_pinned_release_like_coredns():
    out = run_double("coredns", ["-version"])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "CoreDNS-1.14.3"
    assert re.fullmatch(r"linux/amd64, go1\.\d+\.\d+, [0-9a-f]{7}", lines[1])


def test_plugins_lists_only_what_the_double_implements():
    out = run_double("coredns", ["-plugins"])
    assert out.returncode == 0, out.stderr
    listed = out.stdout.split()
    assert {"file", "bind", "health", "ready", "prometheus", "reload"} <= set(listed)
    assert "whoami" not in listed
    assert "kubernetes" not in listed


def test_an_unknown_flag_exits_2_with_a_go_flag_usage_error():
    result = run_double("coredns", ["-cnof", "x"])
    assert result.returncode == 2
    assert result.stderr.startswith("flag provided but not defined: -cnof\nUsage of ")
    assert "  -conf string\n" in result.stderr


def test_extra_arguments_are_refused(tmp_path):
    err = refused(tmp_path, "", "-conf", "Corefile", "extra")
    assert err == "extra command line arguments: [extra]"


def test_a_missing_corefile_is_refused(tmp_path):
    err = refused(tmp_path, "", "-conf", str(tmp_path / "nope"))
    assert err == f"open {tmp_path / 'nope'}: no such file or directory"


# ------------------------------------------------------------------ answers


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize(
    ("name", "rtype", "expected"),
    [
        ("registry.island.test", "A", "registry.island.test. 300 IN A 10.0.0.10"),
        ("registry.island.test", "AAAA", "registry.island.test. 300 IN AAAA fd00::10"),
        ("git.island.test", "CNAME", "git.island.test. 300 IN CNAME registry.island.test."),
        (
            "_https._tcp.island.test",
            "SRV",
            "_https._tcp.island.test. 300 IN SRV 0 5 443 registry.island.test.",
        ),
        ("note.island.test", "TXT", 'note.island.test. 300 IN TXT "island of trust"'),
        ("10.0.0.10.in-addr.arpa", "PTR", "10.0.0.10.in-addr.arpa. 300 IN PTR registry.island.test."),
    ],
)
def test_zone_records_are_served_authoritatively_over_udp_and_tcp(island, name, rtype, expected, tcp):
    answer = dig(island["dns"], name, rtype, tcp=tcp)
    assert answer.status == "NOERROR"
    assert "aa" in answer.flags
    assert answer.answer == [expected]


def test_a_cname_is_chased_within_the_zone(island):
    answer = dig(island["dns"], "git.island.test", "A")
    assert answer.answer == [
        "git.island.test. 300 IN CNAME registry.island.test.",
        "registry.island.test. 300 IN A 10.0.0.10",
    ]


def test_a_missing_name_is_nxdomain_with_the_soa_in_authority(island):
    answer = dig(island["dns"], "nothing.island.test", "A")
    assert answer.status == "NXDOMAIN"
    assert "aa" in answer.flags
    assert answer.answer == []
    assert answer.authority[0].startswith(
        "island.test. 300 IN SOA ns1.island.test. hostmaster.island.test. 1 "
    )


def test_an_existing_name_without_the_type_is_nodata_with_the_soa(island):
    answer = dig(island["dns"], "note.island.test", "A")
    assert answer.status == "NOERROR"
    assert answer.answer == []
    assert " IN SOA " in answer.authority[0]


def test_names_outside_every_served_zone_are_refused(island):
    assert dig(island["dns"], "example.com", "A").status == "REFUSED"
    assert dig(island["dns"], "island.test.example.com", "A", tcp=True).status == "REFUSED"


def test_health_and_ready_answer_ok(island):
    assert http_get(island["health"], "/health") == (200, "OK")
    assert http_get(island["ready"], "/ready") == (200, "OK")


def test_metrics_count_queries_in_prometheus_text_format(island):
    dig(island["dns"], "registry.island.test", "A")
    status, body = http_get(island["metrics"], "/metrics")
    assert status == 200
    assert 'coredns_build_info{goversion="' in body
    assert "# TYPE coredns_dns_requests_total counter" in body
    pattern = r'coredns_dns_requests_total\{family="1",proto="udp",server="dns://127.0.0.1:\d+",type="A",'
    assert re.search(pattern + r'view="",zone="island.test."\} [1-9]', body)


def _sample(body: str, metric: str, **labels: str) -> float:
    """The value of one sample of the text exposition, 0 when the series is absent."""
    for line in body.splitlines():
        name, _, rest = line.partition("{")
        if name != metric:
            continue
        inner, _, value = rest.rpartition("} ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', inner))
        if found == labels:
            return float(value)
    return 0.0


def test_names_outside_the_island_are_counted_under_the_dropped_zone(island):
    """The egress alert's signal: upstream's errorAndMetricsFunc (core/dnsserver/server.go) counts
    each query no server block takes under zone "dropped", rcode REFUSED and an empty plugin."""
    server = f"dns://127.0.0.1:{island['dns']}"
    requests = {"server": server, "zone": "dropped", "view": "", "family": "1"}
    responses = {"server": server, "zone": "dropped", "view": "", "rcode": "REFUSED", "plugin": ""}
    before = http_get(island["metrics"], "/metrics")[1]
    assert dig(island["dns"], "phone-home.example.com", "A").status == "REFUSED"
    assert dig(island["dns"], "phone-home.example.com", "AAAA", tcp=True).status == "REFUSED"
    assert dig(island["dns"], "phone-home.example.com", "NAPTR").status == "REFUSED"
    assert dig(island["dns"], "registry.island.test", "A").status == "NOERROR"
    after = http_get(island["metrics"], "/metrics")[1]

    def grew(body_metric: str, **labels: str) -> float:
        return _sample(after, body_metric, **labels) - _sample(before, body_metric, **labels)

    assert grew("coredns_dns_requests_total", **requests, proto="udp", type="A") == 1
    assert grew("coredns_dns_requests_total", **requests, proto="tcp", type="AAAA") == 1
    # vars/monitor.go: a type outside monitorType is counted as "other"
    assert grew("coredns_dns_requests_total", **requests, proto="udp", type="other") == 1
    assert grew("coredns_dns_responses_total", **responses) == 3
    # a query the island zone answers is counted under its zone, not as dropped
    assert grew("coredns_dns_responses_total", **{**responses, "rcode": "NOERROR", "plugin": ""}) == 0
    answered = {"server": server, "zone": "island.test.", "view": "", "rcode": "NOERROR", "plugin": "file"}
    assert grew("coredns_dns_responses_total", **answered) == 1


# ------------------------------------------------------------------ metrics over TLS (1.14.3)


def _client_cert(ca: ThrowawayCA, directory: Path) -> tuple[Path, Path]:
    """A client certificate (EKU clientAuth) from ``ca`` and its key, as Prometheus would present."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prometheus")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(ca.now - datetime.timedelta(minutes=5))
        .not_valid_after(ca.now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    (directory / "client.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(directory / "client.key", key_pem(key))
    return directory / "client.crt", directory / "client.key"


@pytest.fixture
def metrics_pki(tmp_path):
    """The island-like PKI of a metrics endpoint: a CA, the server's certificate for 127.0.0.1 (relative
    to the web configuration file's directory, as exporter-toolkit resolves it) and a client's."""
    ca = throwaway_ca()
    cert, key = ca.issue("dns1", ["127.0.0.1"])
    tls = tmp_path / "tls"
    tls.mkdir()
    (tls / "dns.crt").write_bytes(cert)
    write_private(tls / "dns.key", key)
    (tls / "ca.crt").write_bytes(ca.cert_pem)
    client_cert, client_key = _client_cert(ca, tls)
    return {"ca": ca, "dir": tls, "client": (client_cert, client_key)}


def _tls_double(tmp_path: Path, web_config: str | None) -> tuple[Double, int, int, Path]:
    """A double with `prometheus 127.0.0.1:PORT { tls web.yml }`, web.yml holding ``web_config``
    (no file at all with None); returns it once DNS answers, with its DNS and metrics ports."""
    (tmp_path / "db.island.test").write_text(ZONE.format(serial=1, registry="10.0.0.10"))
    config = tmp_path / "tls" / "web.yml"
    config.parent.mkdir(exist_ok=True)
    if web_config is not None:
        config.write_text(web_config)
    dns_port, metrics = free_port(), free_port()
    corefile = (
        f"island.test:{dns_port} {{\n  bind 127.0.0.1\n  file {tmp_path}/db.island.test\n"
        f"  prometheus 127.0.0.1:{metrics} {{\n    tls {config}\n  }}\n}}\n"
    )
    return Double(tmp_path, corefile).wait_serving(dns_port), dns_port, metrics, config


def https_get(port: int, cafile: Path, cert: tuple[Path, Path] | None = None) -> tuple[int, str]:
    """GET /metrics over TLS verified against ``cafile`` (the name checked is 127.0.0.1)."""
    context = ssl.create_default_context(cafile=str(cafile))
    if cert:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", timeout=5, context=context) as r:
        return r.status, r.read().decode()


# go.yaml.in/yaml/v2 v2.4.4 yaml.go TypeError.Error; caddy's Dispenser.ArgErr; the double's refusal.
UNMARSHAL = "yaml: unmarshal errors:\n  "
TLS_ARGS = "Corefile:3 - Error during parsing: Wrong argument count or unexpected line ending after 'tls'"
NOT_IN_DOUBLE = "is not supported by the test double"
WEB_CONFIG = "tls_server_config:\n  cert_file: dns.crt\n  key_file: dns.key\n"
WEB_CONFIG_MTLS = WEB_CONFIG + "  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n"


def test_metrics_are_served_over_verified_tls_with_the_web_configuration(tmp_path, metrics_pki):
    """plugin/metrics/metrics.go (v1.14.3) OnStartup hands the file to exporter-toolkit's web.Serve,
    which serves TLS with cert_file and key_file (relative to the file's directory)."""
    double, dns_port, metrics, _ = _tls_double(tmp_path, WEB_CONFIG)
    with double:
        double.wait_output("[INFO] Server is ready and accepting connections")
        dig(dns_port, "registry.island.test")
        status, body = https_get(metrics, metrics_pki["dir"] / "ca.crt")
        assert status == 200
        assert 'coredns_build_info{goversion="go1.26.2",revision="17fceec",version="1.14.3"} 1' in body
        assert 'coredns_dns_requests_total{family="1",proto="udp"' in body
        # curl, an independent client, verifies the chain and the address too
        curl = subprocess.run(
            ["curl", "-sS", "--cacert", str(metrics_pki["dir"] / "ca.crt"), f"https://127.0.0.1:{metrics}/metrics"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        assert curl.returncode == 0, curl.stderr
        assert "coredns_dns_responses_total" in curl.stdout
        # plain HTTP is not served on that port
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            http_get(metrics, "/metrics")
        # exporter-toolkit's slog lines (web/tls_config.go Serve), key=value on stdout
        out = double.stdout()
        assert re.search(
            rf'level=INFO msg="TLS is enabled\." http2=true address=127\.0\.0\.1:{metrics}\n', out
        )


def test_a_client_certificate_from_the_client_ca_is_required_when_the_config_says_so(tmp_path, metrics_pki):
    """client_auth_type RequireAndVerifyClientCert with client_ca_file (web/tls_config.go
    ConfigToTLSConfig): no certificate, or one from another CA, fails the handshake."""
    double, _, metrics, _ = _tls_double(tmp_path, WEB_CONFIG_MTLS)
    with double:
        double.wait_output("Server is ready and accepting connections")
        ca_file = metrics_pki["dir"] / "ca.crt"
        status, body = https_get(metrics, ca_file, metrics_pki["client"])
        assert status == 200
        assert "coredns_build_info" in body
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            https_get(metrics, ca_file)
        stranger = tmp_path / "stranger"
        stranger.mkdir()
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            https_get(metrics, ca_file, _client_cert(throwaway_ca("another CA"), stranger))


def test_the_web_configuration_is_read_again_for_each_connection(tmp_path, metrics_pki):
    """GetConfigForClient (web/tls_config.go Serve) reads the file for every handshake: a renewed
    certificate is served without a restart."""
    double, _, metrics, _ = _tls_double(tmp_path, WEB_CONFIG)
    with double:
        double.wait_output("Server is ready and accepting connections")
        renewed = throwaway_ca("renewed CA")
        cert, key = renewed.issue("dns1", ["127.0.0.1"])
        (metrics_pki["dir"] / "dns.crt").write_bytes(cert)
        write_private(metrics_pki["dir"] / "dns.key", key)
        (tmp_path / "renewed-ca.crt").write_bytes(renewed.cert_pem)
        assert https_get(metrics, tmp_path / "renewed-ca.crt")[0] == 200


def test_a_web_configuration_without_tls_settings_serves_plain_http(tmp_path):
    """errNoTLSConfig: a file that sets no TLS key makes web.Serve fall back to plain HTTP."""
    double, _, metrics, _ = _tls_double(tmp_path, "http_server_config:\n  http2: false\n")
    with double:
        double.wait_output("Server is ready and accepting connections")
        assert "coredns_build_info" in http_get(metrics, "/metrics")[1]
        assert 'msg="TLS is disabled." http2=false' in double.stdout()


@pytest.mark.parametrize(
    ("web_config", "error"),
    [
        (
            "tls_server_config:\n  cert_file: dns.crt\n  key_fil: dns.key\n",
            UNMARSHAL + "line 3: field key_fil not found in type web.TLSConfig",
        ),
        ("tls_config:\n  a: x\n", UNMARSHAL + "line 1: field tls_config not found in type web.Config"),
        ("tls_server_config:\n  cert_file: dns.crt\n", "missing one of key or key_file"),
        ("tls_server_config:\n  key_file: dns.key\n", "missing one of cert or cert_file"),
        (WEB_CONFIG + "  client_auth_type: Always\n", "invalid ClientAuth: Always"),
        (WEB_CONFIG + "  client_ca_file: ca.crt\n", "client CA's have been configured without a Client Auth "
         "Policy"),
        (WEB_CONFIG + "  min_version: TLS14\n", "unknown TLS version: TLS14"),
        (
            "tls_server_config:\n  cert_file: nope.crt\n  key_file: dns.key\n",
            "failed to read cert_file ({dir}/nope.crt): open {dir}/nope.crt: no such file or directory",
        ),
        (
            "tls_server_config:\n  cert_file: dns.key\n  key_file: dns.key\n",
            "failed to load X509KeyPair: tls: failed to find certificate PEM data in certificate input, "
            "but did find a private key; PEM inputs may have been switched",
        ),
        (
            "tls_server_config:\n  cert_file: dns.crt\n  key_file: client.key\n",
            "failed to load X509KeyPair: tls: private key does not match public key",
        ),
        (
            WEB_CONFIG + "  client_ca_file: ca.crt\n  client_auth_type: RequireAnyClientCert\n",
            "client_auth_type RequireAnyClientCert is not supported by the test double",
        ),
        ("basic_auth_users:\n  prometheus: x\n", "line 1: basic_auth_users " + NOT_IN_DOUBLE),
    ],
    ids=[
        "unknown-tls-key", "unknown-top-key", "no-key", "no-cert", "bad-auth", "ca-without-auth",
        "bad-version", "missing-cert-file", "switched-pem", "key-mismatch", "unsupported-auth", "basic-auth",
    ],
)  # fmt: skip
def test_a_bad_web_configuration_is_logged_and_metrics_stay_down_while_dns_answers(
    tmp_path, metrics_pki, web_config, error
):
    """Upstream's refusal of the file: web.Serve's error is logged as `Failed to start HTTPS metrics
    server: ...` (metrics.go); OnStartup's error is dropped by plugin/pkg/uniq ForEach, so CoreDNS
    keeps answering and /metrics is never served (its listener accepts nothing)."""
    double, dns_port, metrics, _ = _tls_double(tmp_path, web_config)
    with double:
        expected = "[ERROR] Failed to start HTTPS metrics server: " + error.format(dir=metrics_pki["dir"])
        double.wait_output(expected)
        assert dig(dns_port, "registry.island.test").answer == ["registry.island.test. 300 IN A 10.0.0.10"]
        assert double.proc.poll() is None
        with pytest.raises((TimeoutError, ssl.SSLError, urllib.error.URLError, ConnectionError, OSError)):
            https_get_with_timeout(metrics, metrics_pki["dir"] / "ca.crt", timeout=1)


def https_get_with_timeout(port: int, cafile: Path, timeout: float) -> None:
    context = ssl.create_default_context(cafile=str(cafile))
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", timeout=timeout, context=context):
        pass


def test_a_missing_web_configuration_file_is_logged_and_dns_goes_on(tmp_path):
    """metrics.go OnStartup: os.Stat's IsNotExist logs `TLS config file does not exist: PATH`."""
    double, dns_port, _, config = _tls_double(tmp_path, None)
    with double:
        double.wait_output(f"[ERROR] TLS config file does not exist: {config}\n")
        assert dig(dns_port, "registry.island.test").status == "NOERROR"


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("tls", TLS_ARGS),
        ("tls a.yml b.yml", TLS_ARGS.replace("'tls'", "'b.yml'")),  # the cursor is on the last argument
        ("tls a.yml\n    tls b.yml", "Corefile:4 - Error during parsing: tls block already specified"),
        ("tsl a.yml", "Corefile:3 - Error during parsing: unknown option: tsl"),
        ("runtime_metrics", "option 'runtime_metrics' is not supported by the test double"),
    ],
    ids=["no-config", "two-configs", "twice", "unknown-option", "runtime-metrics"],
)  # fmt: skip
def test_the_prometheus_block_is_parsed_as_1_14_3_parses_it(tmp_path, block, message):
    """plugin/metrics/setup.go parse at v1.14.3: `tls CONFIG` once, one argument, no other option
    than runtime_metrics (which the double does not implement)."""
    err = refused(tmp_path, f"island.test:1053 {{\n  prometheus 127.0.0.1:9153 {{\n    {block}\n  }}\n}}\n")
    assert err == f"plugin/prometheus: {message}"


def test_queries_are_logged_in_coredns_style(island):
    dig(island["dns"], "registry.island.test", "AAAA")
    log = island["double"].stdout()
    assert "CoreDNS-1.14.3" in log
    assert f"island.test.:{island['dns']} on 127.0.0.1" in log
    assert re.search(r'\[INFO\] 127\.0\.0\.1:\d+ - \d+ "AAAA IN registry\.island\.test\. udp \d+ ', log)


def test_a_server_block_without_plugins_answers_refused_as_upstream(tmp_path):
    port = free_port()
    with Double(tmp_path, f"empty.test:{port} {{\n}}\n").wait_serving(port):
        assert dig(port, "empty.test", "SOA").status == "REFUSED"


def test_forward_relays_a_named_zone_to_its_upstream(tmp_path, island):
    port = free_port()
    corefile = (
        f"island.test:{port} {{\n  bind 127.0.0.1\n  forward island.test 127.0.0.1:{island['dns']}\n}}\n"
    )
    with Double(tmp_path, corefile).wait_serving(port):
        answer = dig(port, "registry.island.test", "A")
        assert answer.answer == ["registry.island.test. 300 IN A 10.0.0.10"]


def test_sigterm_shuts_the_double_down_cleanly(tmp_path):
    port = free_port()
    (tmp_path / "db").write_text(ZONE.format(serial=1, registry="10.0.0.10"))
    double = Double(tmp_path, f"island.test:{port} {{\n  file db\n}}\n").wait_serving(port)
    assert double.stop() == 0
    assert "[INFO] SIGTERM: Shutting down servers then terminating" in double.stdout()


# ------------------------------------------------------------------ reloads


@pytest.mark.slow
def test_a_zone_reloads_on_a_serial_increase_and_not_on_a_same_serial_change(tmp_path):
    port = free_port()
    db = tmp_path / "db.island.test"
    db.write_text(ZONE.format(serial=1, registry="10.0.0.10"))
    corefile = f"island.test:{port} {{\n  bind 127.0.0.1\n  file {db} {{\n    reload 1s\n  }}\n}}\n"
    with Double(tmp_path, corefile).wait_serving(port) as double:
        db.write_text(ZONE.format(serial=1, registry="10.0.0.11"))
        time.sleep(2.5)
        assert dig(port, "registry.island.test").answer == ["registry.island.test. 300 IN A 10.0.0.10"]
        db.write_text(ZONE.format(serial=2, registry="10.0.0.11"))
        time.sleep(2.5)
        assert dig(port, "registry.island.test").answer == ["registry.island.test. 300 IN A 10.0.0.11"]
        assert double.proc.poll() is None
        assert 'Successfully reloaded zone "island.test." in' in double.stdout()


@pytest.mark.slow
def test_sigusr1_reloads_the_corefile_without_dropping_the_listener(tmp_path):
    port = free_port()
    (tmp_path / "db.a").write_text(ZONE.format(serial=1, registry="10.0.0.10"))
    (tmp_path / "db.b").write_text(ZONE.format(serial=1, registry="10.0.0.99"))
    with Double(tmp_path, f"island.test:{port} {{\n  file db.a\n}}\n").wait_serving(port) as double:
        double.corefile.write_text(f"island.test:{port} {{\n  file db.b\n}}\n")
        double.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 5
        while dig(port, "registry.island.test").answer != ["registry.island.test. 300 IN A 10.0.0.99"]:
            assert time.monotonic() < deadline, double.stdout()
            time.sleep(0.1)
        double.corefile.write_text(f"island.test:{port} {{\n  nosuchplugin\n}}\n")
        double.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        assert "[ERROR] SIGUSR1: " in double.stdout()
        assert dig(port, "registry.island.test").answer == ["registry.island.test. 300 IN A 10.0.0.99"]


@pytest.mark.slow
def test_the_reload_plugin_picks_up_a_changed_corefile(tmp_path):
    port = free_port()
    (tmp_path / "db").write_text(ZONE.format(serial=1, registry="10.0.0.10"))
    with Double(tmp_path, f"island.test:{port} {{\n  reload 2s 1s\n  file db\n}}\n").wait_serving(
        port
    ) as double:
        double.wait_output("[INFO] plugin/reload: Running configuration SHA512 = ")
        double.corefile.write_text(f"other.test:{port} {{\n  reload 2s 1s\n  file db island.test\n}}\n")
        deadline = time.monotonic() + 8
        while dig(port, "registry.island.test").status != "REFUSED":
            assert time.monotonic() < deadline, double.stdout()
            time.sleep(0.2)


# ------------------------------------------------------------------ refusals


def test_an_unknown_directive_is_refused_like_coredns(tmp_path):
    err = refused(tmp_path, ".:1053 {\n    foo\n}\n")
    assert err == "Corefile:2 - Error during parsing: Unknown directive 'foo'"


def test_a_coredns_plugin_the_double_lacks_is_refused_as_unknown(tmp_path):
    err = refused(tmp_path, ".:1053 {\n    whoami\n}\n")
    assert err.startswith("Corefile:2 - Error during parsing: Unknown directive 'whoami' (")


def test_an_unknown_file_option_is_refused(tmp_path):
    (tmp_path / "db").write_text(ZONE.format(serial=1, registry="10.0.0.10"))
    err = refused(tmp_path, "island.test:1053 {\n  file db {\n    relaod 2s\n  }\n}\n")
    assert err == "plugin/file: Corefile:3 - Error during parsing: unknown property 'relaod'"


def test_file_without_a_database_file_is_refused(tmp_path):
    err = refused(tmp_path, "island.test:1053 {\n  file\n}\n")
    parse_error = "Error during parsing: Wrong argument count or unexpected line ending after 'file'"
    assert err == f"plugin/file: Corefile:2 - {parse_error}"


def test_an_invalid_reload_duration_is_refused(tmp_path):
    (tmp_path / "db").write_text(ZONE.format(serial=1, registry="10.0.0.10"))
    err = refused(tmp_path, "island.test:1053 {\n  file db {\n    reload 2x\n  }\n}\n")
    assert err == 'plugin/file: plugin/file: time: unknown unit "x" in duration "2x"'
    err = refused(tmp_path, "island.test:1053 {\n  file db {\n    reload 30\n  }\n}\n")
    assert err == 'plugin/file: plugin/file: time: missing unit in duration "30"'


def test_a_missing_zone_file_is_fatal_only_with_reload_0(tmp_path):
    err = refused(tmp_path, "island.test:1053 {\n  file nodb {\n    reload 0\n  }\n}\n")
    assert err == "plugin/file: open nodb: no such file or directory"


_GOOD_ZONE = ZONE.format(serial=1, registry="10.0.0.10")


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        (_GOOD_ZONE + "git IN A 10.0.0.12\n", "CNAME"),  # a CNAME beside other data
        (_GOOD_ZONE + "registry IN A 10.0.0.300\n", "with error db:"),
        (_GOOD_ZONE + "registry IN BOGUS 1\n", "with error db:11: unknown rdatatype 'BOGUS'"),
        ("$ORIGIN island.test.\n$TTL 300\nns1 IN A 127.0.0.1\n", ""),  # no SOA
    ],
    ids=["cname_beside_other_data", "bad_address", "unknown_type", "no_soa"],
)
def test_a_zone_file_the_parser_refuses_is_fatal_with_its_message(tmp_path, zone, message):
    (tmp_path / "db").write_text(zone)
    err = refused(tmp_path, "island.test:1053 {\n  file db\n}\n")
    assert err.startswith('plugin/file: failed to parse file "db" for origin island.test. with error ')
    assert message in err


def test_a_duplicate_server_block_is_refused(tmp_path):
    err = refused(tmp_path, "island.test:1053 {\n  log\n}\nisland.test:1053 {\n  errors\n}\n")
    assert err == "cannot serve dns://island.test.:1053 - it is already defined"


def test_a_bad_bind_address_is_refused(tmp_path):
    err = refused(tmp_path, "island.test:1053 {\n  bind 10.0.0.300\n}\n")
    assert err == 'plugin/bind: not a valid IP address or interface name: "10.0.0.300"'


def test_binding_by_interface_name_is_refused_as_unsupported(tmp_path):
    err = refused(tmp_path, "island.test:1053 {\n  bind lo\n}\n")
    assert "not supported by the test double" in err


def test_a_plugin_allowed_once_per_block_is_refused_twice(tmp_path):
    err = refused(tmp_path, "island.test:1053 {\n  prometheus :9153\n  prometheus :9154\n}\n")
    assert err == "plugin/prometheus: this plugin can only be used once per Server Block"


@pytest.mark.parametrize(
    ("corefile", "message"),
    [
        ("health 8080", "plugin/health: address 8080: missing port in address"),
        ("cache 0", "plugin/cache: cache TTL can not be zero or negative: 0"),
        ("reload 1s", "plugin/reload: interval value must be greater or equal to 2s"),
        ("forward island.test 10.0.0.300", 'plugin/forward: not an IP address or file: "10.0.0.300"'),
        ("forward . 10.0.0.1", "plugin/forward: forwarding '.' is not supported by the test double"),
        ("forward island.test tls://10.0.0.1", 'plugin/forward: tls:// upstream "tls://10.0.0.1" is not'),
        ("errors stderr", "plugin/errors: Corefile:2 - Error during parsing: invalid log file: stderr"),
        ("log {\n    class everything\n  }", "plugin/log: invalid Class: everything"),
        (
            "acl {\n    permit net 10.0.0.0/8\n  }",
            "plugin/acl: Corefile:3 - Error during parsing: unexpected token",
        ),
        ("loop now", "plugin/loop: Corefile:2 - Error during parsing: Wrong argument count"),
    ],
)
def test_bad_plugin_arguments_are_refused(tmp_path, corefile, message):
    err = refused(tmp_path, f"island.test:1053 {{\n  {corefile}\n}}\n")
    assert err.startswith(message)


def test_an_unbalanced_brace_is_refused(tmp_path):
    err = refused(tmp_path, "island.test:1053 {\n  file db {\n    reload 2s\n")
    assert err == "Corefile:3 - Error during parsing: Unexpected EOF"


# ------------------------------------------------------------------ privileges


def _setpriv(*caps: str) -> list[str]:
    drop = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    if caps:
        held = "-all," + ",".join(f"+{c}" for c in caps)
        drop += [f"--inh-caps={held}", f"--ambient-caps={held}", f"--bounding-set={held}"]
    return ["setpriv", *drop]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop to nobody")
def test_port_53_needs_only_cap_net_bind_service_not_root():
    with tempfile.TemporaryDirectory(prefix="coredns-double-") as work:
        Path(work).chmod(0o755)  # pytest's tmp_path is private to root; the service user must read
        _serve_port_53_as_nobody(Path(work))


def _serve_port_53_as_nobody(tmp_path: Path) -> None:
    address = "127.53.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        if probe.connect_ex((address, 53)) != 0:
            pytest.skip("no loopback alias")
    (tmp_path / "db").write_text(ZONE.format(serial=1, registry="10.0.0.10"))
    (tmp_path / "db").chmod(0o644)
    corefile = tmp_path / "Corefile"
    corefile.write_text(f"island.test {{\n  bind {address}\n  file {tmp_path}/db\n}}\n")
    corefile.chmod(0o644)
    cmd = [PYTHON, str(DOUBLE), "-conf", str(corefile)]

    denied = subprocess.run(_setpriv() + cmd, capture_output=True, text=True, timeout=10, check=False)
    assert denied.returncode == 1
    assert denied.stderr.strip() == f"Listen: listen tcp {address}:53: bind: permission denied"

    proc = subprocess.Popen(_setpriv("net_bind_service") + cmd, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                out = subprocess.run(
                    ["dig", f"@{address}", "registry.island.test", "+short", "+time=1", "+tries=1"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                    check=False,
                ).stdout.strip()
            except subprocess.TimeoutExpired:
                out = ""
            if out == "10.0.0.10":
                break
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


# ------------------------------------------------------------------ more upstream behaviour


def test_keys_without_a_port_take_the_dns_port_flag_and_the_pid_is_written(tmp_path):
    port = free_port()
    (tmp_path / "db").write_text(ZONE.format(serial=1, registry="10.0.0.10"))
    corefile = "island.test {\n  bind 127.0.0.1\n  file db\n}\n"
    double = Double(tmp_path, corefile, "-dns.port", str(port), "-pidfile", str(tmp_path / "pid"))
    try:
        double.wait_serving(port)
        assert dig(port, "registry.island.test").answer == ["registry.island.test. 300 IN A 10.0.0.10"]
        assert (tmp_path / "pid").read_text() == f"{double.proc.pid}\n"
    finally:
        double.stop()


def test_a_bound_and_an_unbound_block_on_one_zone_and_port_are_refused(tmp_path):
    err = refused(tmp_path, "island.test:1053 {\n  log\n}\nisland.test:1053 {\n  bind 127.0.0.1\n  log\n}\n")
    assert err == (
        "cannot serve dns://island.test.:1053 on 127.0.0.1 - zone overlap listener capacity with "
        "dns://island.test.:1053"
    )


@pytest.mark.slow
def test_a_missing_zone_file_is_a_warning_and_loads_once_it_appears(tmp_path):
    port = free_port()
    corefile = f"island.test:{port} {{\n  bind 127.0.0.1\n  file db {{\n    reload 1s\n  }}\n}}\n"
    with Double(tmp_path, corefile).wait_serving(port) as double:
        assert "[WARNING] plugin/file: Failed to open " in double.stdout()
        assert dig(port, "registry.island.test").status == "SERVFAIL"
        (tmp_path / "db").write_text(ZONE.format(serial=1, registry="10.0.0.10"))
        time.sleep(2.2)
        assert dig(port, "registry.island.test").answer == ["registry.island.test. 300 IN A 10.0.0.10"]


def test_acl_blocks_and_filters_what_it_lists(tmp_path):
    port = free_port()
    (tmp_path / "db").write_text(ZONE.format(serial=1, registry="10.0.0.10"))
    corefile = (
        f"island.test:{port} {{\n  bind 127.0.0.1\n  acl {{\n    block type AAAA\n"
        f"    filter type TXT net 127.0.0.0/8\n  }}\n  file db\n}}\n"
    )
    with Double(tmp_path, corefile).wait_serving(port):
        assert dig(port, "registry.island.test", "AAAA").status == "REFUSED"
        filtered = dig(port, "note.island.test", "TXT")
        assert (filtered.status, filtered.answer) == ("NOERROR", [])
        assert dig(port, "registry.island.test", "A").answer == ["registry.island.test. 300 IN A 10.0.0.10"]


def test_the_cache_caps_ttls_at_its_maximum(tmp_path):
    port = free_port()
    (tmp_path / "db").write_text(ZONE.format(serial=1, registry="10.0.0.10"))
    with Double(tmp_path, f"island.test:{port} {{\n  cache 30\n  file db\n}}\n").wait_serving(port):
        first = dig(port, "registry.island.test")
        second = dig(port, "registry.island.test")
        assert first.answer == ["registry.island.test. 30 IN A 10.0.0.10"]
        assert "aa" in second.flags
        assert second.answer[0].endswith("IN A 10.0.0.10")


@pytest.mark.slow
def test_during_lameduck_health_stays_ok_and_ready_reports_shutting_down(tmp_path):
    port, health, ready = free_port(), free_port(), free_port()
    (tmp_path / "db").write_text(ZONE.format(serial=1, registry="10.0.0.10"))
    corefile = (
        f"island.test:{port} {{\n  file db\n  health 127.0.0.1:{health} {{\n    lameduck 1s\n  }}\n"
        f"  ready 127.0.0.1:{ready}\n}}\n"
    )
    with Double(tmp_path, corefile).wait_serving(port) as double:
        assert http_get(ready, "/ready") == (200, "OK")
        double.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert http_get(health, "/health") == (200, "OK")
        assert http_get(ready, "/ready") == (503, "Shutting down")
        assert double.proc.wait(timeout=10) == 0
