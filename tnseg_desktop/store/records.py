"""Plain records the store hands out (no database handles inside)."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def os_user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers and services
        return "unknown"


@dataclass(frozen=True)
class EditInfo:
    """How an accepted mask came about (provenance of one edit)."""

    tool: str = ""  # e.g. "auto", "click", "text", "paint", "propagate"
    prompt: str | None = None
    clicks: list[dict[str, Any]] | list[list[Any]] = field(default_factory=list)  # e.g. [{"x":..,"y":..,"positive":true}]
    model_name: str | None = None
    model_version: str | None = None
    os_user: str | None = None  # defaults to the logged-in user
    # the accepted mask's size, saved with the frame: area_px, area_mm2, diameter, perpendicular, unit and the
    # lines' ends (engine.measurements.Measurement.to_dict); None when not measured or the mask is empty
    measurements: dict[str, Any] | None = None


@dataclass(frozen=True)
class StudyRecord:
    id: int
    source_path: str
    content_hash: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uids: list[str]
    n_frames: int
    rows: int
    cols: int
    meta: dict[str, Any]
    created_at: str


@dataclass(frozen=True)
class AcceptedFrame:
    """The latest accepted mask of one frame, with its provenance."""

    edit_id: int
    study_id: int
    frame_index: int
    final_mask_id: int
    original_mask_id: int | None
    area_px: int
    tool: str
    prompt: str | None
    clicks: list[Any]
    model_name: str | None
    model_version: str | None
    os_user: str
    created_at: str
    source_path: str
    measurements: dict[str, Any] | None = None  # None for edits saved without one (and those before schema 3)


@dataclass(frozen=True)
class DraftRecord:
    study_id: int
    frame_index: int
    origin: str
    updated_at: str
    session_id: int | None
    source_path: str
    file: str
    sha256: str


@dataclass(frozen=True)
class RecoveryInfo:
    """A session that did not close cleanly, and the drafts it left."""

    session_id: int
    started_at: str
    host: str
    os_user: str
    drafts: list[DraftRecord]
    studies: list[StudyRecord]
    accepted_in_session: int

    @property
    def message(self) -> str:
        n = len(self.drafts)
        return (
            f"tnseg-desktop did not close normally last time (session started {self.started_at[:19].replace('T', ' ')} UTC). "
            f"{self.accepted_in_session} accepted frame(s) are safe; {n} unsaved draft(s) can be restored."
        )


@dataclass(frozen=True)
class ModelVersion:
    id: int
    name: str
    parent_id: int | None
    parent_name: str | None
    file: str
    sha256: str
    metrics: dict[str, Any]
    data_counts: dict[str, Any]
    last_edit_id: int | None
    created_at: str
    status: str
    role: str = "auto"  # "auto" (automatic-mask network) or "decoder" (LiteMedSAM prompt encoder + mask decoder)


@dataclass(frozen=True)
class TrainingRun:
    id: int
    base_version: str | None
    result_version: str | None
    status: str
    job: dict[str, Any]
    metrics: dict[str, Any]
    n_edits: int
    last_edit_id: int | None
    log_path: str
    error: str
    started_at: str
    finished_at: str | None
