"""DNS data injection (issue 15, item 13): every field of every record is validated, TXT is escaped
per RFC 1035 section 5.1, and a rendered zone holds exactly the intended records. dnspython parses
the zone as an independent reader of the master-file format."""

from __future__ import annotations

import dns.rdatatype
import dns.zone
import pytest
from ansible_collections.island.installer.plugins.filter.island_dns import (
    island_dns_records,
    island_forward_zone_problems,
    island_zone_file,
    island_zone_problems,
)

DOMAIN = "island.test"
GROUPS = {"all": ["infra1"], "island_dns": ["infra1"]}
HOSTVARS = {"infra1": {"island_address": "10.9.0.10"}}
NAMESERVERS = [("infra1.island.test", "10.9.0.10")]

PAYLOADS = {
    "newline": "\nevil 300 IN A 6.6.6.6",
    "carriage return": "\revil 300 IN A 6.6.6.6",
    "semicolon": "; comment",
    "quote": '" 300 IN A 6.6.6.6 "',
    "$INCLUDE": "\n$INCLUDE /etc/shadow",
    "$ORIGIN": "\n$ORIGIN evil.example.",
}
GOOD = {
    "A": {"name": "a", "type": "A", "value": "10.9.0.50", "ttl": 60},
    "AAAA": {"name": "v6", "type": "AAAA", "value": "fd00::10", "ttl": 60},
    "CNAME": {"name": "www", "type": "CNAME", "value": "infra1.island.test", "ttl": 60},
    "SRV": {"name": "_ldap._tcp", "type": "SRV", "value": "0 5 389 infra1.island.test", "ttl": 60},
    "TXT": {"name": "motd", "type": "TXT", "value": "welcome", "ttl": 60},
}


def _records(extra):
    return island_dns_records(GROUPS, HOSTVARS, DOMAIN, extra)


def _parse(text):
    return dns.zone.from_text(text, origin=DOMAIN, relativize=False, check_origin=True)


def _contents(zone):
    """Every (name, type) in the zone but the SOA and NS of the apex."""
    return sorted(
        (name.to_text(), dns.rdatatype.to_text(rdataset.rdtype))
        for name, node in zone.nodes.items()
        for rdataset in node.rdatasets
        if rdataset.rdtype not in (dns.rdatatype.SOA, dns.rdatatype.NS)
    )


def _cases():
    for kind in GOOD:
        for field in ("name", "type", "ttl", "value"):
            if kind == "TXT" and field == "value":
                continue  # any TXT value is valid; it is escaped (below)
            for payload_name, payload in PAYLOADS.items():
                yield pytest.param(kind, field, payload, id=f"{kind}-{field}-{payload_name}")


@pytest.mark.parametrize(("kind", "field", "payload"), list(_cases()))
def test_an_injection_in_any_field_is_refused_naming_the_record_and_the_field(kind, field, payload):
    for position in ("end", "middle"):
        record = dict(GOOD[kind])
        good = str(record[field])
        if position == "end":
            record[field] = good + payload
        else:  # inside the value: after the first character
            record[field] = good[:1] + payload + good[1:]
        problems = island_zone_problems(_records([record]), DOMAIN)
        assert problems, (position, record)
        assert any(p.startswith("dns_records[0]") and f" {field} " in p for p in problems), problems
        assert not any("\n" in p or "\r" in p for p in problems), problems
        with pytest.raises(ValueError, match="dns_records\\[0\\]"):
            island_zone_file(_records([record]), DOMAIN, NAMESERVERS)


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_a_txt_value_is_escaped_and_the_zone_holds_exactly_the_intended_records(payload):
    value = "before" + payload + ' \\ "after" \t\x00\x7f é'
    records = _records([{"name": "motd", "type": "TXT", "value": value}])
    assert island_zone_problems(records, DOMAIN) == []
    zone = _parse(island_zone_file(records, DOMAIN, NAMESERVERS))
    assert _contents(zone) == [("infra1.island.test.", "A"), ("motd.island.test.", "TXT")]
    (rdata,) = zone.find_rdataset("motd.island.test.", "TXT")
    assert b"".join(rdata.strings) == value.encode()


