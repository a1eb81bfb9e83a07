#!/usr/bin/python
# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thin Ansible module over module_utils/island_status_page: write the island's status page."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: island_status_page
short_description: Write the island's status page, one self-contained HTML file, from the receipt
description:
  - Runs on the controller after the receipt is written (C(playbooks/receipt.yml), so after
    C(site.yml) and C(upgrade.yml)) or on demand (C(playbooks/status.yml)), and writes ONE HTML file
    an operator opens in any browser, with no network - no script, no external font, style or image.
  - It shows each host and component with the version it runs against the bundle's, certificate
    expiries (the island CA's too), the images' served digests against the lock, the Gitea refs,
    the newest etcd snapshot, and when the data was taken (the receipt's C(written_at)); targets and
    firing alerts when O(monitoring) is given, and otherwise that the page is made from the receipt
    alone (docs/status-page.md).
  - Deterministic - the same receipt gives the same bytes (days left are counted to the receipt's
    own time) - so a rerun on an unchanged island writes nothing and reports C(changed=false).
  - Writes atomically (a temporary file, then a rename), mode 0644. Check mode writes nothing.
version_added: "0.10.0"
author: island installer contributors
options:
  path:
    description: Where the page is written; its directory must exist.
    type: path
    required: true
  receipt:
    description: The receipt document (the C(receipt) that M(island_receipt) returns).
    type: dict
  receipt_path:
    description: The receipt file to read instead of O(receipt).
    type: path
  warn_days:
    description: A certificate that expires within this many days of the data's time is marked.
    type: int
    default: 30
  monitoring:
    description:
      - Targets (C(job), C(instance), C(health)) and firing alerts (C(name), C(summary), C(since)),
        shown when given.
    type: dict
attributes:
  check_mode:
    support: full
    description: Reports whether the page would change; writes nothing.
  diff_mode:
    support: none
notes:
  - Exactly one of O(receipt) and O(receipt_path).
"""

EXAMPLES = r"""
- name: The status page is written from the receipt
  island_status_page:
    receipt_path: "{{ island_secrets_dir | dirname }}/island-receipt.json"
    path: "{{ island_secrets_dir | dirname }}/island-status.html"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
path:
  description: The page's path.
  returned: always
  type: str
sha256:
  description: The sha256 of the page as written (or as it would be, in check mode).
  returned: always
  type: str
"""

import hashlib
import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.island.installer.plugins.module_utils.island_io import atomic_write, read_regular
from ansible_collections.island.installer.plugins.module_utils.island_module import run_module
from ansible_collections.island.installer.plugins.module_utils.island_status_page import render

PAGE_LIMIT = 16 * 1024 * 1024


class StatusPageError(Exception):
    """A receipt that cannot be read; the message names the file and what to do."""


def _receipt(params):
    if params["receipt"] is not None:
        return params["receipt"]
    path = params["receipt_path"]
    try:
        return json.loads(read_regular(path, PAGE_LIMIT, follow_symlinks=True))
    except FileNotFoundError:
        raise StatusPageError(
            f"the receipt {path} does not exist yet; run playbooks/site.yml or playbooks/receipt.yml first"
        ) from None
    except (OSError, ValueError) as exc:
        raise StatusPageError(
            f"the receipt {path} cannot be read as JSON ({exc}); "
            "rerun playbooks/receipt.yml to write it again"
        ) from None


def run(module):
    p = module.params
    page = render(_receipt(p), warn_days=p["warn_days"], monitoring=p["monitoring"]).encode("utf-8")
    try:
        current = read_regular(p["path"], PAGE_LIMIT, follow_symlinks=True)
    except FileNotFoundError:
        current = None
    changed = current != page
    if changed and not module.check_mode:
        atomic_write(p["path"], page, 0o644)
    return {"changed": changed, "path": p["path"], "sha256": hashlib.sha256(page).hexdigest()}


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "receipt": {"type": "dict"},
            "receipt_path": {"type": "path"},
            "warn_days": {"type": "int", "default": 30},
            "monitoring": {"type": "dict"},
        },
        required_one_of=[("receipt", "receipt_path")],
        mutually_exclusive=[("receipt", "receipt_path")],
        supports_check_mode=True,
    )
    run_module(module, run, StatusPageError)


if __name__ == "__main__":
    main()
