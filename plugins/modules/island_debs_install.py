#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install the bundle's Debian packages, already on the host, with apt and no package source."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_debs_install
short_description: Install the bundle's Debian packages on the host with apt and no package source
description:
  - Reads which of O(debs) the host has installed at the bundle's version (C(dpkg-query)), and
    installs the others from their files on the host with C(apt-get install), given an empty
    source list (O(sources_list), O(sources_parts)), so that apt reads no package source, downloads
    nothing and installs nothing but the given files. apt's resolver orders them; a set that does
    not fit the host (an unmet dependency) fails naming the package, and nothing is changed.
  - In one call on the host what took three tasks (read, decide, install); a host that has every
    package reports no change and runs no apt.
  - A package counts as installed only at the bundle's version with the status C(ii) (selected
    install, installed). A configuration file the operator changed is kept (C(--force-confold)).
  - In check mode nothing is installed; the result says which packages would be.
version_added: "0.14.0"
author: island installer contributors
options:
  debs:
    description:
      - The bundle's packages for this host's release, as the C(island_debs) filter lists them.
      - Each has C(package), C(version) (the Debian version, epoch included) and C(dest) (the .deb
        file on the host, checked against the lock before this runs).
    type: list
    elements: dict
    required: true
  sources_list:
    description: An empty file given to apt as C(Dir::Etc::SourceList) (apt.conf(5), apt 2.6).
    type: path
    required: true
  sources_parts:
    description: An empty directory given to apt as C(Dir::Etc::SourceParts).
    type: path
    required: true
notes:
  - Supports check mode.
"""

EXAMPLES = r"""
- name: The bundle's packages are installed with no package source
  island_debs_install:
    debs: >-
      {{ island_bundle.files | island.installer.island_debs('bookworm', '/var/lib/island/debs/bookworm') }}
    sources_list: /var/lib/island/debs/sources.list
    sources_parts: /var/lib/island/debs/sources.list.d
"""

RETURN = r"""
pending:
  description: The packages not installed at the bundle's version before this call, each as
    C(<package> <version> (installed <version>)) or C(... (not installed)); see the code for the exact text.
  returned: always
  type: list
  elements: str
msg:
  description: What was (or in check mode would be) installed, or that nothing was needed.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_debs import (
    DebsError,
    apt_install_argv,
    dpkg_query_argv,
    pending_debs,
)
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module

ARGUMENT_SPEC = {
    "debs": {"type": "list", "elements": "dict", "required": True},
    "sources_list": {"type": "path", "required": True},
    "sources_parts": {"type": "path", "required": True},
}


def _pending(module, debs):
    rc, out, err = module.run_command(dpkg_query_argv(debs))
    # 1: some package is not installed (dpkg-query(1)), which is what this module is for.
    if rc not in (0, 1):
        raise DebsError(f"dpkg-query could not read the installed packages (exit {rc}): {err.strip()}")
    return pending_debs(debs, out)


def run(module):
    p = module.params
    debs = p["debs"]
    for deb in debs:
        missing = [key for key in ("package", "version", "dest") if not deb.get(key)]
        if missing:
            raise DebsError(
                f"debs: an entry lacks {', '.join(missing)}: {deb}; list them with the island_debs filter"
            )
    pending = _pending(module, debs)
    if not pending:
        return {"changed": False, "pending": [], "msg": "every package of the bundle is installed"}
    if module.check_mode:
        return {
            "changed": True,
            "pending": pending,
            "msg": f"apt would install from the bundle: {', '.join(pending)}",
        }
    rc, out, err = module.run_command(
        apt_install_argv(debs, p["sources_list"], p["sources_parts"]),
        environ_update={"DEBIAN_FRONTEND": "noninteractive"},
    )
    if rc != 0:
        raise DebsError(
            f"apt-get could not install the bundle's packages {', '.join(pending)} (exit {rc}): "
            f"{(err or out).strip()[-2000:]}; the bundle's packages do not fit this host: build the "
            "bundle against this host's Debian release (docs/bundle-spec.md, debs:)"
        )
    still = _pending(module, debs)
    if still:
        raise DebsError(
            "apt-get finished, but these packages are not at the bundle's version: " + ", ".join(still)
        )
    return {"changed": True, "pending": pending, "msg": f"installed from the bundle: {', '.join(pending)}"}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module(module, run, DebsError)


if __name__ == "__main__":
    main()