def test_a_txt_value_longer_than_255_bytes_is_split_into_character_strings():
    value = "x" * 300 + "é" * 200  # 700 bytes
    records = _records([{"name": "long", "type": "TXT", "value": value}])
    assert island_zone_problems(records, DOMAIN) == []
    zone = _parse(island_zone_file(records, DOMAIN, NAMESERVERS))
    (rdata,) = zone.find_rdataset("long.island.test.", "TXT")
    assert len(rdata.strings) == 3
    assert all(len(s) <= 255 for s in rdata.strings)
    assert b"".join(rdata.strings) == value.encode()


def test_every_valid_record_renders_and_parses_as_exactly_itself():
    records = _records(list(GOOD.values()))
    assert island_zone_problems(records, DOMAIN) == []
    zone = _parse(island_zone_file(records, DOMAIN, NAMESERVERS))
    assert _contents(zone) == [
        ("_ldap._tcp.island.test.", "SRV"),
        ("a.island.test.", "A"),
        ("infra1.island.test.", "A"),
        ("motd.island.test.", "TXT"),
        ("v6.island.test.", "AAAA"),
        ("www.island.test.", "CNAME"),
    ]
    assert zone.find_rdataset("a.island.test.", "A").ttl == 60
    (srv,) = zone.find_rdataset("_ldap._tcp.island.test.", "SRV")
    assert (srv.priority, srv.weight, srv.port, srv.target.to_text()) == (0, 5, 389, "infra1.island.test.")


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"name": "a", "type": "A", "value": "10.9.0.50", "ttl": -1}, "ttl"),
        ({"name": "a", "type": "A", "value": "10.9.0.50", "ttl": 2**31}, "ttl"),
        ({"name": "a", "type": "A", "value": "10.9.0.50", "ttl": "5m"}, "ttl"),
        ({"name": "a", "type": "A", "value": "10.9.0.50", "ttl": True}, "ttl"),
        ({"name": "a", "type": "A", "value": "10.9.0.50", "ttl": 1.5}, "ttl"),
        ({"name": "v6", "type": "AAAA", "value": "fe80::1%eth0", "ttl": 60}, "value"),
        ({"name": "s", "type": "SRV", "value": "0 5 70000 infra1.island.test"}, "value"),
        ({"name": "s", "type": "SRV", "value": "0 ² 389 infra1.island.test"}, "value"),
        ({"name": "s", "type": "SRV", "value": "0 5 389 bad_target$.island.test"}, "value"),
        ({"name": "c", "type": "CNAME", "value": "two..dots.island.test"}, "value"),
        ({"name": "bad name", "type": "A", "value": "10.9.0.50"}, "name"),
        ({"name": "a\n.island.test", "type": "A", "value": "10.9.0.50"}, "name"),
    ],
)
def test_out_of_range_or_malformed_fields_are_refused(record, field):
    problems = island_zone_problems(_records([record]), DOMAIN)
    assert any(p.startswith("dns_records[0]") and f" {field} " in p for p in problems), problems


def test_a_ttl_given_as_a_string_of_digits_renders_as_that_integer():
    records = _records([{"name": "a", "type": "A", "value": "10.9.0.50", "ttl": "120"}])
    assert island_zone_problems(records, DOMAIN) == []
    zone = _parse(island_zone_file(records, DOMAIN, NAMESERVERS))
    assert zone.find_rdataset("a.island.test.", "A").ttl == 120


@pytest.mark.parametrize(
    "entry",
    [
        {"zone": "corp.test\n", "servers": ["10.1.1.1"]},
        {"zone": "corp.test\n}\nevil.test", "servers": ["10.1.1.1"]},
        {"zone": "corp.test", "servers": ["fe80::1%eth0\n}\nevil.test:53 {"]},
        {"zone": "corp.test", "servers": ["fe80::1%eth0"]},
        {"zone": "corp.test", "servers": ["10.1.1.1:5\n3"]},
        {"zone": "corp.test", "servers": ["10.1.1.1:²"]},
        {"zone": "corp.test", "servers": ["10.1.1.1:70000"]},
    ],
)
def test_a_forwarded_zone_cannot_add_lines_to_the_corefile(entry):
    problems = island_forward_zone_problems([entry], DOMAIN)
    assert any(p.startswith("dns_forward_zones[0]") for p in problems), problems
    assert not any("\n" in p for p in problems), problems


def test_a_valid_forwarded_zone_passes():
    entry = {"zone": "corp.test", "servers": ["10.1.1.1", "10.1.1.2:5353", "fd00::1"]}
    assert island_forward_zone_problems([entry], DOMAIN) == []
