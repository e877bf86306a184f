"""Cine decode speed: the app's loader vs plain pydicom, side by side in one run.

    python bench/cine_load.py [--file PATH] [--repeat N] [--json OUT]

Decodes every frame of color3d_jpeg_baseline.dcm (120 frames, 480x640, JPEG
baseline, from pydicom-data) three ways and reports milliseconds per frame:
  pydicom_whole      dcmread + ds.pixel_array (all frames at once)
  pydicom_per_frame  dcmread + pydicom.pixels.pixel_array(ds, index=i) for each i
  loader             tnseg_desktop.io.open_source + cine.frame(i) for each i
and the time from open_source() to frame 0 in hand. Each figure is the
median of --repeat runs; the ratio is loader / pydicom_whole (goal <= 1.0).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pydicom  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.pixels import pixel_array  # noqa: E402

from tnseg_desktop.io import open_source  # noqa: E402


def _pydicom_whole(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    ds = pydicom.dcmread(path)
    arr = ds.pixel_array
    return time.perf_counter() - start, int(arr.shape[0])


def _pydicom_per_frame(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    ds = pydicom.dcmread(path)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    for i in range(n):
        pixel_array(ds, index=i)
    return time.perf_counter() - start, n


def _loader_all(path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    with open_source(path) as cine:
        for i in range(len(cine)):
            cine.frame(i)
        n = len(cine)
    return time.perf_counter() - start, n


def _loader_first_frame(path: Path) -> float:
    start = time.perf_counter()
    with open_source(path) as cine:
        cine.frame(0)
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=None, help="DICOM cine (default: color3d_jpeg_baseline.dcm)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, dest="json_out")
    args = parser.parse_args(argv)

    path = args.file or Path(get_testdata_file("color3d_jpeg_baseline.dcm", download=False) or "")
    if not path.is_file():
        print("color3d_jpeg_baseline.dcm not found: install pydicom-data or pass --file", file=sys.stderr)
        return 2

    _loader_first_frame(path)  # warm-up: imports, plugin discovery, OS file cache
    _pydicom_per_frame(path)

    runs: dict[str, list[float]] = {"pydicom_whole": [], "pydicom_per_frame": [], "loader": []}
    first: list[float] = []
    frames = 0
    for _ in range(max(args.repeat, 1)):
        # interleaved so that load from other processes hits all three alike
        for name, func in (("pydicom_whole", _pydicom_whole), ("pydicom_per_frame", _pydicom_per_frame), ("loader", _loader_all)):
            seconds, frames = func(path)
            runs[name].append(seconds * 1000.0 / frames)
        first.append(_loader_first_frame(path) * 1000.0)

    result = {
        "file": path.name,
        "frames": frames,
        "repeat": args.repeat,
        "ms_per_frame": {name: round(statistics.median(v), 3) for name, v in runs.items()},
        "ms_per_frame_runs": {name: [round(x, 3) for x in v] for name, v in runs.items()},
        "first_frame_ms": round(statistics.median(first), 2),
        "first_frame_ms_runs": [round(x, 2) for x in first],
        "python": platform.python_version(),
        "pydicom": pydicom.__version__,
        "cpus": os.cpu_count(),
    }
    med = result["ms_per_frame"]
    result["ratio_loader_vs_pydicom_whole"] = round(med["loader"] / med["pydicom_whole"], 3)
    result["ratio_loader_vs_pydicom_per_frame"] = round(med["loader"] / med["pydicom_per_frame"], 3)

    print(f"{path.name}: {frames} frames, median of {args.repeat} runs")
    print(f"  {'pydicom ds.pixel_array (whole)':34s} {med['pydicom_whole']:8.2f} ms/frame")
    print(f"  {'pydicom pixel_array(index=i)':34s} {med['pydicom_per_frame']:8.2f} ms/frame")
    print(f"  {'tnseg loader cine.frame(i)':34s} {med['loader']:8.2f} ms/frame")
    print(f"  ratio loader / pydicom whole       {result['ratio_loader_vs_pydicom_whole']:8.3f}  (goal <= 1.0)")
    print(f"  ratio loader / pydicom per frame   {result['ratio_loader_vs_pydicom_per_frame']:8.3f}")
    print(f"  open -> frame 0                    {result['first_frame_ms']:8.2f} ms    (goal < 300 ms)")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
