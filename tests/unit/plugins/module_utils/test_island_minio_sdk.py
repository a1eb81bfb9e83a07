"""The message both MinIO modules (island_minio, island_minio_bucket_backup) fail with when the minio
SDK cannot be imported by the interpreter that runs them."""

from __future__ import annotations

import sys

from ansible_collections.island.installer.plugins.module_utils import island_minio


def test_an_importable_sdk_is_not_reported():
    assert island_minio.MINIO_IMPORT_ERROR is None
    assert island_minio.sdk_missing() is None


def test_a_missing_sdk_names_the_interpreter_the_pinned_version_and_what_to_do(monkeypatch):
    monkeypatch.setattr(island_minio, "MINIO_IMPORT_ERROR", ImportError("No module named 'minio'"))
    missing = island_minio.sdk_missing()
    assert set(missing) == {"msg"}
    assert sys.executable in missing["msg"]
    assert "minio==7.2.20" in missing["msg"] and "No module named 'minio'" in missing["msg"]
    assert "ansible_python_interpreter" in missing["msg"]


def test_both_modules_report_it_through_the_one_helper():
    from ansible_collections.island.installer.plugins.modules import island_minio as module
    from ansible_collections.island.installer.plugins.modules import island_minio_bucket_backup as backup

    assert module.sdk_missing is island_minio.sdk_missing
    assert backup.sdk_missing is island_minio.sdk_missing
