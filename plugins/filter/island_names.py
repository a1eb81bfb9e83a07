"""The island's service names, chosen in one place.

Every role that needs a service's name (certificates, DNS records, k3s mirrors, the summary) asks
this filter, so the names agree everywhere. An operator may rename a service with the island-wide
variable `island_names` (for example {registry: cr}); the domain is always island_domain.
"""

from __future__ import annotations

DEFAULT_LABELS = {
    "registry": "registry",  # the container registry
    "s3": "s3",  # MinIO's S3 endpoint
    "git": "git",  # Gitea
    "api": "api",  # the Kubernetes API (k3s servers)
}


def island_service_name(service, domain, overrides=None):
    """`registry` -> `registry.island.internal` (or the operator's label for it)."""
    labels = {**DEFAULT_LABELS, **(overrides or {})}
    if service not in labels:
        raise ValueError(f"unknown island service '{service}' (known: {', '.join(sorted(labels))})")
    return f"{labels[service]}.{str(domain).rstrip('.')}"


class FilterModule:
    def filters(self):
        return {"island_service_name": island_service_name}
