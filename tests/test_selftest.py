"""``docfocus --self-test`` from the source install (CI also runs it from the frozen bundle)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT


def self_test(env_extra: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen", **env_extra)
    return subprocess.run([sys.executable, "-m", "app", "--self-test"], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.model
def test_self_test_passes_from_source(bundled_dir):
    # The session's converted model stands in for a packaged one, so the test does not convert again.
    result = self_test({"DOCFOCUS_BUNDLED_MODEL": str(bundled_dir)})
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()
    assert len(summary) == 1, result.stdout
    line = summary[0]
    assert line.startswith("DocFocus self-test OK: ")
    assert "38" in line and "cited p. 2" in line and "DGA answer" in line and "opened and closed" in line
    assert "cache hit" in line


def test_self_test_fails_with_the_reason(tmp_path):
    result = self_test({"DOCFOCUS_BUNDLED_MODEL": str(tmp_path)}, timeout=300)  # not a converted model
    assert result.returncode == 1
    assert result.stdout.startswith("DocFocus self-test FAILED at loading the bundled model: ")
    assert "DOCFOCUS_BUNDLED_MODEL" in result.stdout
