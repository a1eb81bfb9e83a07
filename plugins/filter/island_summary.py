"""The closing summary of site.yml: what the operator now has, in a few lines."""

from __future__ import annotations

from ansible_collections.island.installer.plugins.module_utils.island_model import GROUPS


def island_summary(groups, hostvars, domain, secrets_dir, *, services=None, files=None, receipt=None):
    """Lines describing the island: its hosts per role, its service endpoints, where secrets are.

    `services` lists (name, endpoint) pairs; `files` the names of the secrets kept on the controller;
    `receipt` the path of the island's receipt (docs/receipt.md), when one was written.
    """
    lines = [f"Island {domain}"]
    for group, title in ((g["name"], g["title"]) for g in GROUPS):
        members = groups.get(group, [])
        hosts = ", ".join(f"{host} ({hostvars[host].get('ansible_host', host)})" for host in members)
        lines.append(f"  {title + ':':<13} {hosts or '(none)'}")
    lines.append("Services:")
    lines += [f"  {name + ':':<13} {endpoint}" for name, endpoint in services or []]
    if not services:
        lines.append("  none in the inventory")
    lines.append(f"Credentials and secrets, kept 0600 on this controller in {secrets_dir}:")
    lines += [f"  {name}" for name in sorted(files or [])] or ["  none generated yet"]
    if receipt:
        lines.append(f"Receipt of what the island runs (docs/receipt.md): {receipt}")
    return lines


class FilterModule:
    def filters(self):
        return {"island_summary": island_summary}
