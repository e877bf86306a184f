"""A de-identified training-set folder from the store's accepted frames (DESIGN.md section 3 layout).

    DIR/images/<id>.png   the frame as displayed (grayscale or RGB), blanked outside the
                          ultrasound regions when text may be burned in
    DIR/masks/<id>.png    the accepted mask, 0/255
    DIR/manifest.csv      one row per frame: pseudonymous ids and non-identifying facts only

``<id>`` is a salted hash of the study plus the frame number; see io/deid.py.
"""

from __future__ import annotations

import csv
import io as _io
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from tnseg_desktop.atomic_write import atomic_write_bytes
from tnseg_desktop.io.deid import blank_outside_regions, needs_blanking, pseudonym
from tnseg_desktop.io.export_png import write_mask_png
from tnseg_desktop.store.annotation_store import AnnotationStore
from tnseg_desktop.store.records import AcceptedFrame, StudyRecord

MANIFEST_COLUMNS = [
    "id", "study", "frame", "width", "height", "channels", "mask_area_px", "mm_per_pixel",
    "blanked_outside_us_region", "tool", "model_name", "model_version",
]


@dataclass
class TrainingExportResult:
    out_dir: Path
    exported: list[str] = field(default_factory=list)  # ids written
    skipped: int = 0
    blanked_frames: int = 0
    messages: list[str] = field(default_factory=list)  # sentences the UI shows after the export

    @property
    def manifest(self) -> Path:
        return self.out_dir / "manifest.csv"


def export_training_set(
    store: AnnotationStore,
    out_dir: str | Path,
    *,
    study_ids: list[int] | None = None,
    since_version: str | None = None,
    open_source: Callable[[str], Any] | None = None,
) -> TrainingExportResult:
    """Write every accepted frame (of ``study_ids``, or all; only newer than ``since_version`` if given)."""
    if open_source is None:
        from tnseg_desktop.io import open_source as _open

        open_source = _open
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    result = TrainingExportResult(out_dir=out)
    by_study: dict[int, list[AcceptedFrame]] = defaultdict(list)
    for a in store.accepted_frames(since_version):
        if study_ids is None or a.study_id in study_ids:
            by_study[a.study_id].append(a)
    rows: list[dict[str, Any]] = []
    salt = store.deid_salt
    for study_id, accepted in sorted(by_study.items()):
        study = store.study(study_id)
        rows.extend(_export_study(store, study, accepted, out, salt, open_source, result))
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(result.manifest, buf.getvalue().encode("utf-8"))
    if result.blanked_frames:
        result.messages.append(
            f"{result.blanked_frames} exported image(s) may carry burned-in text, so everything outside the "
            "ultrasound image area was blanked.")
    result.messages.insert(0, f"Exported {len(result.exported)} de-identified frame(s) to {out}.")
    return result


def _export_study(store: AnnotationStore, study: StudyRecord, accepted: list[AcceptedFrame], out: Path, salt: str,
                  open_source: Callable[[str], Any], result: TrainingExportResult) -> list[dict[str, Any]]:
    study_key = pseudonym(f"{study.study_instance_uid}|{study.content_hash}", salt)
    try:
        cine = open_source(study.source_path)
    except Exception:
        result.skipped += len(accepted)
        result.messages.append(f"Study {study.id}: its source file could not be opened, so its "
                               f"{len(accepted)} frame(s) were not exported.")
        return []
    meta = cine.meta
    blank = needs_blanking(meta.burned_in_annotation)
    regions = list(meta.us_regions or [])
    if blank and not regions:
        result.skipped += len(accepted)
        result.messages.append(
            f"Study {study.id}: the source may have text burned into the image and has no ultrasound region to "
            f"keep, so its {len(accepted)} frame(s) were not exported.")
        return []
    rows = []
    for a in accepted:
        image = np.asarray(cine.frame(a.frame_index))
        if image.shape[:2] != (study.rows, study.cols):
            result.skipped += 1
            result.messages.append(f"Study {study.id}: frame {a.frame_index} no longer matches the stored size; skipped.")
            continue
        if blank:
            image = blank_outside_regions(image, regions)
            result.blanked_frames += 1
        frame_id = f"{study_key}_{a.frame_index:04d}"
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
        ok, png = cv2.imencode(".png", bgr)
        if not ok:
            raise RuntimeError("PNG encoding of a frame failed")
        atomic_write_bytes(out / "images" / f"{frame_id}.png", png.tobytes())
        mask = store.load_mask(a.final_mask_id)
        write_mask_png(out / "masks" / f"{frame_id}.png", mask)
        result.exported.append(frame_id)
        rows.append({
            "id": frame_id, "study": study_key, "frame": a.frame_index, "width": image.shape[1],
            "height": image.shape[0], "channels": 1 if image.ndim == 2 else image.shape[2],
            "mask_area_px": int(mask.sum()),
            "mm_per_pixel": "" if meta.mm_per_pixel is None else f"{meta.mm_per_pixel:.6g}",
            "blanked_outside_us_region": int(blank), "tool": a.tool, "model_name": a.model_name or "",
            "model_version": a.model_version or "",
        })
    return rows
