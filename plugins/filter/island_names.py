"""The island's service names, chosen in one place: the island model's (module_utils/island_model.py).

Roles read a service's name from the `island` fact (island.components.<component>.name); this
filter gives the same name to anyone else. An operator may rename a service with the island-wide
variable `island_names` (for example {registry: cr}); the domain is always island_domain.
"""

from __future__ import annotations

from ansible_collections.island.installer.plugins.module_utils import island_model
from ansible_collections.island.installer.plugins.module_utils.island_model import service_name

DEFAULT_LABELS = island_model.SERVICE_LABELS
__all__ = ["DEFAULT_LABELS", "island_service_name"]


def island_service_name(service, domain, overrides=None):
    """`registry` -> `registry.island.internal` (or the operator's label for it)."""
    return service_name(service, domain, overrides)


class FilterModule:
    def filters(self):
        return {"island_service_name": island_service_name}
