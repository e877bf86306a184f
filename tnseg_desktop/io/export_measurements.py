"""Nodule measurements per accepted frame as CSV: area and longest diameter, in mm when calibrated."""

from __future__ import annotations

import csv
import io as _io
from pathlib import Path

import cv2
import numpy as np

from tnseg_desktop.store.annotation_store import AnnotationStore
from tnseg_desktop.store.maskfiles import atomic_write_bytes

COLUMNS = ["study", "frame", "area_px", "area_mm2", "max_diameter_px", "max_diameter_mm", "bbox_x", "bbox_y",
           "bbox_w", "bbox_h", "units"]


def max_diameter_px(mask: np.ndarray) -> float:
    """Longest distance between two nodule pixels' centres (over the convex hull of all parts)."""
    pts = cv2.findNonZero(mask.astype(np.uint8))
    if pts is None:
        return 0.0
    hull = cv2.convexHull(pts).reshape(-1, 2).astype(np.float64)
    if len(hull) < 2:
        return 0.0
    d = hull[:, None, :] - hull[None, :, :]
    return float(np.sqrt((d ** 2).sum(-1)).max())


def export_measurements_csv(store: AnnotationStore, study_id: int, out_path: str | Path) -> Path:
    study = store.study(study_id)
    spacing = study.meta.get("pixel_spacing_mm")
    buf = _io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for a in store.accepted_frames(study_id=study.id):
        mask = store.load_mask(a.final_mask_id)
        area = int(mask.sum())
        diam = max_diameter_px(mask)
        x, y, bw, bh = cv2.boundingRect(mask.astype(np.uint8)) if area else (0, 0, 0, 0)
        row = {"study": study.id, "frame": a.frame_index, "area_px": area, "max_diameter_px": f"{diam:.2f}",
               "bbox_x": x, "bbox_y": y, "bbox_w": bw, "bbox_h": bh, "area_mm2": "", "max_diameter_mm": "",
               "units": "px"}
        if spacing:
            sy, sx = float(spacing[0]), float(spacing[1])
            row.update(area_mm2=f"{area * sy * sx:.3f}", max_diameter_mm=f"{diam * (sy + sx) / 2:.3f}", units="mm")
        w.writerow(row)
    return atomic_write_bytes(Path(out_path), buf.getvalue().encode("utf-8"))
