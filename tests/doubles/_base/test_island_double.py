"""The doubles' common base, and the build that inlines it into each double (one shipped file)."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.doubles import SYSTEM_PYTHON, double_path
from tests.support.doubles.build import BuildError, build_double, inline_base

NAMES = ("coredns", "gitea", "k3s", "minio")
SCRIPT = (
    b'#!/usr/bin/python3\n"""doc"""\nimport sys\n\nfrom island_double import go_parse_duration\n\nX = 1\n'
)


def _run(code: str) -> subprocess.CompletedProcess:
    built = inline_base(
        b"import sys\n\nfrom island_double import go_parse_duration, go_parse_bool\n" + code.encode(), "t"
    )
    return subprocess.run([SYSTEM_PYTHON, "-c", built.decode()], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("name", NAMES)
def test_every_double_is_built_into_one_file_that_needs_nothing_beside_it(name, tmp_path):
    built = build_double(name)
    assert b"from island_double import" not in built
    assert built == build_double(name)  # text only: the same bytes on every build
    alone = tmp_path / name  # nothing else in this directory
    alone.write_bytes(built)
    version = "-version" if name == "coredns" else "--version"
    ran = subprocess.run([SYSTEM_PYTHON, str(alone), version], capture_output=True, text=True, check=False)
    assert ran.returncode == 0, ran.stderr
    assert double_path(name).read_bytes() == built  # the launcher runs what the bundle ships


def test_the_import_line_is_replaced_by_the_base_in_place():
    built = inline_base(SCRIPT, "t")
    head, rest = built.split(b"import sys\n\n", 1)
    assert head == b'#!/usr/bin/python3\n"""doc"""\n'
    assert rest.startswith(b"# ---- inlined from tests/doubles/_base/island_double.py")
    assert rest.endswith(b"# ---- end of tests/doubles/_base/island_double.py ----\n\nX = 1\n")
    assert b"def go_parse_duration(" in rest


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (b"X = 1\n", r"t: 0 lines start with 'from island_double import ', expected exactly one"),
        (SCRIPT + SCRIPT, r"t: 2 lines start with"),
        (b"from island_double import go_parse_duration as d\n", r"imports 'go_parse_duration' as 'd'"),
        (b"from island_double import no_such_thing\n", r"imports 'no_such_thing' from island_double"),
        (b"from island_double import (\n    go_quote,\n", r"has no closing parenthesis"),
    ],
)
def test_a_source_that_does_not_import_the_base_as_expected_stops_the_build(script, message):
    with pytest.raises(BuildError, match=message):
        inline_base(script, "t")


def test_a_parenthesised_import_is_replaced_whole():
    built = inline_base(b"from island_double import (\n    go_quote,\n    go_parse_bool,\n)\nY = 2\n", "t")
    assert b"go_quote,\n" not in built
    assert built.endswith(b"----\nY = 2\n")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("-0", 0.0), ("1.5h", 5400.0), ("1m30s", 90.0), (".5s", 0.5), ("1.s", 1.0), ("3μs", 3e-6),
     ("500ms", 0.5), ("-2s", -2.0)],
)  # fmt: skip
def test_durations_parse_as_go_time_parse_duration(text, seconds):
    ran = _run(f"print(repr(go_parse_duration({text!r})))")
    assert ran.returncode == 0, ran.stderr
    assert float(ran.stdout) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "error"),
    [("", 'time: invalid duration ""'), ("1", 'time: missing unit in duration "1"'),
     ("3d", 'time: unknown unit "d" in duration "3d"'), (".s", 'time: invalid duration ".s"')],
)  # fmt: skip
def test_a_bad_duration_is_refused_with_go_wording(text, error):
    ran = _run(f"""
try:
    go_parse_duration({text!r})
except ValueError as exc:
    print(exc)
""")
    assert ran.stdout.strip() == error


def test_booleans_parse_as_go_strconv_parse_bool():
    ran = _run(
        "print([go_parse_bool(t) for t in ('1', 't', 'TRUE', 'True', '0', 'F', 'false', 'yes', 'tRUE')])"
    )
    assert ran.stdout.strip() == "[True, True, True, True, False, False, False, None, None]"
