"""Nodule measurements per accepted frame as CSV: area, longest diameter and the perpendicular, in mm when calibrated."""

from __future__ import annotations

import csv
import io as _io
from pathlib import Path

import cv2
import numpy as np

from tnseg_desktop.atomic_write import atomic_write_bytes
from tnseg_desktop.engine.measurements import measure
from tnseg_desktop.store.annotation_store import AnnotationStore

# frames are numbered from 1, as the viewer shows them and DICOM counts them; the column name says so
FRAME_COLUMN = "frame_from_1"
COLUMNS = ["study", FRAME_COLUMN, "area_px", "area_mm2", "max_diameter_px", "max_diameter_mm", "perpendicular_px",
           "perpendicular_mm", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "units"]


def export_measurements_csv(store: AnnotationStore, study_id: int, out_path: str | Path) -> Path:
    study = store.study(study_id)
    spacing = study.meta.get("pixel_spacing_mm")
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for a in store.accepted_frames(study_id=study.id):
        mask = store.load_mask(a.final_mask_id)
        area = int(mask.sum())
        in_px = measure(mask, None) if area else None
        diam = in_px.diameter if in_px is not None else 0.0
        perp = in_px.perpendicular if in_px is not None else 0.0
        size = measure(mask, (float(spacing[0]), float(spacing[1]))) if spacing and area else None
        x, y, bw, bh = cv2.boundingRect(mask.astype(np.uint8)) if area else (0, 0, 0, 0)
        row = {"study": study.id, FRAME_COLUMN: a.frame_index + 1, "area_px": area, "max_diameter_px": f"{diam:.2f}",
               "perpendicular_px": f"{perp:.2f}", "bbox_x": x, "bbox_y": y, "bbox_w": bw, "bbox_h": bh,
               "area_mm2": "", "max_diameter_mm": "", "perpendicular_mm": "", "units": "px"}
        if spacing:
            sy, sx = float(spacing[0]), float(spacing[1])
            diam_mm = size.diameter if size is not None else 0.0
            perp_mm = size.perpendicular if size is not None else 0.0
            row.update(area_mm2=f"{area * sy * sx:.3f}", max_diameter_mm=f"{diam_mm:.3f}",
                       perpendicular_mm=f"{perp_mm:.3f}", units="mm")
        w.writerow(row)
    return atomic_write_bytes(Path(out_path), buf.getvalue().encode("utf-8"))
