# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an upgrade would do, and whether it may: component versions compared host by host.

Each host keeps a record of the version of each bundle component that RUNS there (written by the
roles once the component runs it: roles/common/tasks/record.yml). Against a new bundle's lock this
module decides, per host and component, the action (install, upgrade, downgrade, replace,
unchanged) and refuses what must not happen silently:

- a downgrade, unless the operator allows it for that component (``allow_downgrade``);
- a bundle older than the one the island last took, or another bundle under the same version,
  unless the operator names its version (``island_upgrade_bundle``);
- a Kubernetes minor version skipped: upstream supports upgrading one minor at a time only
  ("Version Skew Policy", kubernetes.io/releases/version-skew-policy, and k3s's upgrade docs:
  docs.k3s.io/upgrades, "upgrade one minor version at a time"), so k3s v1.35 -> v1.37 is refused
  with the versions named, whichever host runs the older one.

Version schemes, by component:
  k3s        ``v1.36.3+k3s1`` (Kubernetes version, then the k3s revision of it)
  minio      ``RELEASE.2025-09-07T16-13-09Z`` (release date and time)
  others     semantic versions, ``1.14.2`` or ``v2.8.2``, with an optional ``-prerelease``
"""

from __future__ import annotations

import re

# Which bundle components a host carries, from its inventory groups: the island model's.
from ansible_collections.island.installer.plugins.module_utils.island_model import host_components
from ansible_collections.island.installer.plugins.module_utils.island_upgrade_bundle import decide, semver_key

__all__ = ["VersionError", "host_components", "kubernetes_minor", "parse_version", "plan"]

ACTIONS = ("install", "upgrade", "downgrade", "replace", "unchanged")

_K3S = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-rc(\d+))?\+k3s(\d+)$")
_MINIO = re.compile(r"^RELEASE\.(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})Z$")


class VersionError(ValueError):
    """A version string that does not follow its component's scheme."""


def parse_version(component: str, version: str) -> tuple:
    """A key that orders versions of one component (greater is newer)."""
    if component == "k3s":
        match = _K3S.match(version)
        if not match:
            raise VersionError(f"{component} version {version!r} is not of the form v1.36.3+k3s1")
        major, minor, patch, rc, revision = match.groups()
        # An -rcN sorts before the release of the same revision.
        return (int(major), int(minor), int(patch), int(revision), 0 if rc else 1, int(rc or 0))
    if component == "minio":
        match = _MINIO.match(version)
        if not match:
            raise VersionError(
                f"{component} version {version!r} is not of the form RELEASE.2025-09-07T16-13-09Z"
            )
        return tuple(int(part) for part in match.groups())
    key = semver_key(version)
    if key is None:
        raise VersionError(f"{component} version {version!r} is not a semantic version such as 1.14.2")
    return key


def kubernetes_minor(version: str) -> tuple[int, int]:
    match = _K3S.match(version)
    if not match:
        raise VersionError(f"k3s version {version!r} is not of the form v1.36.3+k3s1")
    return int(match.group(1)), int(match.group(2))


def _binary_sha256(lock: dict, component: str) -> str:
    files = (lock.get("components") or {}).get(component, {}).get("files") or []
    by_path = {entry["path"]: entry["sha256"] for entry in lock.get("files", [])}
    binaries = [path for path in files if path.startswith("bin/")]
    return by_path.get(binaries[0], "") if binaries else ""


