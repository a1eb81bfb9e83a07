"""The island zone as data: records from the inventory, the services and the operator, validated,
and rendered as RFC 1035 zone files for CoreDNS's `file` plugin.

A single label (or service labels such as _ldap._tcp) is relative to the island domain; any other
name is a full name and must lie in the island domain. The SOA serial is derived from the zone's
content, so an unchanged zone renders byte-identical and a changed one gets a different serial,
which is what CoreDNS's `file` plugin reloads on (plugin/file/reload.go, CoreDNS 1.14.2: reload
when the serial differs).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

from ansible_collections.island.installer.plugins.module_utils import island_model
from ansible_collections.island.installer.plugins.module_utils.island_model import SERVICE_GROUPS
from ansible_collections.island.installer.plugins.module_utils.island_model import address as _address

DEFAULT_LABELS = island_model.SERVICE_LABELS
TYPES = ("A", "AAAA", "CNAME", "SRV", "TXT")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def _fqdn(name, domain):
    """A single label (`www`) or service labels (`_ldap._tcp`) are relative to the island domain;
    `@` is the domain itself; anything else is taken as a full name, so `www.example.com` stays
    outside the island and is refused rather than quietly becoming www.example.com.<domain>."""
    name = str(name).strip().lower().rstrip(".")
    if name in ("@", ""):
        return domain
    labels = name.split(".")
    if len(labels) == 1 or all(label.startswith("_") for label in labels):
        return f"{name}.{domain}"
    return name


def _in_domain(name, domain):
    return name == domain or name.endswith("." + domain)


def _valid_name(name):
    """A DNS name of letters, digits, `-` and `_` labels. fullmatch: `$` would accept a label that
    ends in a newline, which the zone file would turn into a record of the operator's choosing."""
    return (
        isinstance(name, str)
        and len(name) <= 253
        and all(_LABEL.fullmatch(label) for label in name.split("."))
    )


def _show(value, limit=80):
    """A value as messages quote it: escaped (no raw newline or control character) and capped."""
    text = repr(str(value))[1:-1]
    return text if len(text) <= limit else text[:limit] + "..."


def island_dns_records(groups, hostvars, domain, extra=None, labels=None, *, api_address=None):
    """Every record of the island zone: one A per inventory host, the service names on the hosts of
    their groups (the API name on api_address when given), and the operator's records."""
    domain = str(domain).rstrip(".").lower()
    labels = {**DEFAULT_LABELS, **(labels or {})}
    records = []
    for host in sorted(groups.get("all", [])):
        records.append(
            {
                "name": f"{host.lower()}.{domain}",
                "type": _a_type(_address(hostvars, host)),
                "value": _address(hostvars, host),
                "source": f"inventory host {host}",
            }
        )
    for service, group in SERVICE_GROUPS.items():
        members = groups.get(group, [])
        addresses = (
            [api_address] if service == "api" and api_address else [_address(hostvars, h) for h in members]
        )
        for address in sorted(set(addresses)):
            records.append(
                {
                    "name": f"{labels[service]}.{domain}",
                    "type": _a_type(address),
                    "value": address,
                    "source": f"service {service} ({group})",
                }
            )
    for index, record in enumerate(extra or []):
        records.append(
            {
                "name": _fqdn(record.get("name", ""), domain),
                "type": str(record.get("type", "")).upper(),
                "value": str(record.get("value", "")),
                "ttl": record.get("ttl"),
                "source": f"dns_records[{index}]",
            }
        )
    return records


def _a_type(address):
    try:
        return "AAAA" if ipaddress.ip_address(address).version == 6 else "A"
    except ValueError:
        return "A"  # reported by the checks


_MAX_TTL = 2**31 - 1  # RFC 2181 section 8: a TTL is an unsigned 31-bit number of seconds
_DIGITS = re.compile(r"[0-9]{1,10}")


