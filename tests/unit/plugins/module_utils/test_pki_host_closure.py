"""A host receives only the host-side PKI code (principle 5: the CA never travels to a host).

AnsiballZ ships a module with the module_utils it imports, recursively, and nothing else (ansible-core 2.19
``lib/ansible/executor/module_common.py``, ``recursive_finder``). So the import closure of the modules
that run on hosts must not reach the controller's CA and signing code.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
PACKAGE = "ansible_collections.island.installer.plugins.module_utils"


def _module_utils_imported_by(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:
                names.update(alias.name for alias in node.names)
            elif node.module.startswith(PACKAGE + "."):
                names.add(node.module.rsplit(".", 1)[1])
        elif isinstance(node, ast.Import):
            names.update(
                alias.name.rsplit(".", 1)[1] for alias in node.names if alias.name.startswith(PACKAGE + ".")
            )
    return names


def import_closure(module: str) -> set[str]:
    """The module_utils a module under plugins/modules ships with."""
    seen: set[str] = set()
    pending = list(_module_utils_imported_by(ROOT / "plugins" / "modules" / f"{module}.py"))
    while pending:
        name = pending.pop()
        if name not in seen:
            seen.add(name)
            pending.extend(_module_utils_imported_by(ROOT / "plugins" / "module_utils" / f"{name}.py"))
    return seen


@pytest.mark.parametrize("module", ["island_csr", "island_cert"])
def test_a_host_side_module_ships_without_the_ca_and_signing_code(module):
    closure = import_closure(module)
    assert "island_pki_host" in closure
    # island_install: island_csr makes the key's directory through it (host-side file placement)
    host_side = {
        "island_pki",
        "island_pki_host",
        "island_io",
        "island_module",
        "island_argspec",
        "island_install",
    }
    assert closure <= host_side, closure
    assert "island_pki_ca" not in closure and "island_pki_sign" not in closure


def test_the_controller_modules_do_reach_the_ca_and_signing_code():
    # The check above can fail: the closure finds what a module really imports.
    assert "island_pki_ca" in import_closure("island_ca")
    assert {"island_pki_ca", "island_pki_sign"} <= import_closure("island_cert_sign")


def test_the_host_side_code_imports_without_cryptography_so_the_module_can_say_what_is_missing():
    code = (
        "import sys; sys.modules['cryptography'] = None; "
        f"from {PACKAGE} import island_pki, island_pki_host; "
        "print(island_pki.missing_cryptography()['msg'])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "collections")}
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    assert probe.returncode == 0, probe.stderr
    assert "cryptography >= 3.4" in probe.stdout
