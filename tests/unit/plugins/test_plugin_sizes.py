"""No file under plugins/ grows past 700 lines: a file that does is split along its seams (as
island_pki into CA, signing and host side, island_minio into state, seed checks and errors), so a
host receives only the code its module needs and a reader finds one concern per file."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[3]
LIMIT = 700


def test_every_plugin_file_stays_within_the_limit():
    sizes = {
        path.relative_to(ROOT).as_posix(): len(path.read_text().splitlines())
        for path in (ROOT / "plugins").rglob("*.py")
    }
    assert sizes, "no plugin file found"
    assert {name: n for name, n in sizes.items() if n > LIMIT} == {}
