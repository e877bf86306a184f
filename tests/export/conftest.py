from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from tnseg_desktop.io import open_source
from tnseg_desktop.io.cine_writer import write_cine_dicom

# identifying values planted in the test cine; none may appear in a training export
PHI = {
    "PatientName": "Doe^Jane^Marie",
    "PatientID": "PID-4711-XZ",
    "PatientBirthDate": "19610203",
    "AccessionNumber": "ACC98765",
    "InstitutionName": "Saint Elsewhere Hospital",
    "ReferringPhysicianName": "House^Gregory",
    "StationName": "USROOM7",
    "StudyID": "STUDY5150",
    "OperatorsName": "Operator^Olga",
}
DDTI_IDS = ["ddti_00001", "ddti_00002", "ddti_00003"]


def ddti_frames(shared_data: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    frames, masks = [], []
    for i in DDTI_IDS:
        img = cv2.imread(str(shared_data / "ddti" / "train" / "images" / f"{i}.png"), cv2.IMREAD_GRAYSCALE)
        m = cv2.imread(str(shared_data / "ddti" / "train" / "masks" / f"{i}.png"), cv2.IMREAD_GRAYSCALE)
        frames.append(img)
        masks.append(m > 127)
    h = min(f.shape[0] for f in frames)
    w = min(f.shape[1] for f in frames)
    return [f[:h, :w].copy() for f in frames], [m[:h, :w].copy() for m in masks]


def make_ddti_cine(shared_data: Path, path: Path, *, burned_in: str | None, region: bool = True) -> tuple[Path, list[np.ndarray]]:
    frames, masks = ddti_frames(shared_data)
    h, w = frames[0].shape
    us_region = (20, 10, w - 21, h - 11) if region else None
    write_cine_dicom(frames, path, fps=10.0, us_region=us_region, pixel_spacing_mm=0.1 if region else None,
                     patient_name=PHI["PatientName"], patient_id=PHI["PatientID"])
    ds = pydicom.dcmread(str(path))
    for kw, value in PHI.items():
        setattr(ds, kw, value)
    if burned_in is None:
        if "BurnedInAnnotation" in ds:
            del ds.BurnedInAnnotation
    else:
        ds.BurnedInAnnotation = burned_in
    ds.save_as(str(path))
    return path, masks


def content_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def ddti_cine(shared_data: Path, tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    return make_ddti_cine(shared_data, tmp_path / "src" / "ddti_cine.dcm", burned_in=None)


def add_and_accept(store, path: Path, masks: dict[int, np.ndarray], model: str | None = "tnseg-lite") -> int:
    from tnseg_desktop.store import EditInfo

    cine = open_source(path)
    sid = store.add_study(cine.meta, content_hash(path))
    for f, m in masks.items():
        store.accept(sid, f, m, original_mask=m, edit_info=EditInfo(tool="click", model_name=model, model_version="1"))
    return sid
