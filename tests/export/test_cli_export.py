"""`tnseg-desktop export` and `tnseg-desktop store info` on the user's store (TNSEG_DATA_DIR from conftest)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pydicom

from tests.export.conftest import add_and_accept
from tnseg_desktop.cli import main
from tnseg_desktop.store import AnnotationStore


def test_export_all_formats_and_store_info(ddti_cine, tmp_path: Path, capsys) -> None:
    source, gt = ddti_cine
    with AnnotationStore() as store:
        sid = add_and_accept(store, source, {0: gt[0], 1: gt[1]})

    assert main(["export", "--study", str(sid), "--format", "png", "--out", str(tmp_path / "png")]) == 0
    pngs = sorted((tmp_path / "png").iterdir())
    assert [p.name for p in pngs] == ["frame_0000.png", "frame_0001.png"]
    for p, m in zip(pngs, gt):
        assert np.array_equal(cv2.imread(str(p), cv2.IMREAD_UNCHANGED) > 0, m)

    assert main(["export", "--study", str(sid), "--format", "seg", "--out", str(tmp_path / "seg")]) == 0
    seg = pydicom.dcmread(str(next((tmp_path / "seg").iterdir())))
    assert seg.NumberOfFrames == 2 and seg.SegmentSequence[0].SegmentAlgorithmType == "SEMIAUTOMATIC"

    assert main(["export", "--study", str(sid), "--format", "training", "--out", str(tmp_path / "train")]) == 0
    assert len(list((tmp_path / "train" / "masks").iterdir())) == 2

    assert main(["export", "--study", str(sid), "--format", "csv", "--out", str(tmp_path / "csv")]) == 0
    rows = next((tmp_path / "csv").iterdir()).read_text().splitlines()
    assert len(rows) == 3 and rows[1].split(",")[2] == str(int(gt[0].sum())) and rows[1].endswith(",mm")

    capsys.readouterr()
    assert main(["store", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["studies"] == 1 and info["accepted_frames"] == 2 and info["schema_version"] >= 2
    assert main(["store", "info"]) == 0
    assert "accepted frames: 2" in capsys.readouterr().out


def test_export_of_unknown_study_is_one_line(capsys, tmp_path: Path) -> None:
    assert main(["export", "--study", "42", "--format", "png", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tnseg-desktop: ") and "no study matching '42'" in err and "\n" not in err