def plan(
    lock: dict,
    hosts: dict,
    allow_downgrade=(),
    allow_minor_skip: bool = False,
    *,
    bundle: dict | None = None,
    applied: dict | None = None,
    rollback_to: str | None = None,
) -> dict:
    """Decide the action per host and component, and the refusals.

    ``hosts`` maps a host to ``{"components": [...], "records": {component: record}}``, a record
    being ``{"component", "version", "sha256"}`` as the host keeps it, and optionally
    ``"bundle_record"`` (the host's record of the last bundle applied, JSON text or mapping).
    Returns ``hosts`` (host to component to ``{"running", "bundle", "action"}``), ``components``
    (component to the versions running, the bundle's and the hosts to change), ``refused``
    (messages) and ``lines`` (the readable plan).

    With ``bundle`` (the verified bundle's record: name, version, created, lock_sha256), the bundle
    itself is checked against the records of the last bundle applied (``applied``: where each was
    read to the record or None) by ``island_upgrade_bundle.decide``: an older bundle, or another
    bundle under the same version, is refused unless ``rollback_to`` names its version. Its
    decision is ``bundle`` in the result, and its line comes first.
    """
    allow_downgrade = set(allow_downgrade or ())
    bundle_components = lock.get("components") or {}
    result: dict = {"hosts": {}, "components": {}, "refused": [], "lines": []}
    if bundle is not None:
        # Each host's own record (``bundle_record`` beside its component records) counts too.
        on_hosts = {host: (info or {}).get("bundle_record") for host, info in hosts.items()}
        result["bundle"] = decide(bundle, {**(applied or {}), **on_hosts}, rollback_to)
        result["refused"] += result["bundle"]["refused"]
        result["lines"].append(result["bundle"]["line"])
    for host in sorted(hosts):
        info = hosts[host] or {}
        records = info.get("records") or {}
        for component in sorted(info.get("components") or []):
            entry = bundle_components.get(component)
            if entry is None:
                result["refused"].append(
                    f"{component} on {host}: the bundle's lock has no component {component}; build the "
                    f"bundle with it (bundle-spec.yml), or take {host} out of the group that carries it"
                )
                continue
            wanted = str(entry.get("version", ""))
            record = records.get(component) or {}
            running = record.get("version") or None
            sha256 = _binary_sha256(lock, component)
            action = _action(component, host, running, wanted, record=record, sha256=sha256, result=result)
            result["hosts"].setdefault(host, {})[component] = {
                "running": running,
                "bundle": wanted,
                "action": action,
            }
            summary = result["components"].setdefault(
                component, {"bundle": wanted, "running": [], "hosts_to_change": []}
            )
            if running and running not in summary["running"]:
                summary["running"].append(running)
            if action != "unchanged":
                summary["hosts_to_change"].append(host)
            if action == "downgrade" and component not in allow_downgrade:
                result["refused"].append(
                    f"{component} on {host}: the bundle brings {wanted}, older than {running} that runs "
                    f"there; a downgrade is refused unless allowed for this component "
                    f"(upgrade_allow_downgrade: [{component}]), see docs/upgrades.md before rolling back"
                )
            result["lines"].append(_line(host, component, running, wanted, action))
    for summary in result["components"].values():
        summary["running"].sort()
    _check_kubernetes_skew(result, allow_minor_skip)
    return result


def _action(component, host, running, wanted, *, record, sha256, result) -> str:
    if not running:
        return "install"
    try:
        order = (parse_version(component, running) > parse_version(component, wanted)) - (
            parse_version(component, running) < parse_version(component, wanted)
        )
    except VersionError as exc:
        result["refused"].append(f"{component} on {host}: {exc}; the plan cannot order it")
        return "unchanged"
    if order < 0:
        return "upgrade"
    if order > 0:
        return "downgrade"
    # Same version: a different binary (a rebuilt release) is replaced, and said so.
    return "replace" if sha256 and record.get("sha256") not in (None, "", sha256) else "unchanged"


def _check_kubernetes_skew(result: dict, allow_minor_skip: bool) -> None:
    k3s = result["components"].get("k3s")
    if not k3s or allow_minor_skip:
        return
    try:
        wanted = kubernetes_minor(k3s["bundle"])
        running = [(kubernetes_minor(version), version) for version in k3s["running"]]
    except VersionError as exc:
        result["refused"].append(f"k3s: {exc}")
        return
    for minor, version in running:
        if minor[0] == wanted[0] and wanted[1] - minor[1] > 1:
            skipped = ", ".join(f"v{wanted[0]}.{m}" for m in range(minor[1] + 1, wanted[1]))
            result["refused"].append(
                f"k3s: the bundle brings {k3s['bundle']} but {version} runs on "
                f"{', '.join(_hosts_running(result, 'k3s', version))}: Kubernetes upgrades one minor version "
                f"at a time, and v{minor[0]}.{minor[1]} -> v{wanted[0]}.{wanted[1]} skips {skipped}; "
                f"upgrade with a bundle carrying k3s {skipped.split(', ')[0]} first"
            )
        elif minor[0] != wanted[0]:
            result["refused"].append(
                f"k3s: the bundle brings {k3s['bundle']} but {version} runs: a change of Kubernetes "
                f"major version is not an upgrade this installer makes"
            )


def _hosts_running(result: dict, component: str, version: str) -> list[str]:
    return [
        host
        for host, components in sorted(result["hosts"].items())
        if components.get(component, {}).get("running") == version
    ]


def _line(host, component, running, wanted, action) -> str:
    if action == "install":
        return f"{host}: {component} {wanted} (not recorded as running: installed or restarted)"
    if action == "unchanged":
        return f"{host}: {component} {wanted} (unchanged)"
    return f"{host}: {component} {running} -> {wanted} ({action})"
