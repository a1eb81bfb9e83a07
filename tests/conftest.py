"""Shared pytest set-up.

The project's module_utils are imported as Ansible imports them in a module
(``from ansible.module_utils.island_x import ...``): Ansible adds ``plugins/module_utils`` to the
``ansible.module_utils`` package when it builds a module, and this file does the same for pytest.
Filter plugins, modules and the test-bundle tooling (tests/bundle) are importable by name.
"""

from __future__ import annotations

import sys
from pathlib import Path

import ansible.module_utils

ROOT = Path(__file__).resolve().parent.parent

ansible.module_utils.__path__.append(str(ROOT / "plugins" / "module_utils"))
for sub in ("plugins/filter", "plugins/modules", "tests/bundle"):
    sys.path.insert(0, str(ROOT / sub))
