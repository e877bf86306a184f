"""Model and loading timings; the same as ``tnseg-desktop bench --json OUT [--device ...]``.

Run from the repository root: ``python bench/models.py --json bench.json --device cpu``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tnseg_desktop.bench_runner import run_bench  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, dest="json_out")
    parser.add_argument("--device", default="auto")
    return run_bench(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
