"""Draw the application icon: ``python resources/icons/make_icon.py``.

Writes ``tnseg-desktop.svg`` (the source), PNGs at 16-512 px rendered from it,
and ``tnseg-desktop.ico`` (Windows). The picture: a dark rounded tile, an
ultrasound sector in soft greys, and a nodule outlined in the app's accent blue.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAME = "tnseg-desktop"
SIZES = (16, 24, 32, 48, 64, 128, 256, 512)

# colours of tnseg_desktop/ui/theme.py
BACKGROUND = "#1d2024"
BORDER = "#343a41"
ACCENT = "#4f8cc9"

SVG = f"""<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">
  <defs>
    <radialGradient id="tissue" cx="128" cy="34" r="200" gradientUnits="userSpaceOnUse">
      <stop offset="0" stop-color="#9aa3ad"/>
      <stop offset="0.55" stop-color="#6b737c"/>
      <stop offset="1" stop-color="#3a4047"/>
    </radialGradient>
  </defs>
  <rect x="8" y="8" width="240" height="240" rx="44" fill="{BACKGROUND}" stroke="{BORDER}" stroke-width="4"/>
  <path d="M 104 40 L 152 40 L 218 196 A 200 200 0 0 1 38 196 Z" fill="url(#tissue)"/>
  <path d="M 58 150 Q 128 118 198 150" fill="none" stroke="#c9d0d7" stroke-opacity="0.55" stroke-width="5"/>
  <ellipse cx="128" cy="160" rx="40" ry="28" fill="#20252b" fill-opacity="0.85"/>
  <ellipse cx="128" cy="160" rx="40" ry="28" fill="{ACCENT}" fill-opacity="0.28" stroke="{ACCENT}" stroke-width="8"/>
</svg>
"""


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QByteArray, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (QImage painting needs it)
    svg_path = HERE / f"{NAME}.svg"
    svg_path.write_text(SVG, encoding="utf-8")
    renderer = QSvgRenderer(QByteArray(SVG.encode()))
    for size in SIZES:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        image.save(str(HERE / f"{NAME}-{size}.png"), "PNG")
        if size == 256:
            image.save(str(HERE / f"{NAME}.png"), "PNG")
            image.save(str(HERE / f"{NAME}.ico"), "ICO")
    print(svg_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
