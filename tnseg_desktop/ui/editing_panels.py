"""Small editing widgets: the Mask display group (fill, outline, opacity, brush size) and toolbar style."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QFormLayout, QHBoxLayout, QSlider, QSpinBox, QWidget

from tnseg_desktop.ui.mask_overlay import MaskOverlay
from tnseg_desktop.ui.theme import ACCENT, BORDER, TEXT
from tnseg_desktop.ui.tools import MAX_RADIUS, MIN_RADIUS, BrushSize


def editing_toolbar_style() -> str:
    return f"""
    QToolBar#EditingToolbar {{ spacing: 4px; padding: 3px 6px; border-bottom: 1px solid {BORDER}; }}
    QToolBar#EditingToolbar QToolButton {{ padding: 4px 10px; color: {TEXT}; }}
    QToolBar#EditingToolbar QToolButton:checked {{ background: {ACCENT}; color: white; }}
    QToolBar#EditingToolbar QToolButton:disabled {{ color: #59616b; }}
    QToolBar#EditingToolbar QToolButton#AcceptButton {{ border: 1px solid #3f8f5f; color: #9be0b4; font-weight: 600; }}
    QToolBar#EditingToolbar QToolButton#AcceptButton:hover {{ background: #2c4a37; }}
    """


class MaskDisplayControls(QWidget):
    """Fill and outline on/off, fill opacity, and the brush size in frame pixels."""

    def __init__(self, overlay: MaskOverlay, brush: BrushSize, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.overlay = overlay
        self.brush = brush
        self.fill = QCheckBox("Fill")
        self.outline = QCheckBox("Outline")
        for box, setter, tip in ((self.fill, overlay.set_fill_visible, "Show the mask as a coloured fill (O)"),
                                 (self.outline, overlay.set_contour_visible, "Show the mask's outline (L)")):
            box.setChecked(True)
            box.setToolTip(tip)
            box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            box.toggled.connect(setter)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(round(overlay.opacity * 100)))
        self.opacity.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.opacity.setToolTip("Opacity of the mask fill")
        self.opacity.valueChanged.connect(lambda v: overlay.set_opacity(v / 100.0))
        self.brush_spin = QSpinBox()
        self.brush_spin.setRange(MIN_RADIUS, MAX_RADIUS)
        self.brush_spin.setSuffix(" px")
        self.brush_spin.setValue(brush.radius)
        self.brush_spin.setToolTip("Brush and eraser radius in image pixels ([ and ], or Ctrl+wheel on the image)")
        self.brush_spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.brush_spin.valueChanged.connect(brush.set)
        brush.changed.connect(self.brush_spin.setValue)

        toggles = QWidget()
        h = QHBoxLayout(toggles)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.fill)
        h.addWidget(self.outline)
        h.addStretch(1)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Show", toggles)
        form.addRow("Opacity", self.opacity)
        form.addRow("Brush size", self.brush_spin)
