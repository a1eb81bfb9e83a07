"""What a run of site.yml or upgrade.yml changed (or, in --check, would change), in one place.

The preview of an upgrade is ``upgrade.yml --check --diff``: the plan's line per host and component
(version running -> version of the bundle), every image tag the seeding moves or creates (old and
new digest), every git ref the seeding moves (old and new commit). Read from what the roles
registered: ``upgrade_plan`` (role upgrade), ``registry_seeded`` (registry role),
``gitea_seeded`` (gitea role).
"""

from __future__ import annotations


def _short(digest):
    return digest if digest else "(absent)"


def island_change_report(hostvars, play_hosts):
    """Lines: components, images, git refs; each section says when nothing changes."""
    hosts = sorted(play_hosts)
    lines = ["Components (running -> bundle):"]
    plan = next((hostvars[h]["upgrade_plan"] for h in hosts if "upgrade_plan" in hostvars[h]), None)
    if plan and plan.get("lines"):
        lines += [f"  {line}" for line in plan["lines"]]
    else:
        lines.append("  (no plan in this run)")

    images = []
    seen = set()
    for host in hosts:
        seeded = hostvars[host].get("registry_seeded") or {}
        for image in seeded.get("images") or []:
            key = (image.get("image"), image.get("old_digest"), image.get("digest"))
            if image.get("changed") and key not in seen:
                seen.add(key)
                old, new = _short(image.get("old_digest")), image["digest"]
                images.append(f"  {image['image']}: {old} -> {new} ({image['action']})")
    lines.append("Image tags (old digest -> new digest):")
    lines += sorted(images) or ["  none move"]

    refs = []
    for host in hosts:
        for result in (hostvars[host].get("gitea_seeded") or {}).get("results") or []:
            for ref in result.get("refs") or []:
                if ref.get("action") != "unchanged":
                    repository, old = result.get("repository", "?"), _short(ref.get("old"))
                    refs.append(f"  {repository} {ref['ref']}: {old} -> {ref['new']} ({ref['action']})")
    lines.append("Git refs (old commit -> new commit):")
    lines += sorted(set(refs)) or ["  none move"]
    return lines


class FilterModule:
    def filters(self):
        return {"island_change_report": island_change_report}
