"""Download folders do not pile up on a long-running server: old ones go when a new one is made."""

import os
import time

from ui import scratch


def test_old_download_folders_are_pruned_and_new_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(scratch, "scratch_root", lambda: tmp_path / "downloads")
    old = scratch.download_dir("score-")
    (old / "report.json").write_text("{}")
    hours_ago = time.time() - 2 * scratch.MAX_AGE_S
    os.utime(old, (hours_ago, hours_ago))
    recent = scratch.download_dir("evaluate-")
    newest = scratch.download_dir("votes-")
    assert not old.exists()
    assert recent.is_dir() and newest.is_dir() and recent != newest
    assert recent.parent == tmp_path / "downloads" and (recent.stat().st_mode & 0o777) == 0o700


def test_prune_counts_and_ignores_files_and_a_missing_root(tmp_path):
    assert scratch.prune(tmp_path / "absent") == 0
    (tmp_path / "loose.txt").write_text("x")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert scratch.prune(tmp_path, max_age_s=60, now=time.time() + 120) == 2
    assert (tmp_path / "loose.txt").exists() and not (tmp_path / "a").exists()
