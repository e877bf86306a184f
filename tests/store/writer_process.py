"""A writer process for the crash tests: accepts masks in a loop until killed.

Usage: python writer_process.py STORE_DIR FIRST_SEED [draft]
Prints "ACCEPTED <edit_id> <seed>" after each accept() returned.
"""

from __future__ import annotations

import sys

import numpy as np

from tnseg_desktop.io.types import CineMeta
from tnseg_desktop.store import AnnotationStore, DraftAutosaver, EditInfo

ROWS, COLS, FRAMES = 96, 128, 40
ORIGINAL_OFFSET = 10_000_000  # the model original never equals another edit's mask (files are content-addressed)


def mask_for(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.random((ROWS, COLS)) < 0.08  # noise so that PNG sizes vary between writes
    y0, x0 = rng.integers(0, ROWS - 20), rng.integers(0, COLS - 20)
    m[y0:y0 + rng.integers(5, 20), x0:x0 + rng.integers(5, 20)] = True
    return m


def meta() -> CineMeta:
    return CineMeta(source_path="/nowhere/crash-test.dcm", frames=FRAMES, rows=ROWS, cols=COLS, channels=1,
                    fps=25.0, fps_source="default", sop_instance_uid="1.2.3.4")


def main() -> None:
    store_dir, first_seed = sys.argv[1], int(sys.argv[2])
    store = AnnotationStore(store_dir)
    store.start_session()
    study = store.add_study(meta(), "crash-test-content-hash")
    saver = DraftAutosaver(store, study)
    print("READY", flush=True)
    seed = first_seed
    while True:
        frame = seed % FRAMES
        saver.mark_dirty((frame + 1) % FRAMES, mask_for(seed + 7), origin="paint")
        saver.flush()
        edit = saver.accept(frame, mask_for(seed), original_mask=mask_for(seed + ORIGINAL_OFFSET),
                            edit_info=EditInfo(tool="paint", prompt=f"seed={seed}", model_name="tnseg-lite"))
        print(f"ACCEPTED {edit.edit_id} {seed}", flush=True)
        seed += 1


if __name__ == "__main__":
    main()
