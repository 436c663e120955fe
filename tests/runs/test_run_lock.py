"""The run-folder lock: one writer, the holder named, a dead holder's lock taken over."""

from __future__ import annotations

import os

import pytest

from sparsgd.runs import RunDir, RunDirError, RunLock
from sparsgd.runs.run_dir import LOCK_FILE


def test_second_writer_refused_naming_the_holder(tmp_path, lock_holder):
    folder = tmp_path / "run"
    child = lock_holder(folder)  # another process (tests/conftest.py)
    with pytest.raises(RunDirError, match=rf"in use by process {child.pid} "):
        RunLock(folder).acquire()


def test_dead_holder_taken_over(tmp_path, caplog, lock_holder):
    folder = tmp_path / "run"
    child = lock_holder(folder)
    child.kill()
    child.join()
    with RunLock(folder) as lock:
        assert lock.held
        assert (folder / LOCK_FILE).read_text().strip() == str(os.getpid())
    assert f"left by process {child.pid}, which no longer runs" in caplog.text


def test_same_process_second_lock_refused(tmp_path):
    refused = pytest.raises(RunDirError, match=rf"in use by process {os.getpid()} ")
    with RunLock(tmp_path / "run"), refused:
        RunLock(tmp_path / "run").acquire()


def test_created_folder_removed_when_left_empty(tmp_path):
    folder = tmp_path / "new"
    with RunLock(folder):
        assert folder.is_dir()
    assert not folder.exists()
    with RunLock(folder):
        RunDir(folder).write_config({"a": 1})  # a fresh run ignores the lock file
    assert (folder / "config.json").is_file() and (folder / LOCK_FILE).is_file()


def test_not_a_directory_refused(tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(RunDirError, match="is not a directory"):
        RunLock(file).acquire()
