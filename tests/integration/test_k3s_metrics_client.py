"""roles/k3s tasks_from metrics_client, as the monitoring role calls it: the scraper's CSR is signed on
the first k3s server by k3s's client CA with the subject CN=<k3s_metrics_client_name>,
O=system:monitoring (whatever the CSR asks), the current certificate is kept while it serves, and the
cluster CA comes back to verify the API servers with. The hosts use the local connection."""

from __future__ import annotations

import json

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.playbook import ROOT, TEST_ISLAND, ansible_doc, ansible_env, local_inventory, run_playbook
from tests.unit.plugins.module_utils.test_k3s_client_cert import _ca


def _run(tmp_path, data_dir, csr, current=""):
    inventory = local_inventory(
        {"k3s_servers": ["k3s1"], "monitor": ["mon1"]},
        {"k3s1": {"island_address": "10.98.0.20"}, "mon1": {"island_address": "10.98.0.30"}},
        **TEST_ISLAND,
    )
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory))
    task = {
        "ansible.builtin.include_role": {"name": "k3s", "tasks_from": "metrics_client"},
        "vars": {"k3s_metrics_client_csr": csr, "k3s_metrics_client_current": current},
    }
    show = {
        "ansible.builtin.debug": {
            "msg": "{{ {'cert': k3s_metrics_client, 'ca': k3s_metrics_server_ca} | to_json }}"
        }
    }
    play = [{"hosts": "monitor", "gather_facts": False, "tasks": [task, show]}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    env = ansible_env(ANSIBLE_ROLES_PATH=str(ROOT / "roles"), ANSIBLE_STDOUT_CALLBACK="json")
    extra = f"k3s_data_dir={data_dir}"
    proc = run_playbook(tmp_path / "play.yml", "-e", extra, inventory=tmp_path / "hosts.yml", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout[proc.stdout.index("{") :])
    return json.loads(out["plays"][0]["tasks"][-1]["hosts"]["mon1"]["msg"])


def test_the_scrapers_csr_is_signed_for_the_monitoring_group_and_kept_on_a_rerun(tmp_path):
    tls = tmp_path / "k3s" / "server" / "tls"
    tls.mkdir(parents=True)
    ca_cert, ca_key = _ca()
    (tls / "client-ca.crt").write_bytes(ca_cert)
    (tls / "client-ca.key").write_bytes(ca_key)
    (tls / "server-ca.crt").write_bytes(
        b"-----BEGIN CERTIFICATE-----\nserver ca\n-----END CERTIFICATE-----\n"
    )
    key = ec.generate_private_key(ec.SECP256R1())
    asking_for_admin = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
            x509.NameAttribute(NameOID.COMMON_NAME, "x"),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(asking_for_admin).sign(key, hashes.SHA256())
    csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
    first = _run(tmp_path, tmp_path / "k3s", csr_pem)
    assert first["cert"]["changed"] and first["ca"].startswith("-----BEGIN CERTIFICATE-----\nserver ca")
    cert = x509.load_pem_x509_certificate(first["cert"]["certificate"].encode())
    assert cert.subject.rfc4514_string() == "CN=island-prometheus,O=system:monitoring"
    again = _run(tmp_path, tmp_path / "k3s", csr_pem, current=first["cert"]["certificate"])
    assert not again["cert"]["changed"] and again["cert"]["certificate"] == first["cert"]["certificate"]


def test_module_documentation_renders_with_ansible_doc():
    proc = ansible_doc("--json", "island_k3s_client_cert")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["island_k3s_client_cert"]["doc"]
    assert doc["options"]["organization"]["default"] == "system:monitoring"
