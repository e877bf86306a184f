"""`tnseg-desktop info PATH [--json]`: what the loader sees.

Patient name and ID are never printed here (stdout ends up in logs and
scripts); the GUI is the only place that shows them.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from typing import Any

from tnseg_desktop.io.source import open_source
from tnseg_desktop.io.types import CineMeta

# identifying fields kept out of every printed or logged form of CineMeta
PRIVATE_FIELDS = ("patient_name", "patient_id", "study_instance_uid", "series_instance_uid", "sop_instance_uid", "study_date")


def public_meta(meta: CineMeta) -> dict[str, Any]:
    """CineMeta as a JSON-ready dict without patient identifiers."""
    d = meta.to_dict()
    for key in PRIVATE_FIELDS:
        d.pop(key, None)
    d["us_regions"] = [list(r) for r in meta.us_regions]
    d["calibration_region"] = list(meta.calibration_region) if meta.calibration_region else None
    d["pixel_spacing_mm"] = list(meta.pixel_spacing_mm) if meta.pixel_spacing_mm else None
    d["file_count"] = len(meta.files) if meta.files else 1
    d.pop("files", None)
    return d


def _describe(info: dict[str, Any]) -> str:
    mm = info["mm_per_pixel"]
    calibration = f"{mm:.4f} mm/pixel ({info['calibration_source']})" if mm is not None else "uncalibrated (measurements in px)"
    if mm is None and info["calibration_source"].startswith("uncalibrated: "):
        calibration = f"uncalibrated (measurements in px): {info['calibration_source'][len('uncalibrated: '):]}"
    lines = [
        f"source:       {info['source_path']}",
        f"frames:       {info['frames']}" + (f" from {info['file_count']} files" if info["file_count"] > 1 else ""),
        f"size:         {info['cols']} x {info['rows']} pixels, {'RGB' if info['channels'] == 3 else 'grayscale'}",
        f"frame rate:   {info['fps']:.2f} fps ({info['fps_source']})",
        f"calibration:  {calibration}",
        f"regions:      {len(info['us_regions'])} ultrasound region(s)" if info["us_regions"] else None,
        f"encoding:     {info['codec']}" + (f" ({info['transfer_syntax']})" if info["transfer_syntax"] else ""),
        f"photometric:  {info['photometric']}, {info['bits_stored']} bits stored" if info["is_dicom"] else None,
        f"modality:     {info['modality'] or '-'}   manufacturer: {info['manufacturer'] or '-'}" if info["is_dicom"] else None,
        f"burned-in annotation: {info['burned_in_annotation']}" if info["burned_in_annotation"] else None,
        f"first frame:  {info['first_frame_ms']:.1f} ms after opening",
        *(f"note:         {note}" for note in info.get("notes", [])),
    ]
    return "\n".join(line for line in lines if line)


def cmd_info(args: argparse.Namespace) -> int:
    debug = bool(getattr(args, "debug", False))
    if debug and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.DEBUG)
    with warnings.catch_warnings():
        if not debug:
            warnings.simplefilter("ignore")
        start = time.perf_counter()
        with open_source(args.path) as cine:
            cine.frame(0)
            first_ms = (time.perf_counter() - start) * 1000.0
            if len(cine) > 1:
                cine.frame(len(cine) - 1)  # the last frame proves the data is all there
            info = public_meta(cine.meta)
    info["first_frame_ms"] = round(first_ms, 2)
    if getattr(args, "json", False):
        print(json.dumps(info, indent=2))
    else:
        print(_describe(info))
    return 0
