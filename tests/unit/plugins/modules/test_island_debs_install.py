"""island_debs_install: the bundle's packages installed with no package source, decided on the host.

The host's dpkg database is this machine's (Debian's real dpkg-query); apt-get is a stand-in on PATH
that records its arguments, so no test installs anything here. The island scenario installs the
journal's real packages from the bundle in its containers.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from ansible_collections.island.installer.plugins.modules import island_debs_install

from tests.support.modules import ModuleFail, run_module

pytestmark = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs Debian's dpkg-query")


def _installed(package):
    return subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def apt(tmp_path, monkeypatch):
    """An apt-get on PATH that records its argv and exits with $FAKE_APT_RC (0 by default)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    script = bin_dir / "apt-get"
    script.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\n'
        'echo "E: Unmet dependencies: libfoo (>= 2) but 1 is to be installed" >&2\n'
        'exit "${FAKE_APT_RC:-0}"\n'
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def _args(debs, tmp_path):
    return {
        "debs": debs,
        "sources_list": str(tmp_path / "sources.list"),
        "sources_parts": str(tmp_path / "parts"),
    }


def test_a_host_with_every_package_at_the_bundles_version_runs_no_apt(tmp_path, apt):
    debs = [{"package": "coreutils", "version": _installed("coreutils"), "dest": "/x/coreutils.deb"}]
    result = run_module(island_debs_install, _args(debs, tmp_path))
    assert result["changed"] is False and result["pending"] == []
    assert not apt.exists()


def test_check_mode_names_what_apt_would_install_and_runs_nothing(tmp_path, apt):
    debs = [
        {"package": "coreutils", "version": "0:1.0-island", "dest": "/x/coreutils.deb"},
        {"package": "island-no-such-package", "version": "1.0", "dest": "/x/none.deb"},
    ]
    result = run_module(island_debs_install, _args(debs, tmp_path), check_mode=True)
    assert result["changed"] is True
    assert result["pending"] == [
        f"coreutils 0:1.0-island (installed: {_installed('coreutils')})",
        "island-no-such-package 1.0 (not installed)",
    ]
    assert "apt would install from the bundle" in result["msg"]
    assert not apt.exists()


def test_apt_gets_only_the_files_and_an_empty_source_list_and_its_refusal_names_the_packages(
    tmp_path, apt, monkeypatch
):
    monkeypatch.setenv("FAKE_APT_RC", "100")
    deb = "/var/lib/island/debs/x_1.0_all.deb"
    debs = [{"package": "island-no-such-package", "version": "1.0", "dest": deb}]
    with pytest.raises(ModuleFail) as failed:
        run_module(island_debs_install, _args(debs, tmp_path))
    msg = failed.value.args[0]["msg"]
    assert "island-no-such-package 1.0 (not installed)" in msg and "Unmet dependencies" in msg
    argv = apt.read_text()
    assert f"Dir::Etc::SourceList={tmp_path / 'sources.list'}" in argv
    assert f"Dir::Etc::SourceParts={tmp_path / 'parts'}" in argv
    assert argv.strip().endswith(deb)


def test_apt_that_succeeds_without_installing_the_bundles_version_is_a_failure(tmp_path, apt):
    debs = [{"package": "island-no-such-package", "version": "1.0", "dest": "/x/none.deb"}]
    with pytest.raises(ModuleFail, match=r"not at the bundle's version: island-no-such-package 1\.0"):
        run_module(island_debs_install, _args(debs, tmp_path))


def test_an_entry_without_its_file_is_refused_before_anything_runs(tmp_path, apt):
    with pytest.raises(ModuleFail, match="an entry lacks dest"):
        run_module(island_debs_install, _args([{"package": "coreutils", "version": "1"}], tmp_path))
    assert not apt.exists()
