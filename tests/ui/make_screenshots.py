"""Render the README's screenshots: ``python tests/ui/make_screenshots.py [DICOM] [OUT.png]``.

Without arguments it writes the viewer screenshot (../shared/data/dicom/US-PAL-8-10x-echo.dcm →
resources/screenshots/viewer.png) and the editing states into resources/screenshots/:

- auto_mask.png       a loaded cine after "Segment all frames" (frame states along the slider)
- clicks_contour.png  two corrective clicks (green +, red −) and the outline
- text_gland.png, text_nodule.png  the text prompts "thyroid gland" and "thyroid nodule" (when text prompts are installed)
- measurement.png     an accepted frame with its diameters in mm
- no_weights.png      a machine without model weights: the banner, a painted mask
- retrain_ready.png, retrain_running.png, retrain_done.png, model_versions.png
                      "Retrain on my edits" on 12 accepted frames (a short real run) and the versions list

The editing cine is built from one DDTI ultrasound image (../shared/data/ddti/train), moved a little
frame by frame, calibrated at 0.1 mm per pixel. When models/tnseg-lite.safetensors is present it
segments; until then a stand-in returns the dataset's reference mask (slightly off, so the clicks
have something to correct): the screenshots show the interface, not the model's accuracy.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tnseg_desktop.ui.app import get_application, render_screenshot  # noqa: E402
from tnseg_desktop.ui.main_window import MainWindow  # noqa: E402

DEFAULT_INPUT = REPO.parent / "shared" / "data" / "dicom" / "US-PAL-8-10x-echo.dcm"
DEFAULT_OUTPUT = REPO / "resources" / "screenshots" / "viewer.png"
DDTI = REPO.parent / "shared" / "data" / "ddti" / "train"
DDTI_ID = "ddti_00003"
N_FRAMES = 24
SIZE = (1280, 800)


def _shift(i: int) -> tuple[int, int]:
    return int(round(4 * np.sin(i / 4.0))), int(round(6 * np.sin(i / 6.0)))


def build_cine(out_dir: Path) -> tuple[Path, dict[bytes, np.ndarray]]:
    """A calibrated cine of one DDTI image with gentle motion, and each frame's reference mask by content."""
    from tnseg_desktop.io.cine_writer import write_cine_dicom

    image = cv2.imread(str(DDTI / "images" / f"{DDTI_ID}.png"), cv2.IMREAD_GRAYSCALE)
    mask = cv2.imread(str(DDTI / "masks" / f"{DDTI_ID}.png"), cv2.IMREAD_GRAYSCALE) > 127
    frames, refs = [], {}
    for i in range(N_FRAMES):
        dy, dx = _shift(i)
        f = np.roll(image, (dy, dx), axis=(0, 1))
        frames.append(f)
        refs[f.tobytes()] = np.roll(mask, (dy, dx), axis=(0, 1))
    path = write_cine_dicom(frames, out_dir / "thyroid_loop.dcm", fps=20.0, pixel_spacing_mm=0.1,
                            patient_name="Screenshot^Demo", patient_id="DEMO0001")
    return Path(path), refs


