"""What the loader returns: a lazily decoded cine and its metadata.

Frames are numpy uint8 arrays, HxW (grayscale) or HxWx3 (RGB), at the
source's own resolution (DESIGN.md section 3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class CineMeta:
    source_path: str
    frames: int
    rows: int
    cols: int
    channels: int  # 1 (grayscale) or 3 (RGB) after conversion
    fps: float
    fps_source: str  # "FrameTime", "FrameTimeVector", "CineRate", "RecommendedDisplayFrameRate" or "default"
    # (row spacing, column spacing) in millimetres, None when uncalibrated
    pixel_spacing_mm: tuple[float, float] | None = None
    calibration_source: str = "uncalibrated"  # "ultrasound region", "PixelSpacing" or "uncalibrated"
    # bounds (x0, y0, x1, y1), inclusive, of each ultrasound region; empty when unknown
    us_regions: list[tuple[int, int, int, int]] = field(default_factory=list)
    # the ultrasound region whose PhysicalDeltaX/Y gave pixel_spacing_mm (None otherwise)
    calibration_region: tuple[int, int, int, int] | None = None
    # bounds of the regions holding a 2D image (RegionSpatialFormat 1), e.g. the two views of a side-by-side frame
    image_regions: list[tuple[int, int, int, int]] = field(default_factory=list)
    transfer_syntax: str | None = None  # UID, None for plain images
    transfer_syntax_name: str | None = None
    codec: str = ""  # e.g. "RLE Lossless", "JPEG Baseline", "PNG"
    photometric: str | None = None
    bits_stored: int = 8
    modality: str = ""
    manufacturer: str = ""
    study_date: str = ""
    patient_name: str = ""
    patient_id: str = ""
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    sop_instance_uid: str = ""
    sop_class_uid: str = ""
    burned_in_annotation: str | None = None  # "YES", "NO" or None when absent
    is_dicom: bool = False
    instance_number: int | None = None
    # for a folder series: the files in frame order
    files: list[str] = field(default_factory=list)
    # what the user should know about how the source was read, e.g. a folder's file left out and why
    notes: list[str] = field(default_factory=list)

    @property
    def mm_per_pixel(self) -> float | None:
        """Mean of row and column spacing (they are nearly always equal in ultrasound)."""
        if self.pixel_spacing_mm is None:
            return None
        return (self.pixel_spacing_mm[0] + self.pixel_spacing_mm[1]) / 2.0

    @property
    def calibrated(self) -> bool:
        return self.pixel_spacing_mm is not None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mm_per_pixel"] = self.mm_per_pixel
        return d
