"""Roles and playbooks call the collection's filters by their fully qualified names: Jinja plugins
never resolve by a collection's short name, so a short name works only from a checkout's
filter_plugins and breaks the installed collection (README.md, "Using it as a collection")."""

from __future__ import annotations

import importlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _filter_names():
    names = []
    for path in sorted((ROOT / "plugins" / "filter").glob("*.py")):
        module = importlib.import_module(f"ansible_collections.island.installer.plugins.filter.{path.stem}")
        names += list(module.FilterModule().filters())
    return names


def test_no_role_or_playbook_calls_a_filter_of_the_collection_by_its_short_name():
    names = "|".join(sorted(_filter_names(), key=len, reverse=True))
    short = re.compile(rf"(\|\s*|(map|select|reject)\(\s*['\"])({names})\b")
    places = [
        *ROOT.glob("roles/**/*.yml"),
        *ROOT.glob("roles/**/*.j2"),
        *ROOT.glob("playbooks/*.yml"),
        *ROOT.glob("molecule/**/*.yml"),
    ]
    found = [
        f"{p.relative_to(ROOT).as_posix()}:{n}: {line.strip()}"
        for p in places
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if short.search(line)
    ]
    assert found == []


def test_the_checkout_has_no_filter_plugins_path_to_hide_a_short_name():
    assert "filter_plugins" not in (ROOT / "ansible.cfg").read_text()