def _ttl(value):
    """The record's TTL as an int, None when not given; ValueError when not an integer in range."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError
    number = int(value)
    if not 0 <= number <= _MAX_TTL:
        raise ValueError
    return number


def _txt(value):
    """TXT data as RFC 1035 (section 5.1) master-file text: each character-string quoted, `"` and
    `\\` escaped with a backslash, every other byte outside printable ASCII as \\DDD, and the UTF-8
    bytes split into character-strings of at most 255 bytes (section 3.3.14)."""
    data = str(value).encode()
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]

    def char(byte):
        if byte in (0x22, 0x5C):
            return "\\" + chr(byte)
        return chr(byte) if 0x20 <= byte <= 0x7E else f"\\{byte:03d}"

    return " ".join('"' + "".join(char(b) for b in chunk) + '"' for chunk in chunks)


def _rdata(kind, value):
    """The record's data as zone-file text; ValueError with the reason when the value is not valid
    for its type. Nothing of the value reaches the zone but what the type's parser accepted."""
    if kind in ("A", "AAAA"):
        version = 4 if kind == "A" else 6
        try:
            address = (ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address)(value)
        except ValueError:
            raise ValueError(f"is not a valid IPv{version} address") from None
        if getattr(address, "scope_id", None):
            raise ValueError("is an IPv6 address with a scope (%zone), which DNS cannot carry")
        return str(address)
    if kind in ("CNAME", "PTR"):
        if not _valid_name(value.rstrip(".")):
            raise ValueError("is not a DNS name")
        return value.rstrip(".") + "."
    if kind == "SRV":
        parts = value.split(" ")
        if (
            len(parts) != 4
            or not all(_DIGITS.fullmatch(p) and int(p) <= 65535 for p in parts[:3])
            or not _valid_name(parts[3].rstrip("."))
        ):
            raise ValueError(
                "is not 'priority weight port target' (three integers from 0 to 65535 and a DNS name, "
                "separated by single spaces)"
            )
        return " ".join([*(str(int(p)) for p in parts[:3]), parts[3].rstrip(".") + "."])
    if kind == "TXT":
        if len(value.encode()) > 255 * 16:
            raise ValueError("is too long (at most 4080 bytes)")
        return _txt(value)
    raise ValueError(f"has no rendering for type {kind}")


def _record_problems(record, types=TYPES):
    """Every problem of one record's own fields, each naming the field; empty when it renders safely."""
    where = f"{record['source']} ({_show(record['name'])} {_show(record['type'])})"
    if record["type"] not in types:
        return [f"{where}: type must be one of {', '.join(types)}"]
    problems = []
    if not _valid_name(record["name"]):
        problems.append(f"{where}: name '{_show(record['name'])}' is not a valid DNS name")
    try:
        _ttl(record.get("ttl"))
    except ValueError:
        problems.append(
            f"{where}: ttl '{_show(record.get('ttl'))}' must be an integer from 0 to {_MAX_TTL} (seconds)"
        )
    try:
        _rdata(record["type"], record["value"])
    except ValueError as exc:
        problems.append(f"{where}: value '{_show(record['value'])}' {exc}")
    return problems


def island_zone_problems(records, domain):
    """Every problem of the records, each naming the record's source and what to do."""
    domain = str(domain).rstrip(".").lower()
    problems = []
    if not _valid_name(domain):
        problems.append(f"island_domain '{_show(domain)}' is not a valid DNS name")
    for record in records:
        where = f"{record['source']} ({_show(record['name'])} {_show(record['type'])})"
        if record["type"] in TYPES and not _in_domain(record["name"], domain):
            problems.append(
                f"{where}: the name is outside the island domain {_show(domain)}; the island DNS "
                f"serves only its own zone (use a relative name or one ending in .{_show(domain)})"
            )
        problems.extend(_record_problems(record))
    by_name = {}
    for record in records:
        by_name.setdefault(record["name"], []).append(record)
    for name, group in sorted(by_name.items()):
        cnames = [r for r in group if r["type"] == "CNAME"]
        if cnames and len(group) > 1:
            sources = ", ".join(sorted({r["source"] for r in group}))
            problems.append(
                f"{name}: a CNAME cannot stand beside other data at the same name ({sources}); "
                f"keep either the CNAME or the other records"
            )
        for kind in ("A", "AAAA"):
            generated = {
                r["value"] for r in group if r["type"] == kind and not r["source"].startswith("dns_records")
            }
            given = [r for r in group if r["type"] == kind and r["source"].startswith("dns_records")]
            for record in given:
                if generated and record["value"] not in generated:
                    problems.append(
                        f"{record['source']} ({name} {kind} {record['value']}) disagrees with the "
                        f"inventory, which gives {name} the address {', '.join(sorted(generated))}: remove "
                        f"the record or change the host's address"
                    )
    return problems


