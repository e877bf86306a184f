"""The measurements CSV: area, longest diameter and the perpendicular per accepted frame."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tests.export.conftest import add_and_accept, make_ddti_cine
from tnseg_desktop.engine.measurements import measure
from tnseg_desktop.store.export_measurements import COLUMNS, export_measurements_csv
from tnseg_desktop.store import AnnotationStore


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_calibrated_csv_has_the_perpendicular_in_px_and_mm(ddti_cine, tmp_path: Path) -> None:
    source, gt = ddti_cine
    with AnnotationStore(tmp_path / "store") as store:
        sid = add_and_accept(store, source, {0: gt[0], 1: gt[1]})
        header, rows = _rows(export_measurements_csv(store, sid, tmp_path / "m.csv"))
    assert header == COLUMNS and {"perpendicular_px", "perpendicular_mm"} <= set(header)
    assert len(rows) == 2
    for row, mask in zip(rows, gt):
        px, mm = measure(mask, None), measure(mask, (0.1, 0.1))
        assert row["units"] == "mm"
        assert row["max_diameter_px"] == f"{px.diameter:.2f}" and row["perpendicular_px"] == f"{px.perpendicular:.2f}"
        assert row["max_diameter_mm"] == f"{mm.diameter:.3f}" and row["perpendicular_mm"] == f"{mm.perpendicular:.3f}"
        assert 0 < float(row["perpendicular_mm"]) <= float(row["max_diameter_mm"])


def test_uncalibrated_csv_leaves_mm_empty_and_empty_masks_measure_zero(shared_data: Path, tmp_path: Path) -> None:
    source, gt = make_ddti_cine(shared_data, tmp_path / "src" / "plain.dcm", burned_in=None, region=False)
    with AnnotationStore(tmp_path / "store") as store:
        sid = add_and_accept(store, source, {0: gt[0], 2: np.zeros_like(gt[2])})
        _, rows = _rows(export_measurements_csv(store, sid, tmp_path / "m.csv"))
    first, empty = rows
    assert first["units"] == "px" and first["perpendicular_mm"] == "" and first["max_diameter_mm"] == ""
    assert first["perpendicular_px"] == f"{measure(gt[0], None).perpendicular:.2f}"
    assert (empty["area_px"], empty["max_diameter_px"], empty["perpendicular_px"]) == ("0", "0.00", "0.00")
