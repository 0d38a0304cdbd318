"""Before the window starts on Linux/X11: are the system libraries that Qt's xcb platform plugin needs there?

Qt's own message for a missing one names only ``libxcb-cursor0`` and aborts, while a stock Debian or
Ubuntu may also lack ``libxcb-icccm4`` and ``libxcb-keysyms1``. DocFocus asks the dynamic loader (``ldd``)
which of the plugin's libraries (and its Qt library's) cannot be found and prints one apt line that
installs them all. No Qt import here: the check runs before Qt is loaded, from the source tree and from
the packaged app (whose plugin sits in the bundle).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# Shared library name -> Debian/Ubuntu package, for every system library libqxcb.so and libQt6XcbQpa.so.6 load.
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-image.so.0": "libxcb-image0",
    "libxcb-util.so.1": "libxcb-util1", "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0", "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xkb.so.1": "libxcb-xkb1", "libxcb.so.1": "libxcb1",
    "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11-xcb.so.1": "libx11-xcb1", "libX11.so.6": "libx11-6", "libGL.so.1": "libgl1", "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1", "libfreetype.so.6": "libfreetype6", "libdbus-1.so.3": "libdbus-1-3",
}
# What the README's Quick start installs: the xcb helpers a desktop without Qt 6 apps often lacks.
QUICK_START_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0",
                        "libxcb-render-util0", "libxcb-shape0", "libxcb-randr0", "libxcb-xkb1",
                        "libxkbcommon-x11-0")


# Libraries that come with PySide6 (and the bundle) themselves: never the user's to install.
QT_OWN = ("libQt6", "libicu", "libpyside", "libshiboken")


def apt_line(packages) -> str:
    return "sudo apt install " + " ".join(sorted(set(packages), key=lambda p: (p not in QUICK_START_PACKAGES, p)))


def xcb_plugin() -> Path | None:
    """libqxcb.so of the PySide6 that will run (in the bundle when frozen), without importing Qt."""
    import importlib.util

    roots = [Path(getattr(sys, "_MEIPASS", ""))] if getattr(sys, "frozen", False) else []
    spec = importlib.util.find_spec("PySide6")
    roots += [Path(location) for location in (spec.submodule_search_locations or [])] if spec else []
    for root in roots:
        for candidate in (root / "PySide6" / "Qt" / "plugins" / "platforms" / "libqxcb.so",
                          root / "Qt" / "plugins" / "platforms" / "libqxcb.so"):
            if candidate.is_file():
                return candidate
    return None


def missing_libraries(binary: Path) -> list[str]:
    """Shared libraries that ``binary`` (or a library it loads) needs and the loader cannot find."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []  # no way to ask: let Qt speak for itself
    env = dict(os.environ)
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:  # the packaged app's own libraries are found there
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [bundle, env.get("LD_LIBRARY_PATH")]))
    try:
        output = subprocess.run([ldd, str(binary)], capture_output=True, text=True, timeout=20, env=env).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    missing = []
    for line in output.splitlines():
        name, _, where = line.strip().partition(" => ")
        if where.strip() == "not found" and name not in missing and not name.startswith(QT_OWN):
            missing.append(name)
    return missing


def uses_xcb(environ=os.environ) -> bool:
    """Whether Qt would start its X11 (xcb) platform: Linux, an X display, no other platform chosen."""
    if not sys.platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if chosen:
        return chosen.split(":")[0].split(";")[0] == "xcb"
    return bool(environ.get("DISPLAY")) and not environ.get("WAYLAND_DISPLAY")


def missing_message(missing: list[str]) -> str:
    packages = [DEBIAN_PACKAGES[name] for name in missing if name in DEBIAN_PACKAGES]
    unknown = [name for name in missing if name not in DEBIAN_PACKAGES]
    lines = [f"DocFocus cannot open its window: the system libraries {', '.join(missing)} are missing "
             "(Qt needs them on X11).", "Install them with:", f"  {apt_line(packages)}" if packages else ""]
    if unknown:
        lines.append(f"(and the packages that provide {', '.join(unknown)})")
    lines.append("The command line works without them: docfocus ask FILE.pdf \"question\".")
    return "\n".join(line for line in lines if line)


def check_window_libraries(plugin: Path | None = None, environ=os.environ) -> str | None:
    """The message to print instead of starting Qt, or None when the window can start (or it is not X11)."""
    if not uses_xcb(environ):
        return None
    plugin = plugin or xcb_plugin()
    if plugin is None:
        return None
    missing = missing_libraries(plugin)
    return missing_message(missing) if missing else None