def _serial(lines):
    # 1..2^31-1: a valid SOA serial that changes with the content (RFC 1982 arithmetic is not needed:
    # CoreDNS reloads when the serial differs).
    return int(hashlib.sha256("\n".join(lines).encode()).hexdigest()[:8], 16) % (2**31 - 1) + 1


def _render(origin, records, nameservers, ttl, contact):
    # The last guard: every field that reaches the text is checked again (the role reports the
    # problems first, island_zone_problems), so no caller can render an injected line.
    names = [origin, *(ns_name for ns_name, _ in nameservers), f"{contact}.{origin}"]
    bad = [_show(name) for name in names if not _valid_name(str(name).rstrip("."))]
    problems = [f"zone {_show(origin)}: '{name}' is not a valid DNS name" for name in bad]
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= _MAX_TTL:
        problems.append(f"zone {_show(origin)}: default ttl '{_show(ttl)}' is not an integer in range")
    for record in records:
        problems.extend(_record_problems(record, (*TYPES, "PTR")))
    if problems:
        raise ValueError("; ".join(problems))
    body = [f"{origin}.\t{ttl}\tIN\tNS\t{ns_name.rstrip('.')}." for ns_name, _ in nameservers]
    for record in sorted(records, key=lambda r: (r["name"], r["type"], r["value"])):
        value = _rdata(record["type"], record["value"])
        record_ttl = _ttl(record.get("ttl"))
        body.append(
            f"{record['name']}.\t{ttl if record_ttl is None else record_ttl}\tIN\t{record['type']}\t{value}"
        )
    body = sorted(set(body), key=body.index)
    primary = nameservers[0][0] if nameservers else f"ns.{origin}"
    soa = f"{origin}.\t{ttl}\tIN\tSOA\t{primary}. {contact}.{origin}. {_serial(body)} 7200 3600 1209600 {ttl}"
    return "\n".join(
        [
            f"; Island zone {origin}, rendered by the island installer. Do not edit:",
            "; the serial is derived from the content.",
            f"$ORIGIN {origin}.",
            soa,
            *body,
            "",
        ]
    )


def island_zone_file(records, domain, nameservers, ttl=300, contact="hostmaster"):
    """The forward zone as RFC 1035 text. `nameservers` lists (name, address) of the island DNS hosts."""
    domain = str(domain).rstrip(".").lower()
    return _render(domain, records, [tuple(ns) for ns in nameservers], int(ttl), contact)


def island_reverse_zones(networks):
    """Reverse zone names for the island networks (IPv4 prefixes of /8, /16 or /24; IPv6 on nibble
    boundaries). Raises ValueError naming a network that does not fall on such a boundary."""
    zones = []
    for text in networks or []:
        network = ipaddress.ip_network(str(text), strict=False)
        step = 8 if network.version == 4 else 4
        if network.prefixlen % step or network.prefixlen == 0:
            raise ValueError(
                f"island network {network}: its reverse zone needs a prefix on a {step}-bit boundary "
                f"(e.g. {'/8, /16 or /24' if step == 8 else '/48 or /64'}); list the covering networks"
            )
        labels = network.network_address.reverse_pointer.split(".")
        keep = network.prefixlen // step
        zones.append({"zone": ".".join(labels[-(keep + 2) :]), "network": str(network)})
    return zones


