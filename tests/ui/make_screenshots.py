"""Render the README's viewer screenshot: ``python tests/ui/make_screenshots.py [DICOM] [OUT.png]``.

Defaults: ../shared/data/dicom/US-PAL-8-10x-echo.dcm → resources/screenshots/viewer.png.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tnseg_desktop.ui.app import get_application, render_screenshot  # noqa: E402
from tnseg_desktop.ui.main_window import MainWindow  # noqa: E402

DEFAULT_INPUT = REPO.parent / "shared" / "data" / "dicom" / "US-PAL-8-10x-echo.dcm"
DEFAULT_OUTPUT = REPO / "resources" / "screenshots" / "viewer.png"


def main(argv: list[str]) -> int:
    source = Path(argv[0]) if argv else DEFAULT_INPUT
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUTPUT
    out.parent.mkdir(parents=True, exist_ok=True)
    get_application()
    window = MainWindow()
    try:
        render_screenshot(window, str(source), str(out))
    finally:
        window.shutdown()
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
