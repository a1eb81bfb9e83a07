"""Each test double as the one self-contained file it ships as.

A double's source (tests/doubles/<name>/<name>) imports the common base with one statement,
``from island_double import a, b`` (tests/doubles/_base/island_double.py). ``inline_base`` replaces
that statement with the base's body, so the result needs nothing beside it: the test bundle carries
it as the upstream binary (tests/bundle/testbundle.py), and the launcher runs the same text, written
to ``.cache/doubles/<name>`` (``built_double``). Pure text, no timestamps: the same sources always
give the same bytes, so a rebuilt bundle is byte-identical.

The k3s double is one more step away from text: k3s carries upstream kubectl and runs it for
``k3s kubectl``, so ``package`` makes the k3s double a Python zip application (``#!/usr/bin/python3``,
then a zip of ``__main__.py``, the real kubectl and its sha256), with fixed timestamps so the bytes
still depend on the inputs alone. The kubectl comes from ``.cache/kubectl/kubectl``, fetched once by
tools/lib/setup.sh (island_setup_kubectl) as tests/doubles/k3s/kubectl.pin says.
"""

from __future__ import annotations

import ast
import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

from tests.support import ROOT

DOUBLES = ROOT / "tests" / "doubles"
BASE = DOUBLES / "_base" / "island_double.py"
BUILT = ROOT / ".cache" / "doubles"
KUBECTL = ROOT / ".cache" / "kubectl" / "kubectl"
KUBECTL_PIN = DOUBLES / "k3s" / "kubectl.pin"
CARRIES_KUBECTL = ("k3s",)
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


def kubectl_binary() -> bytes:
    """The real kubectl of tests/doubles/k3s/kubectl.pin, as tools/lib/setup.sh fetched it."""
    pin = dict(
        line.split("=", 1)
        for line in KUBECTL_PIN.read_text().splitlines()
        if line and not line.startswith("#")
    )
    if not KUBECTL.is_file():
        raise BuildError(
            f"{KUBECTL} is missing: the k3s double carries the real kubectl; fetch it with "
            "`bash -c 'source tools/lib/setup.sh && island_setup_kubectl'` (tools/test.sh does it)"
        )
    data = KUBECTL.read_bytes()
    if hashlib.sha256(data).hexdigest() != pin["kubectl_sha256"]:
        raise BuildError(f"{KUBECTL} is not the kubectl of {KUBECTL_PIN}; remove it and fetch it again")
    return data


def package(name: str, script: bytes) -> bytes:
    """The built script as it ships: itself, or for k3s the zip application carrying kubectl."""
    if name not in CARRIES_KUBECTL:
        return script
    kubectl = kubectl_binary()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, data, mode in (
            ("__main__.py", script, 0o644),
            ("kubectl", kubectl, 0o755),
            ("kubectl.sha256", hashlib.sha256(kubectl).hexdigest().encode() + b"\n", 0o644),
        ):
            info = zipfile.ZipInfo(member, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return b"#!/usr/bin/python3\n" + buffer.getvalue()


def build_double(name: str) -> bytes:
    """The double ``name`` as it ships: its source with the base inlined (packaged: ``package``)."""
    return package(name, inline_base(double_source(name), f"tests/doubles/{name}/{name}"))


def built_double(name: str) -> Path:
    """``.cache/doubles/<name>``: the built double, rewritten (atomically, so concurrent test runs
    never see half a file) only when the sources changed; executable, as a binary is. The inputs'
    digest is kept beside it, so an unchanged double is not packaged again."""
    inputs = hashlib.sha256(inline_base(double_source(name), name))
    if name in CARRIES_KUBECTL:
        inputs.update(KUBECTL_PIN.read_bytes())
    target, stamp = BUILT / name, BUILT / f".{name}.inputs"
    if target.is_file() and stamp.is_file() and stamp.read_text() == inputs.hexdigest():
        return target
    content = build_double(name)
    BUILT.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=BUILT)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, 0o755)  # noqa: S103 - a binary's mode: the containers' users run it
        os.replace(tmp, target)
        stamp.write_text(inputs.hexdigest())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
