"""island-metrics (roles/monitoring/files/island-metrics), run as the timer runs it: the program and
a JSON config, with the system's python3 (standard library only, as on an island host). Against a
real `openssl`-made certificate, real snapshot files, and Debian's real CNCF distribution registry
(2.8.2) over verified TLS with htpasswd accounts, seeded by the project's OCI code; the output is
checked by Prometheus's own `promtool check metrics`."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request

import pytest
from cryptography import x509

from tests.support import ROOT
from tests.support.net import free_port, wait_for_port
from tests.support.oci import ImageFactory, Registry, make_layer, make_pki, needs_registry

PROGRAM = ROOT / "roles" / "monitoring" / "files" / "island-metrics"
# The host's python3, not the test venv's: the program must need nothing beyond the standard library.
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
PROMTOOL = shutil.which("promtool")
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl (Debian package)")


def run(config, tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return subprocess.run(
        [PYTHON, str(PROGRAM), str(path)], capture_output=True, text=True, check=False, timeout=120
    )


def samples(text):
    """{(name, frozenset(labels)): value} of every sample line."""
    found = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        assert match, f"not a sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        found[(match.group(1), labels)] = float(match.group(3))
    return found


def value(found, name, **labels):
    return found[(name, frozenset(labels.items()))]


@pytest.fixture
def textfile_dir(tmp_path):
    directory = tmp_path / "textfile"
    directory.mkdir()
    return directory


def output(textfile_dir):
    return (textfile_dir / "island.prom").read_text()


def make_certificate(directory, days):
    """A self-signed certificate made by openssl itself, valid ``days`` days."""
    cert = directory / f"cert-{days}.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(directory / f"key-{days}.pem"), "-out", str(cert), "-days", str(days),
         "-subj", "/CN=island-metrics test"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert


# --- certificates and the base metrics -----------------------------------------------------------
@needs_openssl
def test_each_certificate_file_gets_its_not_after_and_the_window_is_written(tmp_path, textfile_dir):
    soon, later = make_certificate(tmp_path, 10), make_certificate(tmp_path, 400)
    missing, not_a_cert = tmp_path / "missing.pem", tmp_path / "key-10.pem"
    before = datetime.datetime.now(datetime.UTC).timestamp()
    result = run(
        {
            "textfile_dir": str(textfile_dir),
            "certificate_warn_days": 21,
            "certificates": [str(soon), str(later), str(missing), str(not_a_cert)],
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    text = output(textfile_dir)
    found = samples(text)
    # notAfter as an independent reader (cryptography) sees it
    for cert in (soon, later):
        expected = x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc.timestamp()
        assert value(found, "island_certificate_not_after_seconds", path=str(cert)) == expected
        assert value(found, "island_certificate_read_success", path=str(cert)) == 1
    # an unreadable file is a 0 with the reason, and no expiry
    for bad in (missing, not_a_cert):
        assert value(found, "island_certificate_read_success", path=str(bad)) == 0
        assert ("island_certificate_not_after_seconds", frozenset({("path", str(bad))})) not in found
    assert f"# {missing}: openssl x509 could not read it: no such file" in text
    assert f"# {not_a_cert}: openssl x509 could not read it:" in text
    assert value(found, "island_certificate_warn_seconds") == 21 * 86400
    assert before - 1 <= value(found, "island_metrics_last_run_timestamp_seconds") <= before + 60
    assert "island_etcd_snapshot" not in text and "island_registry" not in text


@needs_openssl
def test_recorded_certificates_are_watched_with_the_configured_ones_once_each(tmp_path, textfile_dir):
    # island_csr writes one record per island certificate (island_pki_host.certificate_record); the
    # program watches those too, so a certificate no model entry names (CoreDNS's metrics, the
    # journal's, Prometheus's client certificates) still raises IslandCertificateFileExpiringSoon.
    soon, later = make_certificate(tmp_path, 10), make_certificate(tmp_path, 400)
    records = tmp_path / "records"
    records.mkdir()
    (records / "a.crt.0123").write_text(f"{soon}\n")
    (records / "b.crt.4567").write_text(f"{later}\n")  # also configured: reported once
    (records / "c.crt.89ab").write_text("relative/path.crt\n")  # never trusted as a path
    (records / ".hidden").write_text(f"{tmp_path / 'hidden.crt'}\n")
    (records / "sub").mkdir()
    config = {"textfile_dir": str(textfile_dir), "certificate_warn_days": 21, "certificates": [str(later)],
              "certificate_records": str(records)}  # fmt: skip
    result = run(config, tmp_path)
    assert result.returncode == 0, result.stderr
    text = output(textfile_dir)
    found = samples(text)
    for cert in (soon, later):
        assert value(found, "island_certificate_read_success", path=str(cert)) == 1
    assert text.count(f'island_certificate_read_success{{path="{later}"}}') == 1
    assert "relative/path.crt" not in text and "hidden.crt" not in text
    assert "c.crt.89ab: does not hold an absolute certificate path; skipped" in result.stderr
    # no record directory yet (a host before its first certificate): nothing recorded, no failure
    result = run(config | {"certificate_records": str(tmp_path / "none")}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(soon) not in output(textfile_dir)
    # a relative directory is a configuration problem, named
    result = run(config | {"certificate_records": "records"}, tmp_path)
    assert result.returncode != 0 and "certificate_records must be the absolute path" in result.stderr


@needs_openssl
def test_the_file_is_replaced_atomically_world_readable_with_no_temporary_left(tmp_path, textfile_dir):
    (textfile_dir / "island.prom").write_text("stale 1\n")
    (textfile_dir / "other.prom").write_text("other 1\n")
    config = {"textfile_dir": str(textfile_dir), "certificate_warn_days": 30, "output_name": "x.prom"}
    assert run(config, tmp_path).returncode == 0
    assert sorted(p.name for p in textfile_dir.iterdir()) == ["island.prom", "other.prom", "x.prom"]
    assert (textfile_dir / "x.prom").stat().st_mode & 0o777 == 0o644
    del config["output_name"]
    assert run(config, tmp_path).returncode == 0
    assert "stale" not in output(textfile_dir)
    assert (textfile_dir / "other.prom").read_text() == "other 1\n"


# --- etcd snapshots ------------------------------------------------------------------------------
def test_the_newest_snapshot_file_counts_not_hidden_files_or_directories(tmp_path, textfile_dir):
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    for name, mtime in [
        ("etcd-snapshot-k3s1-1700000000", 1_700_000_000),
        ("island-install-k3s1", 1_700_050_000),
    ]:
        (snapshots / name).write_bytes(b"snapshot")
        os.utime(snapshots / name, (mtime, mtime))
    (snapshots / ".metadata").mkdir()
    os.utime(snapshots / ".metadata", (1_800_000_000, 1_800_000_000))
    (snapshots / ".partial").write_bytes(b"x")
    result = run(
        {
            "textfile_dir": str(textfile_dir),
            "certificate_warn_days": 30,
            "etcd_snapshots": {"dir": str(snapshots), "schedule_cron": "0 */12 * * *"},
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    found = samples(output(textfile_dir))
    assert value(found, "island_etcd_snapshot_newest_timestamp_seconds") == 1_700_050_000
    assert value(found, "island_etcd_snapshot_schedule_seconds") == 12 * 3600


@pytest.mark.parametrize("state", ["absent", "empty"])
def test_no_snapshot_directory_or_no_snapshot_is_zero_with_a_comment(tmp_path, textfile_dir, state):
    snapshots = tmp_path / "snapshots"
    if state == "empty":
        snapshots.mkdir()
    result = run(
        {
            "textfile_dir": str(textfile_dir),
            "certificate_warn_days": 30,
            "etcd_snapshots": {"dir": str(snapshots), "schedule_seconds": 3600},
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    text = output(textfile_dir)
    assert value(samples(text), "island_etcd_snapshot_newest_timestamp_seconds") == 0
    assert value(samples(text), "island_etcd_snapshot_schedule_seconds") == 3600
    reason = (
        "does not exist: no snapshot has been taken on this host"
        if state == "absent"
        else "holds no snapshot"
    )
    assert f"# {snapshots} {reason}" in text


@pytest.mark.parametrize(
    ("cron", "gap"),
    [
        ("0 */12 * * *", 12 * 3600),  # k3s's default
        ("*/30 * * * *", 1800),
        ("30 2 * * 1-5", 3 * 86400),  # Friday 02:30 to Monday 02:30
        ("0 0 * * sun", 7 * 86400),  # a name; day of month starred: weekday alone decides
        ("0 0 1 * *", 31 * 86400),
        ("0 6,18 1,15 * mon", 7 * 86400 - 12 * 3600),  # both day fields set: either matches
        ("0 0 29 feb *", 1461 * 86400),  # only in leap years
    ],
)
def test_the_schedule_allows_its_longest_gap_between_snapshots(tmp_path, textfile_dir, cron, gap):
    result = run(
        {
            "textfile_dir": str(textfile_dir),
            "certificate_warn_days": 30,
            "etcd_snapshots": {"dir": str(tmp_path), "schedule_cron": cron},
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert value(samples(output(textfile_dir)), "island_etcd_snapshot_schedule_seconds") == gap


# --- the configuration ---------------------------------------------------------------------------
def test_a_bad_configuration_names_every_problem_and_writes_nothing(tmp_path, textfile_dir):
    result = run(
        {
            "textfile_dir": str(textfile_dir),
            "certificate_warn_days": 0,
            "certifcates": [],
            "etcd_snapshots": {"dir": "snapshots", "schedule_cron": "0 */12 * *"},
            "registry": {
                "url": "http://registry.island.test:5000",
                "ca_file": "/etc/island/pki/island-roots.pem",
                "credentials_file": "creds.json",
                "images": [
                    {"name": "library/alpine", "reference": "3.20", "digest": "sha256:abc"},
                    {"name": "Library/Alpine", "reference": "3.20", "digest": "sha256:" + "0" * 64},
                ],
            },
        },
        tmp_path,
    )
    assert result.returncode == 2
    stderr = result.stderr
    assert "has 8 problem(s)" in stderr, stderr
    for expected in [
        "unknown key 'certifcates'",
        "certificate_warn_days must be a whole number of days >= 1, not 0",
        "etcd_snapshots.dir must be the absolute path",
        "etcd_snapshots.schedule_cron '0 */12 * *' has 4 fields",
        "registry.url 'http://registry.island.test:5000' must be https://host[:port]",
        "registry.credentials_file must be an absolute path",
        "registry.images[0].digest 'sha256:abc' is not sha256:<64 lowercase hex>",
        "registry.images[1].name 'Library/Alpine' is not a repository name",
    ]:
        assert expected in stderr, expected
    assert list(textfile_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 24 * * *", "'24' is outside the hour field's range 0-23"),
        ("0 0 * * 7", "'7' is outside the day of week field's range 0-6"),
        ("0 0 31 2 *", "never fires"),
        ("0 0 * * fri/0", "step '0' in the day of week field must be a positive number"),
        ("@daily", "has 1 fields"),
    ],
)
def test_a_schedule_k3s_would_refuse_is_refused_with_the_reason(tmp_path, textfile_dir, cron, message):
    result = run(
        {
            "textfile_dir": str(textfile_dir),
            "certificate_warn_days": 30,
            "etcd_snapshots": {"dir": "/var/lib/rancher/k3s/server/db/snapshots", "schedule_cron": cron},
        },
        tmp_path,
    )
    assert result.returncode == 2
    assert f"etcd_snapshots.schedule_cron '{cron}'" in result.stderr
    assert message in result.stderr


def test_a_missing_textfile_directory_or_unreadable_config_is_named(tmp_path):
    result = run({"textfile_dir": str(tmp_path / "nope"), "certificate_warn_days": 30}, tmp_path)
    assert result.returncode == 2
    assert f"textfile_dir {tmp_path / 'nope'} is not a directory" in result.stderr
    (tmp_path / "broken.json").write_text("{")
    broken = subprocess.run(
        [PYTHON, str(PROGRAM), str(tmp_path / "broken.json")], capture_output=True, text=True, check=False
    )
    assert broken.returncode == 2
    assert f"the configuration {tmp_path / 'broken.json'} is not JSON" in broken.stderr
    usage = subprocess.run([PYTHON, str(PROGRAM)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2
    assert "usage: island-metrics CONFIG.json" in usage.stderr


# --- the registry's digests against the lock -----------------------------------------------------
@pytest.fixture(scope="module")
def seeded_registry(tmp_path_factory):
    """Debian's distribution 2.8.2 on loopback with TLS and htpasswd, seeded by the project's OCI
    code with an OCI image, a Docker v2 image and an OCI index; yields (registry, {repo:tag: digest})."""
    from ansible_collections.island.installer.plugins.module_utils.island_oci import OCILayout, seed

    if not os.access("/usr/bin/docker-registry", os.X_OK):
        pytest.skip("needs Debian's docker-registry")
    work = tmp_path_factory.mktemp("island-metrics-registry")
    registry = Registry(work / "registry", make_pki(work / "pki")).start()
    layout = OCILayout(str(work / "layout"))
    factory = ImageFactory(layout)
    base = make_layer({"etc/os-release": b"ID=island-test\n"})
    digests = {
        "library/alpine:3.20": factory.image("docker.io/library/alpine:3.20", [base], label="a")["digest"],
        "rancher/pause:3.6": factory.image("docker.io/rancher/pause:3.6", [base], docker=True)["digest"],
        "library/multi:1": factory.index(
            "docker.io/library/multi:1",
            ["linux/amd64", "linux/arm64"],
            {"linux/amd64": [base], "linux/arm64": [make_layer({"bin/m": b"arm64"})]},
        )["digest"],
    }
    seed(registry.client(), layout)
    yield registry, digests
    registry.stop()


def _registry_config(registry, textfile_dir, images, credentials):
    return {
        "textfile_dir": str(textfile_dir),
        "certificate_warn_days": 30,
        "registry": {
            "url": f"https://{registry.address}",
            "ca_file": str(registry.pki["ca"]),
            "credentials_file": str(credentials),
            "images": images,
        },
    }


def _credentials(tmp_path, registry, mode=0o600, password=None):
    path = tmp_path / "registry-credentials.json"
    path.write_text(json.dumps({"username": registry.user, "password": password or registry.password}))
    path.chmod(mode)
    return path


def _images(digests, **override):
    return [
        {"name": ref.split(":")[0], "reference": ref.split(":")[1], "digest": override.get(ref, digest)}
        for ref, digest in digests.items()
    ]


@needs_registry
def test_images_served_under_the_locks_digests_match(tmp_path, textfile_dir, seeded_registry):
    registry, digests = seeded_registry
    pinned = digests["library/multi:1"]
    images = [*_images(digests), {"name": "library/multi", "reference": pinned, "digest": pinned}]
    config = _registry_config(registry, textfile_dir, images, _credentials(tmp_path, registry))
    mark = registry.log_mark()
    result = run(config, tmp_path)
    assert result.returncode == 0, result.stderr
    found = samples(output(textfile_dir))
    assert value(found, "island_registry_digest_check_success") == 1
    for ref in [*digests, f"library/multi@{pinned}"]:
        assert value(found, "island_registry_digest_match", image=ref) == 1, ref
    # One HEAD per image, nothing written, and the password never on a command line.
    requests = registry.requests(mark)
    assert sorted(r[:2] for r in requests if r[2] == 200) == sorted(
        ("HEAD", f"/v2/{i['name']}/manifests/{i['reference']}") for i in images
    )
    assert registry.writes(mark) == []
    assert registry.password not in json.dumps(config)


@needs_registry
def test_a_digest_other_than_the_locks_or_a_missing_image_is_zero_naming_both(
    tmp_path, textfile_dir, seeded_registry
):
    registry, digests = seeded_registry
    wrong = "sha256:" + "0" * 64
    images = [
        *_images(digests, **{"library/alpine:3.20": wrong}),
        {"name": "library/gone", "reference": "1", "digest": wrong},
    ]
    result = run(_registry_config(registry, textfile_dir, images, _credentials(tmp_path, registry)), tmp_path)
    assert result.returncode == 0, result.stderr
    text = output(textfile_dir)
    found = samples(text)
    assert value(found, "island_registry_digest_check_success") == 1
    assert value(found, "island_registry_digest_match", image="library/alpine:3.20") == 0
    assert value(found, "island_registry_digest_match", image="library/gone:1") == 0
    assert value(found, "island_registry_digest_match", image="rancher/pause:3.6") == 1
    assert (
        f"# library/alpine:3.20: the registry serves {digests['library/alpine:3.20']}; the lock has {wrong}"
        in text
    )
    assert f"# library/gone:1: the registry does not have it (404); the lock has {wrong}" in text


@needs_registry
@pytest.mark.parametrize("fault", ["wrong password", "credentials readable by others", "another CA"])
def test_a_check_that_cannot_be_made_is_a_failed_check_not_a_mismatch(
    tmp_path, textfile_dir, seeded_registry, fault
):
    registry, digests = seeded_registry
    credentials = _credentials(
        tmp_path,
        registry,
        mode=0o644 if fault == "credentials readable by others" else 0o600,
        password="wrong" if fault == "wrong password" else None,
    )
    config = _registry_config(registry, textfile_dir, _images(digests), credentials)
    if fault == "another CA":
        config["registry"]["ca_file"] = str(make_pki(tmp_path / "other-pki", "another CA")["ca"])
    result = run(config, tmp_path)
    assert result.returncode == 0, result.stderr
    text = output(textfile_dir)
    assert value(samples(text), "island_registry_digest_check_success") == 0
    assert "island_registry_digest_match{" not in text
    reason = {
        "wrong password": "the registry refused the credentials (401)",
        "credentials readable by others": (
            f"has mode 0644; it holds a password, so make it 0600 (chmod 0600 {credentials})"
        ),
        "another CA": "CERTIFICATE_VERIFY_FAILED",
    }[fault]
    assert reason in text
    assert reason in result.stderr  # in the journal too


# --- the output as Prometheus reads it -----------------------------------------------------------
@needs_openssl
@needs_registry
@pytest.mark.skipif(PROMTOOL is None, reason="needs promtool (Debian's prometheus package)")
def test_promtool_check_metrics_accepts_the_whole_output(tmp_path, textfile_dir, seeded_registry):
    registry, digests = seeded_registry
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    (snapshots / "etcd-snapshot-k3s1-1").write_bytes(b"s")
    config = _registry_config(
        registry,
        textfile_dir,
        _images(digests, **{"rancher/pause:3.6": "sha256:" + "1" * 64}),
        _credentials(tmp_path, registry),
    )
    config["certificates"] = [str(make_certificate(tmp_path, 30)), str(tmp_path / 'missing "quoted".pem')]
    config["etcd_snapshots"] = {"dir": str(snapshots), "schedule_cron": "0 */12 * * *"}
    assert run(config, tmp_path).returncode == 0
    text = output(textfile_dir)
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr + text
    assert checked.stdout + checked.stderr == "", "promtool's lint found problems"
    # every family the alert rules read is there, once, typed gauge
    families = set(re.findall(r"^# TYPE (\S+) gauge$", text, re.MULTILINE))
    assert families == {
        "island_metrics_last_run_timestamp_seconds",
        "island_certificate_warn_seconds",
        "island_certificate_read_success",
        "island_certificate_not_after_seconds",
        "island_etcd_snapshot_newest_timestamp_seconds",
        "island_etcd_snapshot_schedule_seconds",
        "island_registry_digest_check_success",
        "island_registry_digest_match",
    }
    for family in families:
        assert text.count(f"# TYPE {family} gauge\n") == 1, family
    # The alert rules read only metrics the program writes (one contract, both sides).
    rules = (ROOT / "roles" / "monitoring" / "files" / "rules" / "island.rules.yml").read_text()
    read_by_rules = set(re.findall(r"\b(island_[a-z_]+)\b", rules))
    assert len(read_by_rules) == 8
    assert read_by_rules <= families, read_by_rules - families
    # a label value with a quote is escaped as the exposition format requires
    assert r'path="' + str(tmp_path) + r'/missing \"quoted\".pem"' in text


NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"  # Debian 12's prometheus-node-exporter 1.5.0


@needs_openssl
@pytest.mark.skipif(not os.access(NODE_EXPORTER, os.X_OK), reason="needs Debian's prometheus-node-exporter")
def test_node_exporters_textfile_collector_serves_the_file_without_error(tmp_path, textfile_dir):
    cert = make_certificate(tmp_path, 30)
    config = {
        "textfile_dir": str(textfile_dir),
        "certificate_warn_days": 30,
        "certificates": [str(cert), str(tmp_path / "missing.pem")],
        "etcd_snapshots": {"dir": str(tmp_path / "none"), "schedule_cron": "0 */12 * * *"},
    }
    assert run(config, tmp_path).returncode == 0
    port = free_port()
    process = subprocess.Popen(
        [NODE_EXPORTER, "--collector.disable-defaults", "--collector.textfile",
         f"--collector.textfile.directory={textfile_dir}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            served = samples_of(response.read().decode())
    finally:
        process.terminate()
        process.wait(10)
    # node_exporter 1.5.0 collector/textfile.go: node_textfile_scrape_error is 1 when a file fails to parse
    assert value(served, "node_textfile_scrape_error") == 0
    assert value(served, "island_certificate_warn_seconds") == 30 * 86400
    assert value(served, "island_certificate_read_success", path=str(cert)) == 1
    assert value(served, "island_certificate_read_success", path=str(tmp_path / "missing.pem")) == 0
    assert value(served, "island_etcd_snapshot_newest_timestamp_seconds") == 0
    assert value(served, "island_etcd_snapshot_schedule_seconds") == 43200


def samples_of(text):
    """samples() for a whole node_exporter page: every metric name, including ones with digits."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            found[(match.group(1), labels)] = float(match.group(3))
    return found
