"""Every plugin's DOCUMENTATION, EXAMPLES and RETURN is YAML that parses: ansible-doc and
ansible-lint read them, and a plain scalar with ': ' in it silently broke five of them once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PLUGINS = sorted(
    path
    for path in (ROOT / "plugins").glob("*/*.py")
    if path.parent.name != "module_utils" and path.name != "__init__.py"
)


@pytest.mark.parametrize("path", PLUGINS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_the_plugins_documentation_is_yaml_that_parses(path):
    tree = ast.parse(path.read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("DOCUMENTATION", "EXAMPLES", "RETURN") and isinstance(node.value, ast.Constant):
                found[name] = node.value.value
    for name, text in found.items():
        try:
            yaml.safe_load(text)
        except yaml.YAMLError as exc:
            pytest.fail(f"{path.relative_to(ROOT)} {name} does not parse: {exc}")
    if path.parent.name in ("modules", "callback", "strategy"):
        assert "DOCUMENTATION" in found, f"{path.relative_to(ROOT)} has no DOCUMENTATION"
