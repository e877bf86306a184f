"""Training-set export: layout, de-identification (PHI scan of every file and name), blanking of burned-in text."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pydicom

from tests.export.conftest import PHI, add_and_accept, make_ddti_cine
from tnseg_desktop.io import open_source
from tnseg_desktop.io.deid import identifying_values
from tnseg_desktop.store.training_export import MANIFEST_COLUMNS, export_training_set
from tnseg_desktop.store import AnnotationStore


def phi_terms(source: Path) -> set[str]:
    ds = pydicom.dcmread(str(source), stop_before_pixels=True)
    terms = identifying_values(ds) | set(PHI.values())
    terms |= {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, source.stem}
    for v in list(terms):
        terms |= {p for p in v.split("^") if len(p) >= 3}
    return terms


def scan_for_phi(root: Path, terms: set[str]) -> list[str]:
    hits = []
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix().lower()
        hits += [f"name {rel}: {t}" for t in terms if t.lower() in rel]
        if not p.is_file():
            continue
        data = p.read_bytes()
        text_file = p.suffix in (".csv", ".txt", ".json")
        for t in terms:
            # in binary PNG data a short word can occur by chance; whole values and words of 5+ letters cannot
            if not text_file and len(t) < 5:
                continue
            for needle in {t.encode("utf-8"), t.encode("utf-16-le")}:
                hay = data.lower() if text_file else data
                if (needle.lower() if text_file else needle) in hay:
                    hits.append(f"{rel}: {t}")
    return hits


def test_training_export_is_deidentified_and_blanked(ddti_cine, tmp_path: Path) -> None:
    source, gt = ddti_cine  # BurnedInAnnotation absent, one ultrasound region
    store = AnnotationStore(tmp_path / "store")
    sid = add_and_accept(store, source, {0: gt[0], 2: gt[2]})
    out = tmp_path / "train_out"
    result = export_training_set(store, out)
    assert len(result.exported) == 2 and result.skipped == 0
    assert any("blanked" in m for m in result.messages)

    names = sorted(p.name for p in (out / "images").iterdir())
    assert names == sorted(p.name for p in (out / "masks").iterdir()) and len(names) == 2
    manifest = (out / "manifest.csv").read_text().splitlines()
    assert manifest[0].split(",") == MANIFEST_COLUMNS and len(manifest) == 3

    cine = open_source(source)
    x0, y0, x1, y1 = cine.meta.us_regions[0]
    for frame, name in zip((0, 2), names):
        image = cv2.imread(str(out / "images" / name), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(out / "masks" / name), cv2.IMREAD_UNCHANGED)
        original = cine.frame(frame)
        original = original if original.ndim == 2 else cv2.cvtColor(original, cv2.COLOR_RGB2GRAY)
        assert image.shape == original.shape == mask.shape  # never resized
        assert set(np.unique(mask)) <= {0, 255} and np.array_equal(mask > 0, gt[frame])
        inside = np.zeros(image.shape, bool)
        inside[y0:y1 + 1, x0:x1 + 1] = True
        assert np.array_equal(image[inside], original[inside])
        assert not image[~inside].any(), "pixels outside the ultrasound region were not blanked"
        assert original[~inside].any()  # the test would notice: the source has content there

    hits = scan_for_phi(out, phi_terms(source))
    assert hits == [], hits
    # ids are stable per store (same pseudonym on re-export) and salted (another store gives others)
    again = export_training_set(store, tmp_path / "again")
    assert again.exported == result.exported
    other = AnnotationStore(tmp_path / "store2")
    add_and_accept(other, source, {0: gt[0]})
    assert export_training_set(other, tmp_path / "other").exported[0] != result.exported[0]
    store.close()
    other.close()


def test_burned_in_no_keeps_pixels_and_missing_region_is_refused(shared_data: Path, tmp_path: Path) -> None:
    store = AnnotationStore(tmp_path / "store")
    clean, gt = make_ddti_cine(shared_data, tmp_path / "clean.dcm", burned_in="NO")
    risky, _ = make_ddti_cine(shared_data, tmp_path / "risky.dcm", burned_in="YES", region=False)
    a = add_and_accept(store, clean, {1: gt[1]})
    b = add_and_accept(store, risky, {1: gt[1]})
    result = export_training_set(store, tmp_path / "out")
    assert len(result.exported) == 1 and result.skipped == 1 and result.blanked_frames == 0
    assert any(f"Study {b}" in m and "burned" in m for m in result.messages)
    image = cv2.imread(str(tmp_path / "out" / "images" / f"{result.exported[0]}.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(image, open_source(clean).frame(1))
    assert scan_for_phi(tmp_path / "out", phi_terms(clean) | phi_terms(risky)) == []
    assert a != b
    store.close()


def test_since_version_exports_only_new_edits(ddti_cine, tmp_path: Path) -> None:
    source, gt = ddti_cine
    store = AnnotationStore(tmp_path / "store")
    add_and_accept(store, source, {0: gt[0]})
    store.record_model_version("v1", last_edit_id=store.last_edit_id(), status="active")
    add_and_accept(store, source, {1: gt[1]})
    result = export_training_set(store, tmp_path / "out", since_version="v1")
    assert [e[-4:] for e in result.exported] == ["0001"]
    store.close()
