"""The verifier cannot be stalled, blown up or steered by what a bundle holds (issue 15, item 10).

- the lock, its signature and the allowed signers are read only as regular files, opened without
  blocking: a FIFO in their place is refused at once (each such check runs in a child process
  with a timeout, so a regression fails the test instead of hanging the run);
- a signed lock with YAML aliases (a "billion laughs") is refused before any value is quoted (the
  child runs under an address-space limit, so a regression fails instead of eating the machine);
- every name of the lock follows the builder's rules: a git repository named
  ``../../../etc/cron.d/evil`` is refused, whatever its signature;
- file names and values reach messages escaped (U+2028 included) and cut to a bounded length.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.island.installer.plugins.module_utils import island_sshsig
from ansible_collections.island.installer.plugins.module_utils.island_bundle import verify_bundle
from ansible_collections.island.installer.plugins.module_utils.island_bundle_build import SpecError, load_spec
from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import (
    LOCK_NAME,
    NAMESPACE,
    SIGNATURE_NAME,
    ContentError,
    LockError,
    dump_lock,
    escaped,
    load_lock,
)

from tests.support.bundle import make_signed_bundle

ROOT = Path(__file__).resolve().parents[4]
CHILD_TIMEOUT = 30
# Enough for Python, PyYAML and cryptography; far less than an alias bomb expands to.
CHILD_ADDRESS_SPACE = 1024 * 1024 * 1024

_VERIFY_IN_CHILD = """
import json, sys
from ansible_collections.island.installer.plugins.module_utils.island_bundle import verify_bundle
from ansible_collections.island.installer.plugins.module_utils.island_bundle_lock import BundleError
args = json.loads(sys.argv[1])
try:
    verify_bundle(args["root"], allowed_signers=args["signers"])
except BundleError as exc:
    print(json.dumps({"refused": type(exc).__name__, "message": str(exc)}))
else:
    print(json.dumps({"refused": None}))
"""


def _limit_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_ADDRESS_SPACE, CHILD_ADDRESS_SPACE))


def _verify_in_child(root: Path, signers: Path) -> dict:
    """verify_bundle in a child process, bounded in time and memory; its outcome as data."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "collections"), str(ROOT)]))
    arguments = json.dumps({"root": str(root), "signers": str(signers)})
    try:
        child = subprocess.run(
            [sys.executable, "-c", _VERIFY_IN_CHILD, arguments],
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
            env=env,
            preexec_fn=_limit_address_space,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"verification blocked for more than {CHILD_TIMEOUT} s")
    assert child.returncode == 0, f"verification crashed (memory?): {child.stderr[-2000:]}"
    return json.loads(child.stdout)


def _sign_raw(bundle, text: bytes) -> None:
    """Write ``text`` as the lock and sign it with the trusted key, bypassing the writer's checks (a
    signer's mistake, or a key in the wrong hands, is what the verifier must still survive)."""
    (bundle.root / LOCK_NAME).write_bytes(text)
    key = island_sshsig.load_signing_key(bundle.key.private_path)
    (bundle.root / SIGNATURE_NAME).write_bytes(island_sshsig.sign_bytes(text, key, NAMESPACE))


# --- nothing blocks ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [LOCK_NAME, SIGNATURE_NAME])
def test_a_fifo_as_the_lock_or_the_signature_is_refused_at_once(tmp_path, name):
    bundle = make_signed_bundle(tmp_path)
    (bundle.root / name).unlink()
    os.mkfifo(bundle.root / name)

    outcome = _verify_in_child(bundle.root, bundle.allowed_signers)

    assert outcome["refused"] in ("BundleError", "SignatureError")
    assert "not a regular file" in outcome["message"]
    assert name in outcome["message"]


