"""Issue 13 item 8: a missing system library of Qt's X11 plugin is found before Qt starts, with one apt line."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from app import qt_libraries

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("ldd") is None,
                                reason="the X11 check is for Linux (with ldd)")


def plugin_needing(tmp_path: Path, rename: dict[bytes, bytes]) -> Path:
    """A copy of the real libqxcb.so whose dependency names are changed (same length), as if they were missing."""
    plugin = qt_libraries.xcb_plugin()
    assert plugin is not None, "PySide6 ships libqxcb.so"
    data = plugin.read_bytes()
    for old, new in rename.items():
        assert len(old) == len(new) and old in data
        data = data.replace(old, new)
    folder = tmp_path / "plugins" / "platforms"
    folder.mkdir(parents=True)
    shutil.copytree(plugin.parents[2] / "lib", tmp_path / "lib")  # its $ORIGIN/../../lib for the Qt libraries
    copy = folder / "libqxcb.so"
    copy.write_bytes(data)
    return copy


def test_a_missing_library_of_the_real_plugin_is_named(tmp_path):
    copy = plugin_needing(tmp_path, {b"libxkbcommon-x11.so.0": b"libxkbcommon-x99.so.0"})
    assert "libxkbcommon-x99.so.0" in qt_libraries.missing_libraries(copy)
    assert not any(name.startswith("libQt6") for name in qt_libraries.missing_libraries(copy))


def test_the_message_is_one_apt_line_for_all_missing_libraries():
    message = qt_libraries.missing_message(["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0"])
    apt = [line.strip() for line in message.splitlines() if "apt" in line]
    assert apt == ["sudo apt install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1"]
    assert "docfocus ask" in message  # what still works


def test_the_check_only_applies_to_x11():
    assert not qt_libraries.uses_xcb({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"})
    assert not qt_libraries.uses_xcb({"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"})
    assert qt_libraries.uses_xcb({"DISPLAY": ":0"})
    assert qt_libraries.uses_xcb({"QT_QPA_PLATFORM": "xcb"})


def test_docfocus_prints_the_apt_line_instead_of_starting_qt(tmp_path, monkeypatch, capsys):
    import app.main

    copy = plugin_needing(tmp_path, {b"libxcb-icccm.so.4": b"libxcb-icccX.so.4"})
    monkeypatch.setattr(qt_libraries, "xcb_plugin", lambda: copy)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setitem(qt_libraries.DEBIAN_PACKAGES, "libxcb-icccX.so.4", "libxcb-icccm4")
    assert app.main.main([]) == 1
    err = capsys.readouterr().err
    assert "libxcb-icccX.so.4" in err and "sudo apt install libxcb-icccm4" in err


def test_readme_quick_start_names_the_apt_line():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert qt_libraries.apt_line(qt_libraries.QUICK_START_PACKAGES) in quick_start
