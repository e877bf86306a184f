"""A calm dark theme for reading ultrasound: neutral greys, one muted blue accent."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

WINDOW = "#1d2024"
PANEL = "#23272c"
BASE = "#16181b"
BORDER = "#343a41"
TEXT = "#d9dee4"
MUTED = "#8b949e"
ACCENT = "#4f8cc9"
CANVAS = "#000000"

STYLE_SHEET = f"""
QMainWindow, QWidget {{ color: {TEXT}; }}
QMainWindow::separator {{ background: {BORDER}; width: 1px; height: 1px; }}
#SidePanel {{ background: {PANEL}; border-left: 1px solid {BORDER}; }}
#TransportBar {{ background: {PANEL}; border-top: 1px solid {BORDER}; }}
QGroupBox {{
    border: 1px solid {BORDER}; border-radius: 4px; margin-top: 14px; padding: 8px 8px 6px 8px;
    font-weight: 600;
}}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; color: {MUTED}; }}
QLabel#InfoLabel {{ color: {MUTED}; }}
QLabel#InfoValue {{ color: {TEXT}; }}
QLabel#FrameCounter {{ font-family: monospace; color: {TEXT}; }}
QLabel#FpsLabel {{ color: {MUTED}; }}
QLabel#EmptyHint {{ color: {MUTED}; font-size: 15px; }}
QStatusBar {{ background: {PANEL}; border-top: 1px solid {BORDER}; color: {MUTED}; }}
QStatusBar QLabel {{ color: {MUTED}; padding: 0 6px; }}
QMenuBar {{ background: {PANEL}; border-bottom: 1px solid {BORDER}; }}
QMenuBar::item:selected {{ background: {BORDER}; }}
QMenu {{ background: {PANEL}; border: 1px solid {BORDER}; }}
QMenu::item:selected {{ background: {ACCENT}; color: white; }}
QSlider::groove:horizontal {{ height: 4px; background: {BORDER}; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: {ACCENT}; border-radius: 2px; }}
QSlider::sub-page:horizontal:disabled {{ background: {BORDER}; }}
QSlider::handle:horizontal {{
    background: {TEXT}; width: 12px; height: 12px; margin: -4px 0; border-radius: 6px;
}}
QSlider::handle:horizontal:disabled {{ background: {MUTED}; }}
QToolButton {{ border: none; padding: 3px; border-radius: 3px; }}
QToolButton:hover {{ background: {BORDER}; }}
QPushButton {{
    background: {WINDOW}; border: 1px solid {BORDER}; border-radius: 3px; padding: 3px 12px;
}}
QPushButton:hover {{ border-color: {ACCENT}; }}
"""


def apply_theme(app: QApplication) -> None:
    """Fusion style with a dark palette, so native widgets and dialogs match."""
    app.setStyle("Fusion")
    pal = QPalette()
    colours = {
        QPalette.ColorRole.Window: WINDOW,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE,
        QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.ToolTipBase: PANEL,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: PANEL,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.PlaceholderText: MUTED,
    }
    for role, colour in colours.items():
        pal.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(MUTED))
    app.setPalette(pal)
    app.setStyleSheet(STYLE_SHEET)