def test_a_fifo_as_the_allowed_signers_file_is_refused_at_once(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    signers = tmp_path / "signers-fifo"
    os.mkfifo(signers)

    outcome = _verify_in_child(bundle.root, signers)

    assert outcome["refused"] == "SignatureError"
    assert "not a regular file" in outcome["message"]


def test_a_lock_that_is_a_symbolic_link_is_refused_even_to_an_identical_file(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    copy = tmp_path / "lock-copy.yml"
    copy.write_bytes((bundle.root / LOCK_NAME).read_bytes())
    (bundle.root / LOCK_NAME).unlink()
    (bundle.root / LOCK_NAME).symlink_to(copy)

    with pytest.raises(Exception, match="is a symbolic link"):
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)


# --- no alias bomb -------------------------------------------------------------------------------


def _alias_bomb(levels: int = 9) -> str:
    """``levels`` lists of nine aliases of the list before: 9**levels strings once expanded."""
    rows = ['  - &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        rows.append(f"  - &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    return "laughs:\n" + "\n".join(rows) + "\n"


def test_a_signed_lock_with_an_alias_bomb_is_refused_without_expanding_it(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    text = (bundle.root / LOCK_NAME).read_text()
    sha = bundle.lock["files"][0]["sha256"]
    # The bomb's top stands where a value is quoted in a message (a sha256 that is not one).
    text = _alias_bomb() + text.replace(f"sha256: {sha}", "sha256: *l8", 1)
    _sign_raw(bundle, text.encode())

    outcome = _verify_in_child(bundle.root, bundle.allowed_signers)

    assert outcome["refused"] == "LockError"
    assert "alias" in outcome["message"]
    assert len(outcome["message"]) < 2000


def test_the_builder_never_writes_an_anchor_even_for_shared_objects(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    lock = dict(bundle.lock)
    shared = ["bin/k3s"]
    lock["components"] = {
        "k3s": {"version": "v1.31.2+k3s1", "files": shared},
        "k3s-copy": {"version": "v1.31.2+k3s1", "files": shared},
    }

    text = dump_lock(lock)

    events = list(yaml.parse(text))
    assert not [e for e in events if isinstance(e, yaml.AliasEvent) or getattr(e, "anchor", None)]
    assert load_lock(text)["components"]["k3s-copy"]["files"] == ["bin/k3s"]


# --- every name by the builder's rules -----------------------------------------------------------


def test_a_signed_git_name_that_climbs_out_of_the_seed_directory_is_refused(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    lock = yaml.safe_load((bundle.root / LOCK_NAME).read_text())
    lock["git"][0]["name"] = "../../../etc/cron.d/evil"
    _sign_raw(bundle, yaml.safe_dump(lock, sort_keys=False).encode())

    with pytest.raises(LockError) as caught:
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    assert (
        "git[0] (../../../etc/cron.d/evil).name: '../../../etc/cron.d/evil' must be letters, digits"
        in str(caught.value)
    )


BAD_NAMES = {
    "git name with a slash": (lambda lock: lock["git"][0].update(name="a/b"), "git[0] (a/b).name"),
    "git name starting with a dot": (lambda lock: lock["git"][0].update(name=".app"), "git[0] (.app).name"),
    "git file not named after the repository": (
        lambda lock: lock["git"][0].update(name="other"),
        "git[0] (other).file: 'git/app.bundle' must be git/other.bundle",
    ),
    "refname with '..'": (
        lambda lock: lock["git"][0].update(refs={"refs/heads/../../x": "a" * 40}),
        "'refs/heads/../../x' must not contain '..'",
    ),
    "refname with a newline": (
        lambda lock: lock["git"][0].update(refs={"refs/heads/main\nevil": "a" * 40}),
        "'refs/heads/main\\nevil' must not contain spaces, control characters",
    ),
    "refname component ending in .lock": (
        lambda lock: lock["git"][0].update(refs={"refs/heads/main.lock": "a" * 40}),
        "end with '.lock'",
    ),
    "bundle version with a space": (
        lambda lock: lock["bundle"].update(version="1.0 final"),
        "bundle.version: must be letters and digits",
    ),
    "bundle name with a U+2028": (
        lambda lock: lock["bundle"].update(name="island\u2028evil"),
        "got 'island\\u2028evil'",
    ),
    "component version with a newline": (
        lambda lock: lock["components"]["k3s"].update(version="v1.31.2\n+k3s1"),
        "components.k3s.version: must be letters and digits",
    ),
    "image reference not normalised": (
        lambda lock: lock["images"][0].update(reference="alpine:3.20"),
        "'alpine:3.20' must be a normalised image reference",
    ),
    "image reference with a bad host": (
        lambda lock: lock["images"][0].update(reference="evil host.example/a/b:1"),
        "must be a normalised image reference",
    ),
    "media type with a header in it": (
        lambda lock: lock["images"][0].update(media_type="text/plain\r\nX-Evil: 1"),
        "media_type: must be a media type such as",
    ),
    "file path with a U+2028": (
        lambda lock: lock["files"][0].update(path="files/a\u2028b"),
        "'files/a\\u2028b' must not contain control characters or other non-printable ones",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_every_name_of_the_lock_follows_the_builders_rules(tmp_path, case):
    change, message = BAD_NAMES[case]
    lock = yaml.safe_load((make_signed_bundle(tmp_path).root / LOCK_NAME).read_text())
    change(lock)

    with pytest.raises(LockError) as caught:
        load_lock(yaml.safe_dump(lock, sort_keys=False).encode())

    assert message in str(caught.value)
    assert "\u2028" not in str(caught.value) and "\n" not in str(caught.value)


# --- messages stay readable and small ------------------------------------------------------------


def test_a_u2028_in_a_file_name_is_escaped_in_the_message(tmp_path):
    bundle = make_signed_bundle(tmp_path)
    (bundle.root / "files" / "a\u2028b").write_bytes(b"smuggled\n")

    with pytest.raises(ContentError) as caught:
        verify_bundle(bundle.root, allowed_signers=bundle.allowed_signers)

    assert "files/a\\u2028b: not listed in the lock" in str(caught.value)
    assert "\u2028" not in str(caught.value)
    # The structured problem keeps the real name, for a program to act on.
    assert caught.value.details()["problems"][0]["path"] == "files/a\u2028b"


def test_a_huge_value_is_quoted_cut_and_its_length_named(tmp_path):
    lock = yaml.safe_load((make_signed_bundle(tmp_path).root / LOCK_NAME).read_text())
    lock["files"][0]["sha256"] = "x" * 1_000_000

    with pytest.raises(LockError) as caught:
        load_lock(yaml.safe_dump(lock, sort_keys=False).encode())

    assert len(str(caught.value)) < 1000
    assert "(1000000 characters)" in str(caught.value)


def test_escaping_covers_every_non_printable_character():
    assert escaped("a\u2028b\u2029c\u0085d\x1be\u200bf") == "a\\u2028b\\u2029c\\x85d\\x1be\\u200bf"
    assert escaped("é ü 漢字") == "é ü 漢字"
    assert escaped("x" * 500, 10) == "xxxxxxxxxx... (500 characters)"


# --- the builder writes only what the verifier accepts ---------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"version": "1.0 final"}, "version: must be letters and digits"),
        ({"name": "island\u2028x"}, "name: must be letters and digits"),
        (
            {"components": {"K3S": {"version": "v1.0.0+k3s1"}}},
            "components.K3S: a component name is lowercase",
        ),
        ({"components": {"k3s": {"version": "v1 .0"}}}, "components.k3s.version: must be letters and digits"),
        ({"git": [{"name": "a" * 101, "url": "file:///x", "refs": ["main"]}]}, "at most 100"),
    ],
)
def test_the_builder_refuses_names_the_verifier_would_refuse(tmp_path, spec, message):
    data = {"name": "island", "version": "2026.11.0", **spec}
    (tmp_path / "spec.yml").write_text(yaml.safe_dump(data))

    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / "spec.yml")

    assert message in str(caught.value)
