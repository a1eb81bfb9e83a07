"""Each test double as the one self-contained file it ships as.

A double's source (tests/doubles/<name>/<name>) imports the common base with one statement,
``from island_double import a, b`` (tests/doubles/_base/island_double.py). ``inline_base`` replaces
that statement with the base's body, so the result needs nothing beside it: the test bundle carries
it as the upstream binary (tests/bundle/testbundle.py), and the launcher runs the same text, written
to ``.cache/doubles/<name>`` (``built_double``). Pure text, no timestamps: the same sources always
give the same bytes, so a rebuilt bundle is byte-identical.
"""

from __future__ import annotations

import ast
import os
import tempfile
from pathlib import Path

from tests.support import ROOT

DOUBLES = ROOT / "tests" / "doubles"
BASE = DOUBLES / "_base" / "island_double.py"
BUILT = ROOT / ".cache" / "doubles"
IMPORT = b"from island_double import "


class BuildError(RuntimeError):
    """A double's source does not import the base as build.py expects."""


def _base_body() -> bytes:
    """island_double.py without its module docstring, framed so a reader of a shipped double sees
    where it came from."""
    text = BASE.read_bytes()
    docstring = ast.parse(text).body[0]
    lines = text.splitlines(keepends=True)[docstring.end_lineno :]
    return (
        b"# ---- inlined from tests/doubles/_base/island_double.py (tests/support/doubles/build.py) ----\n"
        + b"".join(lines).strip(b"\n")
        + b"\n# ---- end of tests/doubles/_base/island_double.py ----\n"
    )


def inline_base(script: bytes, where: str) -> bytes:
    """``script`` with its one ``from island_double import ...`` statement replaced by the base.
    Every imported name must be defined in the base; ``where`` names the source in errors."""
    lines = script.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith(IMPORT)]
    if len(starts) != 1:
        raise BuildError(
            f"{where}: {len(starts)} lines start with {IMPORT.decode()!r}, expected exactly one "
            "(the double's import of tests/doubles/_base/island_double.py)"
        )
    start = end = starts[0]
    if lines[start].rstrip().endswith(b"("):
        while not lines[end].startswith(b")"):
            end += 1
            if end == len(lines):
                raise BuildError(f"{where}: the import of island_double has no closing parenthesis")
    statement = b"".join(lines[start : end + 1]).decode()
    imported = ast.parse(statement).body[0]
    defined = {
        target.id if isinstance(target, ast.Name) else target.name
        for node in ast.parse(BASE.read_bytes()).body
        for target in (node.targets if isinstance(node, ast.Assign) else [node])
        if isinstance(target, ast.Name | ast.FunctionDef | ast.ClassDef)
    }
    for alias in imported.names:
        if alias.asname or alias.name not in defined:
            raise BuildError(
                f"{where}: imports {alias.name!r}{' as ' + repr(alias.asname) if alias.asname else ''} from "
                "island_double; import only names the base defines, without 'as'"
            )
    return b"".join([*lines[:start], _base_body(), *lines[end + 1 :]])


def double_source(name: str) -> bytes:
    """The source of the double ``name`` (tests/doubles/<name>/<name>), base not inlined."""
    return (DOUBLES / name / name).read_bytes()


def build_double(name: str) -> bytes:
    """The double ``name`` as it ships: its source with the base inlined."""
    return inline_base(double_source(name), f"tests/doubles/{name}/{name}")


def built_double(name: str) -> Path:
    """``.cache/doubles/<name>``: the built double, rewritten (atomically, so concurrent test runs
    never see half a file) only when the sources changed; executable, as a binary is."""
    content = build_double(name)
    target = BUILT / name
    if target.is_file() and target.read_bytes() == content:
        return target
    BUILT.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=BUILT)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, 0o755)  # noqa: S103 - a binary's mode: the containers' users run it
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
