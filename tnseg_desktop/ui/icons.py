"""Transport icons drawn with QPainter in the theme's colours (no image files to ship)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPixmap

from tnseg_desktop.ui.theme import TEXT

BORDER_LIGHT = "#59616b"  # disabled: visible but clearly inactive on the panel colour
_SIZE = 32  # drawn at 2x and scaled down by Qt for a crisp 16 px icon


def _triangle(x0: float, x1: float, pointing_right: bool = True) -> QPainterPath:
    path = QPainterPath()
    top, bottom, mid = 7.0, 25.0, 16.0
    if pointing_right:
        path.moveTo(x0, top)
        path.lineTo(x1, mid)
        path.lineTo(x0, bottom)
    else:
        path.moveTo(x1, top)
        path.lineTo(x0, mid)
        path.lineTo(x1, bottom)
    path.closeSubpath()
    return path


def _shape(name: str) -> QPainterPath:
    path = QPainterPath()
    if name == "play":
        path.addPath(_triangle(9, 26))
    elif name == "pause":
        path.addRoundedRect(QRectF(8, 7, 6, 18), 1, 1)
        path.addRoundedRect(QRectF(18, 7, 6, 18), 1, 1)
    elif name == "next":
        path.addPath(_triangle(8, 21))
        path.addRect(QRectF(21, 7, 3.5, 18))
    elif name == "previous":
        path.addRect(QRectF(7.5, 7, 3.5, 18))
        path.addPath(_triangle(11, 24, pointing_right=False))
    else:
        raise ValueError(f"no icon named {name!r}")
    return path


def _pixmap(name: str, colour: str) -> QPixmap:
    pm = QPixmap(_SIZE, _SIZE)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(colour))
    p.drawPath(_shape(name))
    p.end()
    return pm


def transport_icon(name: str) -> QIcon:
    """'play', 'pause', 'next' or 'previous', with a dimmed disabled state."""
    icon = QIcon()
    icon.addPixmap(_pixmap(name, TEXT), QIcon.Mode.Normal)
    icon.addPixmap(_pixmap(name, BORDER_LIGHT), QIcon.Mode.Disabled)
    return icon
