"""The default bundle spec (bundle-spec.yml) is valid and internally consistent."""

from __future__ import annotations

from ansible_collections.island.installer.plugins.module_utils.island_bundle_build import load_spec
from ansible_collections.island.installer.plugins.module_utils.island_model import COMPONENTS

from tests.support import ROOT

SPEC = ROOT / "bundle-spec.yml"


def test_the_default_spec_is_valid_and_names_every_island_component():
    spec = load_spec(SPEC)
    # Every component of the island model, the monitoring programs included (a host of any group
    # carries node_exporter, so a bundle without it would be refused by the upgrade plan).
    assert set(spec["components"]) == {c["name"] for c in COMPONENTS}


def test_every_default_download_is_pinned_by_a_checksum():
    spec = load_spec(SPEC)
    entries = [e for c in spec["components"].values() for e in c["files"]] + spec["image_lists"]
    for entry in entries:
        assert ("sha256" in entry) != ("checksum_url" in entry), entry


def test_each_components_urls_carry_its_version():
    spec = load_spec(SPEC)
    for name, component in spec["components"].items():
        version = component["version"].replace("+", "%2B")
        for entry in component["files"]:
            assert version in entry["url"], (name, entry["url"])
            if "checksum_url" in entry:
                assert version in entry["checksum_url"], (name, entry["checksum_url"])
