"""Safer Gitea defaults in the role (issue 15, item 17): app.ini turns REQUIRE_SIGNIN_VIEW on, and
the database connection cannot be made without TLS (gitea_database_ssl_mode disable is refused by
the role's argument spec, which Ansible checks before the role's first task)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROLE = Path(__file__).resolve().parents[3] / "roles" / "gitea"


def _render_app_ini(sections):
    """roles/gitea/templates/app.ini.j2 with Ansible's ternary filter, as the role renders it."""
    env = jinja2.Environment(trim_blocks=True, autoescape=False)  # noqa: S701 - an ini file, not HTML
    env.filters["ternary"] = lambda value, yes, no: yes if value else no
    template = env.from_string((ROLE / "templates" / "app.ini.j2").read_text())
    return template.render(gitea_app_ini=sections, ansible_managed="test")


def test_the_rendered_app_ini_requires_sign_in_to_view():
    base = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["gitea_app_ini_base"]
    service = base["service"]
    assert service["REQUIRE_SIGNIN_VIEW"] is True
    text = _render_app_ini({"service": service})
    section = text.split("[service]", 1)[1]
    assert "\nREQUIRE_SIGNIN_VIEW = true\n" in section + "\n"
    assert "\nDISABLE_REGISTRATION = true\n" in section + "\n"


def _spec():
    specs = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"]


def test_a_database_connection_without_tls_is_refused_by_the_argument_spec():
    option = _spec()["gitea_database_ssl_mode"]
    result = ArgumentSpecValidator({"gitea_database_ssl_mode": option}).validate(
        {"gitea_database_ssl_mode": "disable"}
    )
    message = " ".join(result.error_messages)
    assert "gitea_database_ssl_mode" in message
    assert "disable" in message
    assert "verify-full" in message


@pytest.mark.parametrize("mode", ["require", "verify-ca", "verify-full"])
def test_encrypted_database_connections_are_accepted(mode):
    option = _spec()["gitea_database_ssl_mode"]
    result = ArgumentSpecValidator({"gitea_database_ssl_mode": option}).validate(
        {"gitea_database_ssl_mode": mode}
    )
    assert result.error_messages == []
