"""The side panel: what the file is (study, image, calibration) in plain words.

Patient identifiers are shown here and nowhere else; nothing in this module logs.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QVBoxLayout, QWidget

from tnseg_desktop.io.types import CineMeta

EMPTY = "—"


def format_date(value: str) -> str:
    """DICOM DA 'YYYYMMDD' as 'YYYY-MM-DD'; anything else unchanged."""
    v = (value or "").strip().replace(".", "")  # old ACR-NEMA dates read 'YYYY.MM.DD'
    if len(v) == 8 and v.isdigit():
        return f"{v[:4]}-{v[4:6]}-{v[6:]}"
    return (value or "").strip() or EMPTY


def format_person_name(value: str) -> str:
    """DICOM PN 'Family^Given^Middle' as 'Family, Given Middle'."""
    parts = [p.strip() for p in (value or "").split("=")[0].split("^")]
    family, rest = (parts[0], [p for p in parts[1:] if p]) if parts else ("", [])
    if not family and not rest:
        return EMPTY
    return f"{family}, {' '.join(rest)}" if family and rest else family or " ".join(rest)


def format_calibration(meta: CineMeta) -> str:
    if meta.pixel_spacing_mm is None:
        return "uncalibrated"
    row_mm, col_mm = meta.pixel_spacing_mm
    if abs(row_mm - col_mm) <= 1e-3 * max(row_mm, col_mm):
        return f"{meta.mm_per_pixel:.4g} mm/px"
    return f"{col_mm:.4g} × {row_mm:.4g} mm/px"


def format_calibration_source(meta: CineMeta) -> str:
    if meta.pixel_spacing_mm is None:
        prefix = "uncalibrated: "
        if meta.calibration_source.startswith(prefix):  # the file gave one, but not a believable one
            return f"sizes in px: {meta.calibration_source[len(prefix):]}"
        return "none in file: sizes in px"
    return meta.calibration_source


def format_size(meta: CineMeta) -> str:
    colour = "RGB" if meta.channels == 3 else "grayscale"
    return f"{meta.cols} × {meta.rows} px, {colour}"


def format_fps(meta: CineMeta) -> str:
    text = f"{round(meta.fps, 2):g} fps"
    return f"{text} (default)" if meta.fps_source == "default" else text


def format_codec(meta: CineMeta) -> str:
    return meta.codec or meta.transfer_syntax_name or EMPTY


def panel_rows(meta: CineMeta) -> list[tuple[str, list[tuple[str, str]]]]:
    """The panel's content as (group title, [(label, value)]) — testable without widgets."""
    return [
        ("Study", [
            ("Patient", format_person_name(meta.patient_name)),
            ("Patient ID", meta.patient_id.strip() or EMPTY),
            ("Study date", format_date(meta.study_date)),
            ("Modality", meta.modality or EMPTY),
            ("Manufacturer", meta.manufacturer or EMPTY),
        ]),
        ("Image", [
            ("File", os.path.basename(meta.source_path.rstrip("/\\")) or meta.source_path),
            ("Frames", str(meta.frames)),
            ("Frame rate", format_fps(meta)),
            ("Size", format_size(meta)),
            ("Calibration", format_calibration(meta)),
            ("Calibrated by", format_calibration_source(meta)),
            ("Codec", format_codec(meta)),
        ]),
    ]


class InfoPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("InfoPanel")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(10)
        self._groups: list[QGroupBox] = []
        self.values: dict[str, QLabel] = {}
        self.clear()

    def clear(self) -> None:
        self._rebuild([("Study", []), ("Image", [])])

    def set_meta(self, meta: CineMeta) -> None:
        self._rebuild(panel_rows(meta))

    def _rebuild(self, groups: list[tuple[str, list[tuple[str, str]]]]) -> None:
        for g in self._groups:
            self._layout.removeWidget(g)
            g.deleteLater()
        self._groups = []
        self.values = {}
        for index, (title, rows) in enumerate(groups):
            box = QGroupBox(title)
            form = QFormLayout(box)
            form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
            form.setHorizontalSpacing(12)
            form.setVerticalSpacing(5)
            for label, value in rows:
                name = QLabel(label)
                name.setObjectName("InfoLabel")
                v = QLabel(value)
                v.setObjectName("InfoValue")
                v.setWordWrap(True)
                v.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                form.addRow(name, v)
                self.values[label] = v
            if not rows:
                hint = QLabel("No file open")
                hint.setObjectName("InfoLabel")
                form.addRow(hint)
            self._layout.insertWidget(index, box)
            self._groups.append(box)