class ReferenceStandIn:
    """Stand-in models until the shipped weights land: the reference mask, dented on its left side."""

    name = "reference"
    needs_embedding = False

    def __init__(self, refs: dict[bytes, np.ndarray]) -> None:
        self.refs = refs

    def _ref(self, frame: np.ndarray) -> np.ndarray:
        return self.refs.get(np.ascontiguousarray(frame).tobytes(), np.zeros(frame.shape[:2], bool))

    def auto_probs(self, frames):
        out = []
        for f in frames:
            ref = self._ref(f).astype(np.uint8)
            cols = np.flatnonzero(ref.any(0))
            dented = ref.copy()
            if len(cols):
                dented[:, cols[0]: cols[0] + len(cols) // 4] = 0  # misses the left quarter
                dented = cv2.dilate(dented, np.ones((5, 5), np.uint8))  # and leaks a little
            out.append(dented.astype(np.float32))
        return out

    def prepare(self, frame): return None

    def is_prepared(self, frame): return True

    def invalidate(self): return None

    def refine(self, frame, prior, prompts):
        return self._ref(frame).copy()


def _pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def _wait(app, cond, timeout: float = 60.0) -> None:
    from tnseg_desktop.ui.offscreen_window import wait_until

    wait_until(app, cond, timeout, "the window did not reach the state for the screenshot")


def _provider(refs, with_models: bool):
    from tnseg_desktop.ui.model_provider import FixedModels, MissingModel, ModelProvider

    if not with_models:
        # as ModelProvider reports it: only the required model; optional ones never raise a banner
        return FixedModels(missing=[MissingModel("tnseg-lite", "automatic masks and click refinement")])
    if (REPO / "models" / "tnseg-lite.safetensors").is_file():
        return ModelProvider("cpu")
    stand_in = ReferenceStandIn(refs)
    return FixedModels(auto=stand_in, refiner=stand_in, auto_name="tnseg-lite", refiner_name="tnseg-lite")


def _window(app, cine: Path, provider, store_dir: Path):
    from tnseg_desktop.ui.offscreen_window import open_offscreen_window

    return open_offscreen_window(app, cine, provider, store_dir, SIZE)


def _save(app, window, out: Path) -> None:
    _pump(app, 0.3)
    window.grab().save(str(out), "PNG")
    print(out)


def editing_screenshots(out_dir: Path) -> None:
    app = get_application()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        os.environ.setdefault("TNSEG_DATA_DIR", str(tmp_path / "userdata"))
        os.environ.setdefault("TNSEG_CONFIG_DIR", str(tmp_path / "config"))
        cine, refs = build_cine(tmp_path)

        window, ctl = _window(app, cine, _provider(refs, True), tmp_path / "store")
        window.go_to(8)
        _wait(app, lambda: window.displayed_index == 8)
        ctl.segment_all()
        _wait(app, lambda: ctl.jobs.batch_job is None, 300)
        ctl.set_tool("click")
        _save(app, window, out_dir / "auto_mask.png")

        mask = ctl.session.mask(8)
        rows, cols = np.nonzero(mask)
        ref = ReferenceStandIn(refs)._ref(ctl.session.frame(8))
        missed = np.argwhere(ref & ~mask)
        leak = np.argwhere(mask & ~ref)
        pos = missed[len(missed) // 2] if len(missed) else (rows.mean(), cols.mean())
        neg = leak[len(leak) // 3] if len(leak) else (rows.min(), cols.max())
        ctl.mask_controls.opacity.setValue(20)
        ctl.tool_click(int(pos[0]), int(pos[1]), True)
        _wait(app, lambda: len(ctl.session.prompts(8).clicks) == 1)
        ctl.tool_click(int(neg[0]), int(neg[1]), False)
        _wait(app, lambda: len(ctl.session.prompts(8).clicks) == 2)
        _save(app, window, out_dir / "clicks_contour.png")

        if ctl.models.clip is not None:  # text prompts (tnseg-med on a fresh install): on the next frame
            window.go_to(9)
            _wait(app, lambda: window.displayed_index == 9)
            ctl.mask_controls.opacity.setValue(35)
            for phrase, name in (("thyroid gland", "text_gland.png"), ("thyroid nodule", "text_nodule.png")):
                ctl.text_field.edit.setText(phrase)
                ctl.apply_text(phrase)
                _wait(app, lambda: ctl.session.prompts(9).text == phrase and not ctl.busy, 120)
                _save(app, window, out_dir / name)
            window.go_to(8)
            _wait(app, lambda: window.displayed_index == 8)
        ctl.mask_controls.opacity.setValue(30)
        job = ctl.accept()
        _wait(app, lambda: job is None or job.finished.is_set())
        ctl.set_tool("view")
        _save(app, window, out_dir / "measurement.png")
        retrain_screenshots(app, window, ctl, refs, out_dir)
        ctl.shutdown()
        window.shutdown()

        window, ctl = _window(app, cine, _provider(refs, False), tmp_path / "store2")
        _wait(app, ctl.banner.isVisible)
        ctl.set_tool("brush")
        ctl.brush_size.set(14)
        ref = ReferenceStandIn(refs)._ref(ctl.session.frame(0))
        rr, cc = np.nonzero(ref)
        centre = (int(rr.mean()), int(cc.mean()))
        ctl.tool_paint([(centre[0] - 10, centre[1] - 25), (centre[0] + 5, centre[1] + 20)], 14, False, "demo")
        _save(app, window, out_dir / "no_weights.png")
        ctl.shutdown()
        window.shutdown()


def retrain_screenshots(app, window, ctl, refs, out_dir: Path) -> None:
    """"Retrain on my edits" while its worker runs and after the gate, then the Model Versions panel.

    Twelve frames are accepted with their reference masks and a short real
    training run (40 steps) goes through the worker process and the gate.
    """
    from tnseg_desktop.store import EditInfo
    from tnseg_desktop.training.retrain import RetrainSettings

    stand_in = ReferenceStandIn(refs)
    for i in range(12):
        ctl.store.accept(ctl.study_id, i, stand_in._ref(ctl.session.frame(i)), edit_info=EditInfo(tool="screenshot"))
    window.show_training_panel("retrain")
    panel = window.training_docks["retrain"].widget()
    panel.settings = RetrainSettings(steps=40, threads=1, train_config={"lr": 1e-3, "warmup": 5, "val_every": 20, "batch": 4})
    panel.refresh()
    _save(app, window, out_dir / "retrain_ready.png")
    ended: list[str] = []
    panel.finished.connect(lambda status, _msg: ended.append(status))
    steps: list[dict] = []
    panel.progressed.connect(lambda e: steps.append(e) if e.get("event") == "step" else None)
    if not panel.start():
        raise RuntimeError(f"retraining did not start: {panel.summary.text()}")
    _wait(app, lambda: len(steps) >= 1 or bool(ended), 600)
    _save(app, window, out_dir / "retrain_running.png")
    _wait(app, lambda: bool(ended), 900)
    _save(app, window, out_dir / "retrain_done.png")
    window.show_training_panel("versions")
    _save(app, window, out_dir / "model_versions.png")
    window.training_docks["retrain"].hide()
    window.training_docks["versions"].hide()


def main(argv: list[str]) -> int:
    if argv:
        source = Path(argv[0])
        out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUTPUT
        out.parent.mkdir(parents=True, exist_ok=True)
        get_application()
        window = MainWindow()
        try:
            render_screenshot(window, str(source), str(out))
        finally:
            window.shutdown()
        print(out)
        return 0
    DEFAULT_OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    get_application()
    window = MainWindow()
    try:
        render_screenshot(window, str(DEFAULT_INPUT), str(DEFAULT_OUTPUT))
    finally:
        window.shutdown()
    print(DEFAULT_OUTPUT)
    editing_screenshots(DEFAULT_OUTPUT.parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