def island_network_problems(networks):
    """Problems with the island networks for reverse zones (an invalid CIDR, an unaligned prefix)."""
    problems = []
    for text in networks or []:
        try:
            island_reverse_zones([text])
        except ValueError as exc:
            problems.append(f"island_networks: {exc}")
    return problems


def island_forward_zone_problems(forward_zones, domain):
    """Problems with dns_forward_zones: each must be a zone outside the island, with server addresses."""
    domain = str(domain).rstrip(".").lower()
    problems = []
    for index, entry in enumerate(forward_zones or []):
        where = f"dns_forward_zones[{index}]"
        zone = str((entry or {}).get("zone", "")).rstrip(".").lower()
        servers = (entry or {}).get("servers") or []
        if not zone or not _valid_name(zone):
            problems.append(
                f"{where}: needs a zone (a DNS name, not '{_show(zone)}'), "
                f"e.g. {{zone: corp.example, servers: [10.1.1.1]}}"
            )
        elif _in_domain(zone, domain):
            problems.append(
                f"{where}: {zone} lies inside the island domain {domain}, which the island serves itself"
            )
        if not servers:
            problems.append(f"{where}: needs the addresses of the zone's servers")
        for server in servers:
            # Each server goes into the Corefile as written: an address CoreDNS's forward plugin
            # reads and nothing else (no IPv6 %zone, whose text Python accepts as is).
            host, sep, port = (
                str(server).rpartition(":") if str(server).count(":") == 1 else (str(server), "", "")
            )
            try:
                address = ipaddress.ip_address(host or str(server))
                if getattr(address, "scope_id", None):
                    raise ValueError
            except ValueError:
                problems.append(
                    f"{where}: server '{_show(server)}' is not an IP address (with an optional :port)"
                )
            if sep and not (_DIGITS.fullmatch(port) and 0 < int(port) <= 65535):
                problems.append(f"{where}: server '{_show(server)}' has an invalid port (1 to 65535)")
    return problems


def island_reverse_zone_file(records, zone, nameservers, ttl=300, contact="hostmaster"):
    """PTR records for every A/AAAA record whose address lies in `zone` (a dict from island_reverse_zones)."""
    network = ipaddress.ip_network(zone["network"])
    seen = {}
    for record in sorted(records, key=lambda r: (r["source"].startswith("dns_records"), r["name"])):
        if record["type"] not in ("A", "AAAA"):
            continue
        address = ipaddress.ip_address(record["value"])
        if address in network and address not in seen and record["source"].startswith("inventory host"):
            seen[address] = record["name"]
    ptrs = [
        {"name": address.reverse_pointer, "type": "PTR", "value": name, "source": "reverse"}
        for address, name in seen.items()
    ]
    return _render(zone["zone"], ptrs, [tuple(ns) for ns in nameservers], int(ttl), contact)


def island_zone_files(records, domain, reverse_zones, nameservers, ttl=300):
    """Every zone file the island DNS serves: [{zone, content}], the forward zone first."""
    files = [
        {
            "zone": str(domain).rstrip(".").lower(),
            "content": island_zone_file(records, domain, nameservers, ttl),
        }
    ]
    for zone in reverse_zones:
        files.append(
            {"zone": zone["zone"], "content": island_reverse_zone_file(records, zone, nameservers, ttl)}
        )
    return files


class FilterModule:
    def filters(self):
        return {
            "island_dns_records": island_dns_records,
            "island_zone_problems": island_zone_problems,
            "island_zone_file": island_zone_file,
            "island_reverse_zones": island_reverse_zones,
            "island_reverse_zone_file": island_reverse_zone_file,
            "island_zone_files": island_zone_files,
            "island_network_problems": island_network_problems,
            "island_forward_zone_problems": island_forward_zone_problems,
        }
