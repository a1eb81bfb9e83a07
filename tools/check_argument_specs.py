#!/usr/bin/env python3
"""Every role's defaults/main.yml and meta/argument_specs.yml name the same variables.

The argument spec is the role's documentation and its input check; a default it does not list, or
an option with no default that is not required, is a drift this check refuses. Options named
island_* are island-wide inventory variables (island_domain, island_bundle_dir, ...): a role lists
the ones it reads, but they have no role default.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def problems_of(role: Path) -> list[str]:
    defaults_file = role / "defaults" / "main.yml"
    spec_file = role / "meta" / "argument_specs.yml"
    if not spec_file.exists():
        return [f"{role.name}: meta/argument_specs.yml is missing; every role documents its inputs"]
    defaults = yaml.safe_load(defaults_file.read_text()) or {} if defaults_file.exists() else {}
    spec = (yaml.safe_load(spec_file.read_text()) or {}).get("argument_specs", {})
    options: dict = {}
    for entry in spec.values():
        options.update(entry.get("options") or {})
    found = []
    for name in sorted(set(defaults) - set(options)):
        found.append(f"{role.name}: default '{name}' is not in meta/argument_specs.yml")
    for name, option in sorted(options.items()):
        if name not in defaults and not option.get("required") and not name.startswith("island_"):
            found.append(f"{role.name}: option '{name}' has no default and is not required")
        if "default" in option:
            found.append(
                f"{role.name}: option '{name}' repeats a default; defaults/main.yml is the one place for it"
            )
    return found


def main() -> int:
    found = []
    for role in sorted((ROOT / "roles").iterdir()):
        if role.is_dir():
            found += problems_of(role)
    for line in found:
        print(line, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
