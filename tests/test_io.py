"""jscgc.io: atomic writes leave the old file or the new one, and results name the commit that made them."""
import shutil
import subprocess

import pytest

from jscgc.io import atomic_write_text, source_version

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "r.txt"
    atomic_write_text(path, "old")
    with pytest.raises(TypeError):
        atomic_write_text(path, 3)          # not text: the write fails after the temporary is made
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.txt"]


@needs_git
def test_source_version_is_the_head_commit_and_sees_edits(tmp_path):
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True,  # noqa: E731
                                    text=True).stdout.strip()
    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    assert source_version(tmp_path) == {"commit": git("rev-parse", "HEAD"), "dirty": False}
    (tmp_path / "a.py").write_text("x = 2\n")
    assert source_version(tmp_path)["dirty"] is True
    (tmp_path / "new.py").write_text("")          # an untracked file is not an edit of the code
    git("checkout", "-q", "a.py")
    assert source_version(tmp_path)["dirty"] is False


def test_source_version_outside_a_checkout_is_none(tmp_path):
    assert source_version(tmp_path / "nowhere") is None
