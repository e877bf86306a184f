"""Make the bundled sample: a small synthetic thyroid ultrasound cine and its nodule masks.

``python resources/sample/make_sample.py`` writes, next to this script,
``thyroid_sample.dcm`` (12 frames, 256x320, 0.15 mm pixels, US Multi-frame)
and ``masks/frame_NNNN.png`` (the nodule of each frame, 0/255).

Nothing here comes from patient data: a transverse view of one thyroid lobe is
drawn from simple shapes (skin, fat, strap muscle, the gland with its capsule,
the carotid artery, the trachea's air shadow, a hypoechoic oval nodule with a
thin halo) and filled with simulated speckle. The tissue moves a little over
the loop, as with breathing and probe pressure. A fixed seed and fixed UIDs
and dates make every run write the same file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tnseg_desktop.io.cine_writer import write_cine_dicom  # noqa: E402

ROWS, COLS, FRAMES = 256, 320, 12
PIXEL_MM = 0.15
FPS = 15.0
SEED = 20240611
DCM_NAME = "thyroid_sample.dcm"
MASK_DIR = "masks"

# the nodule: centre (row, col) and semi-axes (rows, cols) in frame 0
NODULE_CENTRE = (124.0, 166.0)
NODULE_AXES = (24.0, 34.0)
NODULE_TILT_DEG = 8.0
# fixed identifiers: the sample is the same file on every machine
UID_ROOT = "1.2.826.0.1.3680043.10.1408.7."
STUDY_UID = UID_ROOT + "1"
SERIES_UID = UID_ROOT + "2"
SOP_UID = UID_ROOT + "3"
FIXED_DATE, FIXED_TIME = "20240101", "120000"


def motion(t: int) -> tuple[float, float]:
    """Tissue displacement (rows, cols) of frame ``t``: one slow breath over the loop."""
    phase = 2.0 * np.pi * t / FRAMES
    return 2.0 * np.sin(phase), 3.0 * np.sin(phase + 0.6)


def ellipse(rr: np.ndarray, cc: np.ndarray, centre: tuple[float, float], axes: tuple[float, float], tilt_deg: float = 0.0) -> np.ndarray:
    """Normalised radius: < 1 inside the ellipse."""
    a = np.deg2rad(tilt_deg)
    dr, dc = rr - centre[0], cc - centre[1]
    u = dr * np.cos(a) - dc * np.sin(a)
    v = dr * np.sin(a) + dc * np.cos(a)
    return np.sqrt((u / axes[0]) ** 2 + (v / axes[1]) ** 2)


def nodule_mask(t: int) -> np.ndarray:
    dy, dx = motion(t)
    rr, cc = np.mgrid[0:ROWS, 0:COLS].astype(np.float32)
    centre = (NODULE_CENTRE[0] + 1.15 * dy, NODULE_CENTRE[1] + 1.15 * dx)  # the nodule slides a little inside the gland
    return ellipse(rr, cc, centre, NODULE_AXES, NODULE_TILT_DEG) < 1.0


def echogenicity(t: int, rng_texture: np.ndarray) -> np.ndarray:
    """Mean backscatter of each tissue (0 = anechoic, 1 = bright reflector) in frame ``t``."""
    dy, dx = motion(t)
    rr, cc = np.mgrid[0:ROWS, 0:COLS].astype(np.float32)
    r = rr - dy
    c = cc - dx
    e = np.full((ROWS, COLS), 0.42, np.float32)  # deep soft tissue

    e[r < 7] = 0.95  # skin and gel interface
    fat = (r >= 7) & (r < 28)
    e[fat] = 0.5 + 0.08 * np.sin(c[fat] / 9.0 + r[fat] / 4.0)
    strap_top = 30 + 4 * np.sin(c / 60.0)
    strap_bottom = 58 + 5 * np.sin(c / 45.0 + 1.0)
    strap = (r >= strap_top) & (r < strap_bottom)
    fibres = 0.12 * (np.sin(r * 1.9 + c / 30.0) > 0.7)  # fibrillar lines of muscle
    e[strap] = 0.26 + fibres[strap]

    # the lobe: a rounded band under the strap muscle, tapering towards both sides
    lobe_r, lobe_c = (r - 126.0) / 60.0, (c - 146.0) / 122.0
    lobe = np.power(np.abs(lobe_r), 2.6) + np.power(np.abs(lobe_c), 2.6) + 0.25 * lobe_c * lobe_r
    e[lobe < 1.0] = 0.66 + 0.05 * rng_texture[lobe < 1.0]
    e[(lobe >= 1.0) & (lobe < 1.12)] = 0.85  # capsule
    longus = (lobe >= 1.12) & (r > 150) & (r < 222 - 8 * np.cos((c - 150) / 70.0))
    e[longus] = 0.28

    # carotid artery lateral to the lobe: anechoic lumen, bright wall
    artery = ellipse(rr, cc, (150 + dy, 292 + dx), (27, 25))
    e[artery < 1.0] = 0.03
    e[(artery >= 1.0) & (artery < 1.12)] = 0.95
    # trachea medial to the lobe: a bright arc with an air shadow below it
    trachea = ellipse(rr, cc, (128 + dy, -6 + dx), (30, 30))
    e[(trachea >= 0.92) & (trachea < 1.05)] = 1.0
    e[(trachea < 0.92)] = 0.05

    # the nodule: hypoechoic, a little heterogeneous, with a thin dark halo
    centre = (NODULE_CENTRE[0] + 1.15 * dy, NODULE_CENTRE[1] + 1.15 * dx)
    n = ellipse(rr, cc, centre, NODULE_AXES, NODULE_TILT_DEG)
    e[(n >= 1.0) & (n < 1.1)] = 0.12
    inside = n < 1.0
    e[inside] = 0.24 + 0.06 * rng_texture[inside]
    return cv2.GaussianBlur(np.clip(e, 0.0, 1.0), (0, 0), 1.0)


def speckle_field(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Complex circular Gaussian scatter blurred by an anisotropic point-spread function."""
    z = rng.standard_normal(shape).astype(np.float32) + 1j * rng.standard_normal(shape).astype(np.float32)
    real = cv2.GaussianBlur(z.real.astype(np.float32), (0, 0), sigmaX=1.7, sigmaY=0.8)
    imag = cv2.GaussianBlur(z.imag.astype(np.float32), (0, 0), sigmaX=1.7, sigmaY=0.8)
    field = real + 1j * imag
    return field / np.sqrt(np.mean(np.abs(field) ** 2))


