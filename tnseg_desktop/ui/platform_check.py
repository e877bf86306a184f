"""Before the window opens on Linux: is there a display, and can Qt's xcb platform plugin load?

Without these checks Qt aborts (exit 134) with "no Qt platform plugin could
be initialized", which names neither the cause nor the fix. Here the plugin's
own shared-library dependencies are read from its ELF header and each is
loaded the way Qt's loader would (``dlopen``: LD_LIBRARY_PATH, the ld.so
cache, the system folders), so the message names exactly the libraries this
machine lacks and the command that installs them. Nothing here imports Qt.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import struct
import sys
from pathlib import Path

# shared library -> the Debian/Ubuntu package that ships it (the libraries Qt 6's xcb plugin links)
DEBIAN_PACKAGES = {
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}

_DT_NEEDED, _DT_STRTAB, _SHT_DYNAMIC = 1, 5, 6
_CANNOT_OPEN = re.compile(r"([^\s:/]+\.so[.\d]*): cannot open shared object file")


def xcb_plugin() -> Path | None:
    """PySide6's libqxcb.so, found without importing Qt (None when PySide6 or the plugin is absent)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(list(spec.submodule_search_locations)[0]) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.is_file() else None


def needed_libraries(path: Path) -> list[str]:
    """The DT_NEEDED entries (shared libraries it links) of a 64-bit little-endian ELF file."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names: list[str] = []
    for _, sh_type, _, _, offset, size, link, _, _, entsize in sections:
        if sh_type != _SHT_DYNAMIC:
            continue
        strtab_offset = sections[link][4]
        for k in range(size // (entsize or 16)):
            tag, value = struct.unpack_from("<qQ", data, offset + k * (entsize or 16))
            if tag == _DT_NEEDED:
                end = data.index(b"\0", strtab_offset + value)
                names.append(data[strtab_offset + value:end].decode("ascii", "replace"))
            elif tag == 0:
                break
    return names


def _unloadable(name: str) -> str | None:
    """None when ``name`` loads; else the library that is missing (it or one it needs)."""
    try:
        ctypes.CDLL(name)
    except OSError as exc:
        found = _CANNOT_OPEN.search(str(exc))
        return found.group(1) if found else name
    return None


def missing_xcb_libraries(plugin: Path | None = None) -> list[str]:
    """System libraries the xcb platform plugin needs that do not load here, in link order."""
    plugin = plugin if plugin is not None else xcb_plugin()
    if plugin is None:
        return []
    qt_lib = plugin.parents[2] / "lib"
    missing: list[str] = []
    seen: set[str] = set()
    todo = needed_libraries(plugin)
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if (qt_lib / name).is_file():
            todo.extend(needed_libraries(qt_lib / name))  # Qt's own libraries ship with PySide6; theirs may not
            continue
        bad = _unloadable(name)
        if bad is not None and bad not in missing:
            missing.append(bad)
    return missing


def install_hint(libraries: list[str]) -> str:
    packages = sorted({DEBIAN_PACKAGES[n] for n in libraries if n in DEBIAN_PACKAGES})
    unknown = [n for n in libraries if n not in DEBIAN_PACKAGES]
    hint = f"sudo apt install {' '.join(packages)}" if packages else ""
    if unknown:
        hint += ("; " if hint else "") + "also install the package that provides " + ", ".join(unknown)
    return hint


def display_problem() -> str | None:
    """One line saying why the window cannot open on this machine, or None when it can try.

    Only Linux is checked; an explicit ``QT_QPA_PLATFORM`` other than xcb is the user's choice.
    """
    if not sys.platform.startswith("linux"):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0].strip()
    if platform and platform != "xcb":
        return None
    has_x11, has_wayland = bool(os.environ.get("DISPLAY")), bool(os.environ.get("WAYLAND_DISPLAY"))
    if not platform and not has_x11 and not has_wayland:
        missing = missing_xcb_libraries()
        extra = f" (the window will also need libraries this machine lacks: {install_hint(missing)})" if missing else ""
        return ("No graphical display was found (DISPLAY and WAYLAND_DISPLAY are not set); run it in a desktop session, "
                f"or use --screenshot OUT.png to render the window to a file{extra}.")
    if platform == "xcb" or (has_x11 and not has_wayland):  # in a Wayland session Qt uses its Wayland plugin
        missing = missing_xcb_libraries()
        if missing:
            return (f"The window cannot open: Qt's X11 (xcb) platform needs {', '.join(missing)}, missing on this machine; "
                    f"install with: {install_hint(missing)}")
    return None
