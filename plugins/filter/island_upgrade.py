"""What the upgrade plan needs of each host, from the one read the upgrade role makes on it."""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError


def island_upgrade_hosts(hosts, hostvars, island, read_result="_upgrade_read"):
    """{host: {'components', 'records', 'bundle_record'?}} for module island_upgrade_plan, from each
    host's registered island_install ``read`` of its component records (``<record_dir>/<component>.json``)
    and its record of the last bundle applied (``island.bundle_record``). An absent record is left
    out (the component has not run there yet); a record that is not JSON is refused, naming it."""
    out = {}
    for host in hosts or []:
        read = (hostvars[host].get(read_result) or {}).get("read")
        if read is None:
            raise AnsibleFilterError(
                f"upgrade: the records of {host} were not read (the host was not reached in this run); "
                "run again with the host reachable, or take it out of the inventory"
            )
        components = list(island["hosts"][host]["components"])
        records = {}
        for component in components:
            path = f"{island['record_dir']}/{component}.json"
            text = read.get(path)
            if text is None:
                continue
            try:
                records[component] = json.loads(text)
            except ValueError as exc:
                raise AnsibleFilterError(
                    f"upgrade: {host}:{path} is not a record this installer writes ({exc}); move it away "
                    "and run site.yml to write it again"
                ) from exc
        entry = {"components": components, "records": records}
        if read.get(island["bundle_record"]) is not None:
            entry["bundle_record"] = read[island["bundle_record"]]
        out[host] = entry
    return out


class FilterModule:
    def filters(self):
        return {"island_upgrade_hosts": island_upgrade_hosts}