def render_frame(t: int, base_speckle: np.ndarray, rng: np.random.Generator, texture: np.ndarray) -> np.ndarray:
    dy, dx = motion(t)
    pad = (base_speckle.shape[0] - ROWS) // 2
    r0, c0 = pad - int(round(dy)), pad - int(round(dx))
    moved = base_speckle[r0 : r0 + ROWS, c0 : c0 + COLS]
    # the speckle follows the tissue and decorrelates a little from frame to frame
    fresh = speckle_field(rng, (ROWS, COLS))
    z = np.sqrt(0.88) * moved + np.sqrt(0.12) * fresh
    grain = np.abs(z) / 0.886  # Rayleigh amplitude scaled to mean 1
    # brightness follows the tissue; speckle modulates it (display-domain model, enough for a sample)
    image = echogenicity(t, texture) * (0.5 + 0.5 * grain)
    depth = np.arange(ROWS, dtype=np.float32)[:, None] / ROWS
    image *= 1.0 - 0.25 * depth  # attenuation the time-gain compensation did not fully undo
    shadow_cols = np.clip((24 - np.arange(COLS, dtype=np.float32) - 1.0 * dx) / 24.0, 0, 1)
    below = (np.arange(ROWS)[:, None] > 100 + dy)
    image *= 1.0 - 0.8 * shadow_cols[None, :] * below  # air in the trachea blocks the beam
    image = np.clip(255.0 * np.power(np.clip(image, 0, None) / 1.25, 0.85), 0, 255)
    for depth_mm in range(10, int(ROWS * PIXEL_MM) + 1, 10):  # depth ticks at every centimetre
        row = int(round(depth_mm / PIXEL_MM))
        if row < ROWS - 2:
            image[row - 1 : row + 2, COLS - 5 : COLS - 2] = 220
    return image.astype(np.uint8)


def make(out_dir: Path = HERE) -> tuple[Path, list[Path]]:
    rng = np.random.default_rng(SEED)
    texture = cv2.GaussianBlur(rng.standard_normal((ROWS, COLS)).astype(np.float32), (0, 0), 6.0)
    texture /= np.abs(texture).max()
    base = speckle_field(rng, (ROWS + 32, COLS + 32))
    frames = [render_frame(t, base, rng, texture) for t in range(FRAMES)]
    dcm = write_cine_dicom(
        frames,
        out_dir / DCM_NAME,
        fps=FPS,
        pixel_spacing_mm=PIXEL_MM,
        patient_name="Sample^Synthetic",
        patient_id="TNSEG-SAMPLE",
        study_instance_uid=STUDY_UID,
        series_instance_uid=SERIES_UID,
    )
    _fix_identity(dcm)
    mask_dir = out_dir / MASK_DIR
    mask_dir.mkdir(parents=True, exist_ok=True)
    masks = []
    for t in range(FRAMES):
        path = mask_dir / f"frame_{t:04d}.png"
        cv2.imwrite(str(path), nodule_mask(t).astype(np.uint8) * 255)
        masks.append(path)
    return dcm, masks


def _fix_identity(path: Path) -> None:
    import pydicom

    ds = pydicom.dcmread(str(path))
    ds.SOPInstanceUID = SOP_UID
    ds.file_meta.MediaStorageSOPInstanceUID = SOP_UID
    for kw in ("StudyDate", "SeriesDate", "ContentDate"):
        setattr(ds, kw, FIXED_DATE)
    for kw in ("StudyTime", "SeriesTime", "ContentTime"):
        setattr(ds, kw, FIXED_TIME)
    ds.AcquisitionDateTime = FIXED_DATE + FIXED_TIME
    ds.StudyDescription = "Synthetic thyroid sample (not a patient)"
    ds.SeriesDescription = "Transverse left lobe, synthetic"
    ds.save_as(str(path), enforce_file_format=True)


if __name__ == "__main__":
    dcm, masks = make()
    print(f"{dcm} ({dcm.stat().st_size / 1e6:.2f} MB), {len(masks)} masks in {dcm.parent / MASK_DIR}")
