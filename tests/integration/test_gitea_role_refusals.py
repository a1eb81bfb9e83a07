"""The gitea role keeps Gitea's JWT secrets its own (issue 15, item 4): with OAuth2 on (Gitea's
default) Gitea 1.26 needs [oauth2] JWT_SECRET whatever the algorithm, and replaces one not in its
format by writing app.ini, which the role installs read-only. The role generates the secret once
on the host (`gitea generate secret JWT_SECRET`, 0600, no_log) and names it by JWT_SECRET_URI, and
refuses an operator's own JWT secret in gitea_app_ini_extra before any host is touched."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.playbook import TEST_ISLAND, local_inventory, refused, run_role

ROLE = Path(__file__).resolve().parents[2] / "roles" / "gitea"


@pytest.mark.parametrize(
    "extra",
    [
        {"oauth2": {"JWT_SECRET": "my-own"}},
        {"oauth2": {"JWT_SECRET_URI": "file:/etc/elsewhere"}},
        {"server": {"LFS_JWT_SECRET": "my-own"}},
    ],
    ids=["jwt-secret", "jwt-secret-uri", "lfs-jwt-secret"],
)
def test_the_role_refuses_an_operators_jwt_secret_before_any_change(tmp_path, extra):
    inventory = local_inventory(
        {"island_gitea": ["git1"]},
        {"git1": {"island_address": "10.98.0.10"}},
        **{
            **TEST_ISLAND,
            "island_bundle_dir": str(tmp_path / "no-bundle"),
            "island_pki_dir": str(tmp_path / "pki"),
            "island_secrets_dir": str(tmp_path / "secrets"),
            "gitea_app_ini_extra": extra,
        },
    )
    output = refused(run_role(tmp_path, inventory, "island_gitea", "gitea"))
    assert "gitea_app_ini_extra must not set [oauth2] JWT_SECRET(_URI)" in output, output
    assert "TASK [common : The service has its own system user" not in output
    assert not (tmp_path / "secrets").exists()


def test_the_role_names_a_generated_jwt_secret_file_whatever_the_algorithm():
    variables = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    assert variables["gitea_app_ini_base"]["oauth2"] == {
        "JWT_SECRET_URI": "file:{{ gitea_secrets_path }}/jwt_secret"
    }
    assert "'jwt_secret': 'JWT_SECRET'" in variables["gitea_secret_files"]
    configure = yaml.safe_load((ROLE / "tasks" / "configure.yml").read_text())
    generate = next(t for t in configure if t["name"] == "Gitea's secrets are generated once on the host")
    assert generate["no_log"] is True
    assert "umask 077" in generate["ansible.builtin.shell"]["cmd"]
    assert "gitea generate secret {{ item.value }}" in generate["ansible.builtin.shell"]["cmd"]


@pytest.mark.parametrize("key", ["ENABLED", "TOKEN"])
def test_the_role_refuses_metrics_settings_it_owns_before_any_change(tmp_path, key):
    """[metrics] TOKEN is the generated gitea-metrics-token the scraper reads: an operator's own
    (or ENABLED beside gitea_metrics) would leave the scraper with a token Gitea does not take."""
    inventory = local_inventory(
        {"island_gitea": ["git1"]},
        {"git1": {"island_address": "10.98.0.10"}},
        **{
            **TEST_ISLAND,
            "island_bundle_dir": str(tmp_path / "no-bundle"),
            "island_pki_dir": str(tmp_path / "pki"),
            "island_secrets_dir": str(tmp_path / "secrets"),
            "gitea_app_ini_extra": {"metrics": {key: "my-own"}},
        },
    )
    output = refused(run_role(tmp_path, inventory, "island_gitea", "gitea"))
    assert "gitea_app_ini_extra must not set [metrics] ENABLED or TOKEN" in output, output
    assert not (tmp_path / "secrets").exists()


def test_the_role_generates_the_metrics_token_on_the_controller_and_keeps_it_out_of_the_log():
    variables = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
    assert variables["gitea_app_ini_metrics"] == {
        "metrics": {"ENABLED": True, "TOKEN": "`{{ gitea_metrics_secret | default('') }}`"}
    }
    configure = yaml.safe_load((ROLE / "tasks" / "configure.yml").read_text())
    generate = next(t for t in configure if "island_secret" in t)
    assert generate["no_log"] is True and generate["delegate_to"] == "localhost"
    assert "gitea-metrics-token" in generate["vars"]["_gitea_generated"]
    app_ini = next(t for t in configure if t.get("ansible.builtin.template", {}).get("src") == "app.ini.j2")
    assert app_ini["no_log"] == "{{ gitea_app_ini_secret }}"
    assert "gitea_metrics" in variables["gitea_app_ini_secret"]
