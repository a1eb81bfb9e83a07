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
    firing alerts as the island's Prometheus answered (O(prometheus)), with the time it answered, and
    otherwise that the page is made from the receipt alone (docs/status-page.md).
  - Changed means the part the receipt makes changed - the same receipt gives the same bytes (days
    left are counted to the receipt's own time). Monitoring's live data rewrites the file when it
    differs but is not a change, so a rerun on an unchanged island reports C(changed=false). The page
    carries the sha256 of the receipt's part to decide that.
  - Prometheus could not be asked (O(prometheus) with a failed answer) - the page says so, the module
    warns and does not fail.
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
      - Targets (C(job), C(instance), C(host), C(health), C(last_error)) and firing alerts (C(name),
        C(instance), C(severity), C(summary), C(since)), with C(url) and C(taken_at), shown when given;
        C(state=unreachable) with C(error) says monitoring could not be asked.
      - Mutually exclusive with O(prometheus), which the playbooks use.
    type: dict
  prometheus:
    description:
      - The island's Prometheus's answers, as M(ansible.builtin.uri) returned them (C(status), C(msg),
        C(json), C(date)), for C(targets) (C(/api/v1/targets)) and C(alerts) (C(/api/v1/alerts)),
        and the C(url) asked. The data's time is the C(date) header of the targets answer.
      - C(secret) names the password file, for the message when the account is refused.
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
receipt_sha256:
  description: The sha256 of the page the receipt alone makes (what C(changed) compares).
  returned: always
  type: str
monitoring:
  description: C(present), C(unreachable) or C(absent) - what the page shows of monitoring.
  returned: always
  type: str
rewritten:
  description: Whether the file was written (also when only monitoring's live data differed).
  returned: always
  type: bool
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
from ansible_collections.island.installer.plugins.module_utils.island_status_page import (
    monitoring_from_prometheus,
    page_receipt_digest,
    receipt_digest,
    render,
)

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


def _monitoring(module):
    p = module.params
    answers = p["prometheus"]
    if answers is None:
        return p["monitoring"]
    monitoring = monitoring_from_prometheus(
        answers.get("url", ""),
        answers.get("targets"),
        answers.get("alerts"),
        password_file=answers.get("secret"),
    )
    if monitoring["state"] == "unreachable":
        module.warn(
            f"the island's Prometheus {monitoring['url']} could not be asked ({monitoring['error']}); "
            "the status page says so and is made from the receipt alone"
        )
    return monitoring


def run(module):
    p = module.params
    receipt = _receipt(p)
    monitoring = _monitoring(module)
    page = render(receipt, warn_days=p["warn_days"], monitoring=monitoring).encode("utf-8")
    digest = receipt_digest(receipt, p["warn_days"])
    try:
        current = read_regular(p["path"], PAGE_LIMIT, follow_symlinks=True)
    except FileNotFoundError:
        current = None
    rewrite = current != page
    if rewrite and not module.check_mode:
        atomic_write(p["path"], page, 0o644)
    return {
        "changed": current is None or page_receipt_digest(current) != digest,
        "rewritten": rewrite and not module.check_mode,
        "path": p["path"],
        "sha256": hashlib.sha256(page).hexdigest(),
        "receipt_sha256": digest,
        "monitoring": monitoring.get("state", "present") if monitoring else "absent",
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "receipt": {"type": "dict"},
            "receipt_path": {"type": "path"},
            "warn_days": {"type": "int", "default": 30},
            "monitoring": {"type": "dict"},
            "prometheus": {"type": "dict"},
        },
        required_one_of=[("receipt", "receipt_path")],
        mutually_exclusive=[("receipt", "receipt_path"), ("monitoring", "prometheus")],
        supports_check_mode=True,
    )
    run_module(module, run, StatusPageError)


if __name__ == "__main__":
    main()
