"""The measurements CSV numbers frames as the viewer does (from 1), and its header says so."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from tests.export.conftest import add_and_accept, make_ddti_cine
from tnseg_desktop.store.export_measurements import export_measurements_csv
from tnseg_desktop.store import AnnotationStore


def test_csv_frames_are_numbered_from_one_and_the_header_says_so(shared_data: Path, tmp_path: Path) -> None:
    source, gt = make_ddti_cine(shared_data, tmp_path / "src" / "cine.dcm", burned_in=None)
    with AnnotationStore(tmp_path / "store") as store:
        # the first and the third frame: the viewer calls them "Frame 1" and "Frame 3"
        sid = add_and_accept(store, source, {0: gt[0], 2: gt[2]})
        path = export_measurements_csv(store, sid, tmp_path / "m.csv")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header, rows = list(reader.fieldnames or []), list(reader)
    assert "frame_from_1" in header and "frame" not in header
    assert [int(r["frame_from_1"]) for r in rows] == [1, 3]
    assert int(rows[1]["area_px"]) == int(np.count_nonzero(gt[2]))
