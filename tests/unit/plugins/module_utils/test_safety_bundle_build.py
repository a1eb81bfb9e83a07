"""The bundle builder's inputs cannot steer git or the checksums (issue 15, item 17): `--` before
every URL git gets, no option-like URL or ref in the spec, and no checksum file over plain http
(anyone on the path could change the checksum along with the file) unless the spec pins a sha256."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_collections.island.installer.plugins.module_utils import island_bundle_build
from ansible_collections.island.installer.plugins.module_utils.island_bundle_build import (
    SpecError,
    load_spec,
    place_repository,
)

SHA = "0" * 64


def _spec(tmp_path, **data):
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump({"name": "x", "version": "1", **data}))
    return spec


def _problems(tmp_path, **data):
    with pytest.raises(SpecError) as caught:
        load_spec(_spec(tmp_path, **data))
    return caught.value.problems


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (
            {
                "components": {
                    "k3s": {
                        "version": "v1",
                        "files": [
                            {
                                "dest": "bin/k3s",
                                "url": "https://e.test/k3s",
                                "checksum_url": "http://e.test/sums",
                            }
                        ],
                    }
                }
            },
            "components.k3s.files[0].checksum_url",
        ),
        (
            {"files": [{"dest": "files/a", "url": "https://e.test/a", "checksum_url": "HTTP://e.test/sums"}]},
            "files[0].checksum_url",
        ),
        (
            {"image_lists": [{"url": "https://e.test/l", "checksum_url": "http://e.test/s"}]},
            "image_lists[0].checksum_url",
        ),
    ],
)
def test_a_checksum_file_over_plain_http_is_refused_naming_the_entry(tmp_path, data, where):
    problems = _problems(tmp_path, **data)
    matching = [p for p in problems if p.startswith(where)]
    assert matching, problems
    assert "plain http" in matching[0]
    assert "sha256" in matching[0]


def test_a_pinned_sha256_or_an_https_checksum_file_is_accepted(tmp_path):
    spec = load_spec(
        _spec(
            tmp_path,
            files=[
                {"dest": "files/a", "url": "http://e.test/a", "sha256": SHA},
                {"dest": "files/b", "url": "http://e.test/b", "checksum_url": "https://e.test/sums"},
                # the builder's own machine: nothing on a network path to tamper with
                {
                    "dest": "files/c",
                    "url": "http://127.0.0.1:8080/c",
                    "checksum_url": "http://127.0.0.1:8080/s",
                },
                {"dest": "files/d", "url": "file:///srv/d", "checksum_url": "file:///srv/sums"},
            ],
        )
    )
    assert len(spec["files"]) == 4


def test_a_checksum_url_that_is_not_a_url_is_refused(tmp_path):
    problems = _problems(
        tmp_path, files=[{"dest": "files/a", "url": "https://e.test/a", "checksum_url": "sums"}]
    )
    assert any(p.startswith("files[0].checksum_url") for p in problems), problems


def test_an_option_like_git_url_or_ref_is_refused(tmp_path):
    problems = _problems(
        tmp_path,
        git=[
            {"name": "a", "url": "--upload-pack=touch /tmp/pwned", "refs": ["main"]},
            {"name": "b", "url": "https://e.test/b.git", "refs": ["--output=/tmp/x"]},
        ],
    )
    assert any(p.startswith("git[0].url") for p in problems), problems
    assert any(p.startswith("git[1].refs") for p in problems), problems


def _git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_git_gets_double_dash_before_every_url_and_still_clones_and_fetches(tmp_path, monkeypatch):
    source = tmp_path / "source"
    source.mkdir()
    _git("init", "--quiet", "-b", "main", cwd=source)
    (source / "a").write_text("a\n")
    _git("add", "a", cwd=source)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "a", cwd=source)
    url = str(source)
    calls = []
    real_run = subprocess.run

    def recording_run(argv, *args, **kwargs):
        calls.append(list(argv))
        return real_run(argv, *args, **kwargs)

    monkeypatch.setattr(island_bundle_build.subprocess, "run", recording_run)
    repo = {"name": "cfg", "url": url, "refs": ["main"]}
    bundle, cache = tmp_path / "bundle", tmp_path / "cache"
    entry, state = place_repository(repo, bundle, cache)
    assert state == "written" and list(entry["refs"]) == ["refs/heads/main"]
    place_repository(repo, bundle, cache)  # the mirror exists: set-url and fetch
    with_url = [argv for argv in calls if url in argv]
    assert {argv[1] for argv in with_url} >= {"clone", "remote"}
    for argv in with_url:
        assert "--" in argv[: argv.index(url)], argv
    rev_parses = [argv for argv in calls if argv[1] == "rev-parse"]
    assert rev_parses and all("--end-of-options" in argv for argv in rev_parses)
    assert Path(bundle / entry["file"]).is_file()
