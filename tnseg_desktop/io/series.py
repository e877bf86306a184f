"""A folder as one cine: a DICOM series, or plain images in name order.

DICOM files are ordered by InstanceNumber, then acquisition time, then file
name. When the folder mixes series, the one with the most frames is shown.
Only headers are read at open time (and a multi-frame file's frame index, so
that one file claiming more frames than it holds cannot take the choice
over); each file is opened again when one of its frames is decoded. A file
left out is named in ``meta.notes``.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from tnseg_desktop.io.dicom_reader import DicomFrameSource, check_dimensions, looks_like_dicom, open_dicom_file, read_header
from tnseg_desktop.io.errors import LoadError, UnsupportedFileError
from tnseg_desktop.io.image_reader import IMAGE_SUFFIXES, ImageFrameSource, sniff_image

log = logging.getLogger(__name__)

_SORT_TAGS = [
    "InstanceNumber", "AcquisitionDateTime", "AcquisitionDate", "AcquisitionTime", "ContentDate", "ContentTime",
    "SeriesInstanceUID", "NumberOfFrames", "SOPClassUID", "Rows", "Columns", "SamplesPerPixel", "BitsAllocated",
    "BitsStored",
]


def natural_key(name: str) -> list[Any]:
    """'img2' before 'img10'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


@dataclass
class _Member:
    path: Path
    instance: float
    time: str
    series: str
    frames: int


def _read_member(path: Path) -> _Member | str | None:
    """The member, a note saying why the file is left out, or None for a file that is no DICOM image."""
    try:
        with open(path, "rb") as f:
            head = f.read(132)
        if not looks_like_dicom(head):
            return None
        ds = read_header(path, specific_tags=_SORT_TAGS)
    except LoadError as exc:
        return f"{path.name} was left out: {exc.message}"
    except Exception:
        return None
    if "Rows" not in ds:
        return None  # DICOMDIR, reports and other non-image objects
    try:
        check_dimensions(ds, path)
    except LoadError as exc:
        return f"{path.name} was left out: {exc.message}"
    try:
        instance = float(ds.get("InstanceNumber", None))
    except (TypeError, ValueError):
        instance = math.inf
    acq = str(ds.get("AcquisitionDateTime", "") or "")
    if not acq:
        acq = str(ds.get("AcquisitionDate", "") or ds.get("ContentDate", "") or "") + str(
            ds.get("AcquisitionTime", "") or ds.get("ContentTime", "") or ""
        )
    try:
        frames = max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        frames = 1
    return _Member(path, instance, acq, str(ds.get("SeriesInstanceUID", "") or ""), frames)


def _verified(member: _Member, notes: list[str]) -> _Member | None:
    """A multi-frame member whose pixel data holds the frames it claims; else None, with a note."""
    if member.frames == 1:
        return member
    try:
        open_dicom_file(member.path).close()
    except LoadError as exc:
        notes.append(f"{member.path.name} was left out: {exc.message}")
        return None
    return member


class DicomSeriesSource:
    """Frames of several DICOM files taken as one loop."""

    def __init__(self, folder: Path, members: list[_Member], notes: list[str] | None = None) -> None:
        self.folder = folder
        self.members = members
        self._starts = np.cumsum([0] + [m.frames for m in members]).tolist()
        self._lock = threading.Lock()
        first = open_dicom_file(members[0].path)
        self._open: dict[int, DicomFrameSource] = {0: first}
        meta = first.meta
        meta.source_path = str(folder)
        meta.frames = int(self._starts[-1])
        meta.files = [str(m.path) for m in members]
        meta.notes = list(notes or [])
        self.meta = meta

    def _locate(self, index: int) -> tuple[int, int]:
        k = int(np.searchsorted(self._starts, index, side="right")) - 1
        return k, index - int(self._starts[k])

    def decode(self, index: int) -> np.ndarray:
        k, local = self._locate(index)
        with self._lock:
            source = self._open.pop(k, None)
        if source is None:
            source = open_dicom_file(self.members[k].path)
        try:
            m, sm = self.meta, source.meta
            if (sm.rows, sm.cols, sm.channels) != (m.rows, m.cols, m.channels) or local >= sm.frames:
                raise UnsupportedFileError(
                    f"The file {self.members[k].path.name} does not match the other images of the series in size or frames.",
                    self.members[k].path,
                )
            return source.decode(local)
        finally:
            source.close()

    def close(self) -> None:
        with self._lock:
            sources, self._open = list(self._open.values()), {}
        for s in sources:
            s.close()


def open_folder(folder: Path) -> DicomSeriesSource | ImageFrameSource:
    entries = sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")), key=lambda p: natural_key(p.name))
    read = [_read_member(p) for p in entries if p.name.upper() != "DICOMDIR"]
    notes = [r for r in read if isinstance(r, str)]
    checked = [_verified(m, notes) for m in read if isinstance(m, _Member)]
    members = [m for m in checked if m is not None]
    for note in notes:
        log.warning("%s", note)
    if not members and notes:
        raise UnsupportedFileError(f"The folder holds no DICOM image that can be opened ({notes[0]}).", folder)
    if members:
        by_series: dict[str, list[_Member]] = {}
        for m in members:
            by_series.setdefault(m.series, []).append(m)
        chosen = max(by_series.values(), key=lambda ms: (sum(m.frames for m in ms), len(ms)))
        if len(by_series) > 1:
            log.info("folder holds %d series; showing the one with %d files", len(by_series), len(chosen))
        order = {m.path: i for i, m in enumerate(chosen)}  # name order breaks ties
        chosen.sort(key=lambda m: (m.instance, m.time, order[m.path]))
        return DicomSeriesSource(folder, chosen, notes)

    images = []
    fmt = ""
    for p in entries:
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            with open(p, "rb") as f:
                kind = sniff_image(f.read(16))
        except OSError:
            continue
        if kind:
            images.append(p)
            fmt = fmt or kind
    if images:
        return ImageFrameSource(images, folder, fmt)
    raise UnsupportedFileError("The folder contains no DICOM images and no PNG, JPEG, BMP or TIFF images.", folder)

