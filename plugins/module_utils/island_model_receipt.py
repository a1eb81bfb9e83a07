"""What the receipt is made of, from the island model and what the hosts reported (split from
island_model.py along this seam; the filters island_receipt_* in plugins/filter/island_model.py).

Note that this module util is PRIVATE to this repository; it can change at any time.
"""

from __future__ import annotations

from ansible_collections.island.installer.plugins.module_utils.island_model import address


def receipt_hosts(all_hosts, reached, hostvars) -> list[dict]:
    """The receipt's hosts, in inventory order: what each reached host reported (its
    ``_receipt_host``), else its name, address and groups marked unreached."""
    out = []
    for host in all_hosts:
        values = hostvars.get(host, {})
        if host in reached and "_receipt_host" in values:
            out.append(values["_receipt_host"])
        else:
            out.append(
                {
                    "name": host,
                    "address": address(hostvars, host),
                    "groups": list(values.get("group_names", [])),
                    "reached": False,
                }
            )
    return out


def receipt_certificates(results) -> list[dict]:
    """The receipt's certificate entries from the slurp loop's results: the content, or why not."""
    out = []
    for result in results or []:
        item = result.get("item") or {}
        content = result.get("content")
        out.append(
            {
                "service": item.get("service"),
                "path": item.get("path"),
                "content": content,
                "error": result.get("msg", "") if content is None else "",
            }
        )
    return out


def receipt_registries(model: dict) -> list[dict]:
    """Each registry host and the address:port the receipt asks it at (its read-only port)."""
    return [
        {"host": i["host"], "registry": f"{i['address']}:{i['ports']['pull']}"}
        for i in model["components"]["registry"]["instances"]
    ]


def receipt_gitea(model: dict) -> list[dict]:
    """Each Gitea host and the URL the receipt asks it at."""
    return [
        {"host": i["host"], "url": f"https://{i['address']}:{i['ports']['http']}"}
        for i in model["components"]["gitea"]["instances"]
    ]
