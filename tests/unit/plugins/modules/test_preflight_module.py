"""island_preflight documents what it takes: ansible-doc renders it, with the operator's opt-ins."""

from __future__ import annotations

import json

from tests.support.playbook import ansible_doc


def test_ansible_doc_renders_the_module_with_its_os_and_firewall_options():
    result = ansible_doc("island_preflight", "--json")
    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout)["island_preflight"]["doc"]["options"]
    assert options["allow_untested_os"]["default"] is False
    assert options["firewall_check"]["default"] is True
    assert "inventory_name" in options
