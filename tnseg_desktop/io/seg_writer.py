"""DICOM Segmentation (SEG) of thyroid nodule masks that references the source cine and its frames.

highdicom 0.28 refuses a multi-frame source without a FrameOfReferenceUID (its
issue #284), which is the normal case for ultrasound cines. Such a SEG is built
here instead, following PS3.3 A.51 for sources without a Frame of Reference:
no plane position/orientation or pixel measures; each SEG frame has a
Derivation Image functional group whose Source Image item names the source
instance and its ReferencedFrameNumber (a 1:1 pixel correspondence); a
dimension organisation over segment number and source frame (see _functional_groups). highdicom still
supplies the segment description, codes and algorithm identification.

Identification and Type 2 attributes come from a cleaned copy of the source's
header (e.g. TM '11:25:01' -> '112501', a missing PatientID -> empty); the
source file is only read.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Mapping, Sequence

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tnseg_desktop import __version__
from tnseg_desktop.atomic_write import atomic_path
from tnseg_desktop.errors import UserFacingError

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
SEGMENT_LABEL = "Thyroid nodule"
_DERIVATION_SEGMENTATION = hd.sr.CodedConcept("113076", "DCM", "Segmentation")
_PURPOSE_SOURCE = hd.sr.CodedConcept("121322", "DCM", "Source image for image processing operation")
_THYROID = hd.sr.CodedConcept("69748006", "SCT", "Thyroid")

log = logging.getLogger(__name__)

MasksByFrame = Mapping[int, np.ndarray] | Sequence[np.ndarray | None] | np.ndarray


class SegWriteError(UserFacingError):
    """A SEG cannot be written for this source or these masks."""


def write_seg(
    source_path: str | Path,
    masks_by_frame: MasksByFrame,
    out_path: str | Path,
    *,
    algorithm_name: str | None = None,
    algorithm_version: str | None = None,
    algorithm_type: str | None = None,
    series_description: str = "Thyroid nodule segmentation",
    content_creator: str | None = None,
) -> Path:
    """Write a binary SEG of ``masks_by_frame`` (0-based source frame -> HxW mask) for the DICOM at ``source_path``.

    Frames missing from the mapping (or None in a list) are not segmented and are
    left out; a frame given with an empty mask is written as "no nodule here".
    ``algorithm_type`` defaults to AUTOMATIC with an algorithm name, MANUAL without.
    """
    source_path = Path(source_path)
    try:
        src = pydicom.dcmread(str(source_path), stop_before_pixels=True)
    except Exception as exc:
        raise SegWriteError(f"The source is not a readable DICOM file ({exc}).", str(source_path)) from exc
    for kw in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "Rows", "Columns"):
        if not src.get(kw):
            raise SegWriteError(f"The source DICOM has no {kw}, so a SEG cannot reference it.", str(source_path))
    n_src = int(src.get("NumberOfFrames", 1) or 1)
    rows, cols = int(src.Rows), int(src.Columns)
    frames = _collect_masks(masks_by_frame, n_src, rows, cols, str(source_path))
    if not frames:
        raise SegWriteError("There are no masks to write.", str(source_path))

    changed = [kw for kw in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
               if src.get(kw) and conformant_uid(src.get(kw)) != str(src.get(kw)).strip()]
    if changed:
        log.warning("%s: non-conformant %s replaced by derived UIDs in the SEG", source_path, ", ".join(changed))
    ds = _header(src, series_description, content_creator)
    ds.SegmentSequence = DicomSequence([_segment(algorithm_name, algorithm_version, algorithm_type)])
    _functional_groups(ds, src, sorted(frames), multi_frame=("NumberOfFrames" in src))
    ds.Rows, ds.Columns = rows, cols
    ds.NumberOfFrames = len(frames)
    ds.PixelData = _pack_bits([frames[f] for f in sorted(frames)])
    return _write_atomically(ds, Path(out_path))


def _collect_masks(masks: MasksByFrame, n_src: int, rows: int, cols: int, where: str) -> dict[int, np.ndarray]:
    if isinstance(masks, Mapping):
        items = list(masks.items())
    else:
        items = list(enumerate(masks))
    out: dict[int, np.ndarray] = {}
    for frame, mask in items:
        if mask is None:
            continue
        f = int(frame)
        if not 0 <= f < n_src:
            raise SegWriteError(f"A mask is given for frame {f} but the source has {n_src} frame(s).", where)
        arr = np.asarray(mask)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        if arr.shape != (rows, cols):
            raise SegWriteError(
                f"The mask of frame {f} has shape {tuple(arr.shape)} but the source frames are {rows}x{cols} "
                "(rows x columns); SEG masks must be at source resolution.", where)
        out[f] = arr != 0
    return out


# ----------------------------------------------------------------------------- cleaning of copied values
_UID_RE = re.compile(r"[012](\.(0|[1-9][0-9]*))*")


def conformant_uid(uid: str) -> str:
    """``uid`` if it is a valid DICOM UID, else a UID derived from it (always the same for the same input).

    Some real files carry UIDs with an unregistered root such as '999.999.…'.
    The derived UID uses the 2.25 (UUID-derived) root, so every SEG written for
    such a source refers to it consistently.
    """
    uid = str(uid).strip()
    if len(uid) <= 64 and _UID_RE.fullmatch(uid):
        return uid
    return "2.25." + str(int.from_bytes(hashlib.sha256(uid.encode()).digest()[:16], "big"))


def _clean_da(value: object) -> str:
    s = re.sub(r"[.\-/]", "", str(value or "").strip())
    return s if re.fullmatch(r"\d{8}", s) else ""


def _clean_tm(value: object) -> str:
    s = str(value or "").strip()
    if re.fullmatch(r"\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?", s):  # ACR-NEMA style '11:25:01'
        s = s.replace(":", "")
    return s if re.fullmatch(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?", s) else ""


def _clean_text(value: object, max_len: int) -> str:
    s = "" if value is None else str(value)
    s = s.replace("\\", " ").strip()
    return s[:max_len]


def _copy_cleaned(ds: Dataset, src: Dataset) -> None:
    """Patient and study identification on the SEG, from the source, made conformant (Type 2: empty if absent)."""
    ds.PatientName = _clean_text(src.get("PatientName"), 64 * 5)
    ds.PatientID = _clean_text(src.get("PatientID"), 64)
    ds.PatientBirthDate = _clean_da(src.get("PatientBirthDate"))
    sex = str(src.get("PatientSex", "") or "").strip().upper()
    ds.PatientSex = sex if sex in ("M", "F", "O") else ""
    ds.StudyInstanceUID = conformant_uid(src.StudyInstanceUID)
    ds.StudyDate = _clean_da(src.get("StudyDate"))
    ds.StudyTime = _clean_tm(src.get("StudyTime"))
    ds.ReferringPhysicianName = _clean_text(src.get("ReferringPhysicianName"), 64 * 5)
    ds.StudyID = _clean_text(src.get("StudyID"), 16)
    ds.AccessionNumber = _clean_text(src.get("AccessionNumber"), 16)
    if src.get("StudyDescription"):
        ds.StudyDescription = _clean_text(src.StudyDescription, 64)


def _header(src: Dataset, series_description: str, content_creator: str | None) -> Dataset:
    now = datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SEGMENTATION_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = SEGMENTATION_STORAGE
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    _copy_cleaned(ds, src)
    # series, equipment, image
    ds.Modality = "SEG"
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 900
    ds.SeriesDescription = _clean_text(series_description, 64)
    ds.Manufacturer = "tnseg-desktop"
    ds.ManufacturerModelName = "tnseg-desktop"
    ds.DeviceSerialNumber = "0"
    ds.SoftwareVersions = __version__
    ds.InstanceNumber = 1
    ds.ContentDate = now.strftime("%Y%m%d")
    ds.ContentTime = now.strftime("%H%M%S")
    ds.PatientOrientation = src.get("PatientOrientation", "") or ""
    # segmentation image module
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.ContentLabel = "THYROID_NODULE"
    ds.ContentDescription = "Thyroid nodule masks"
    ds.ContentCreatorName = _clean_text(content_creator, 64) if content_creator else ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelRepresentation = 0
    ds.BitsAllocated = 1
    ds.BitsStored = 1
    ds.HighBit = 0
    ds.LossyImageCompression = "00"
    ds.SegmentationType = "BINARY"
    if "FrameOfReferenceUID" in src:
        ds.FrameOfReferenceUID = src.FrameOfReferenceUID
        ds.PositionReferenceIndicator = _clean_text(src.get("PositionReferenceIndicator"), 64)
    # common instance reference: the one source instance, in its series
    ref_inst = Dataset()
    ref_inst.ReferencedSOPClassUID = src.SOPClassUID
    ref_inst.ReferencedSOPInstanceUID = conformant_uid(src.SOPInstanceUID)
    ref_series = Dataset()
    ref_series.SeriesInstanceUID = conformant_uid(src.get("SeriesInstanceUID") or generate_uid())
    ref_series.ReferencedInstanceSequence = DicomSequence([ref_inst])
    ds.ReferencedSeriesSequence = DicomSequence([ref_series])
    return ds


def _segment(algorithm_name: str | None, algorithm_version: str | None, algorithm_type: str | None) -> Dataset:
    kind = (algorithm_type or ("AUTOMATIC" if algorithm_name else "MANUAL")).upper()
    algorithm = None
    if kind != "MANUAL":
        algorithm = hd.AlgorithmIdentificationSequence(
            name=algorithm_name or "tnseg-desktop",
            family=codes.cid7162.ArtificialIntelligence,
            version=algorithm_version or __version__,
        )
    return hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=SEGMENT_LABEL,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Nodule,
        algorithm_type=kind,
        algorithm_identification=algorithm,
        tracking_uid=None,
        tracking_id=None,
        anatomic_regions=[_THYROID],
    )


def _functional_groups(ds: Dataset, src: Dataset, source_frames: list[int], multi_frame: bool) -> None:
    dim_uid = generate_uid()
    org = Dataset()
    org.DimensionOrganizationUID = dim_uid
    ds.DimensionOrganizationSequence = DicomSequence([org])
    seg_dim = Dataset()
    seg_dim.DimensionOrganizationUID = dim_uid
    seg_dim.DimensionIndexPointer = pydicom.datadict.tag_for_keyword("ReferencedSegmentNumber")
    seg_dim.FunctionalGroupPointer = pydicom.datadict.tag_for_keyword("SegmentIdentificationSequence")
    seg_dim.DimensionDescriptionLabel = "Segment Number"
    # The source frame is the second dimension. A Dimension Index Pointer names an attribute directly inside a
    # functional group item, and ReferencedFrameNumber sits one sequence deeper (Derivation Image > Source
    # Image), where readers such as highdicom cannot follow it. So the frame's temporal position in the cine
    # (Frame Content > TemporalPositionIndex), which equals its ReferencedFrameNumber, carries the dimension.
    frame_dim = Dataset()
    frame_dim.DimensionOrganizationUID = dim_uid
    frame_dim.DimensionIndexPointer = pydicom.datadict.tag_for_keyword("TemporalPositionIndex")
    frame_dim.FunctionalGroupPointer = pydicom.datadict.tag_for_keyword("FrameContentSequence")
    frame_dim.DimensionDescriptionLabel = "Source Frame Number"
    ds.DimensionIndexSequence = DicomSequence([seg_dim, frame_dim])

    ds.SharedFunctionalGroupsSequence = DicomSequence([Dataset()])
    per_frame = []
    for f in source_frames:
        source_item = Dataset()
        source_item.ReferencedSOPClassUID = src.SOPClassUID
        source_item.ReferencedSOPInstanceUID = conformant_uid(src.SOPInstanceUID)
        if multi_frame:
            source_item.ReferencedFrameNumber = f + 1
        source_item.PurposeOfReferenceCodeSequence = DicomSequence([_PURPOSE_SOURCE])
        source_item.SpatialLocationsPreserved = "YES"
        derivation = Dataset()
        derivation.DerivationCodeSequence = DicomSequence([_DERIVATION_SEGMENTATION])
        derivation.SourceImageSequence = DicomSequence([source_item])
        content = Dataset()
        content.DimensionIndexValues = [1, f + 1]
        content.TemporalPositionIndex = f + 1
        segment_id = Dataset()
        segment_id.ReferencedSegmentNumber = 1
        item = Dataset()
        item.DerivationImageSequence = DicomSequence([derivation])
        item.FrameContentSequence = DicomSequence([content])
        item.SegmentIdentificationSequence = DicomSequence([segment_id])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)


def _pack_bits(frames: list[np.ndarray]) -> bytes:
    # 1-bit frames follow each other without padding to a byte boundary; first pixel in the lowest bit
    packed = np.packbits(np.stack(frames).astype(np.uint8).ravel(), bitorder="little").tobytes()
    return packed + b"\x00" if len(packed) % 2 else packed


def _write_atomically(ds: Dataset, out_path: Path) -> Path:
    with atomic_path(out_path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return out_path
