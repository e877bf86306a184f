"""store layer (see DESIGN.md section 1): the annotation store, autosave and recovery, and the exporters
that read it (training_export: the de-identified training-set folder; export_measurements: the CSV).

Public API::

    from tnseg_desktop.store import AnnotationStore, DraftAutosaver, EditInfo
"""

from tnseg_desktop.store.annotation_store import AnnotationStore
from tnseg_desktop.store.autosave import DraftAutosaver
from tnseg_desktop.store.backups import StoreDamagedError
from tnseg_desktop.store.errors import StoreCorruptError, StoreError, StoreLockedError, UnknownRecordError
from tnseg_desktop.store.records import (
    AcceptedFrame,
    DraftRecord,
    EditInfo,
    ModelVersion,
    RecoveryInfo,
    StudyRecord,
    TrainingRun,
)

__all__ = [
    "AnnotationStore", "DraftAutosaver", "EditInfo", "AcceptedFrame", "DraftRecord", "ModelVersion",
    "RecoveryInfo", "StudyRecord", "TrainingRun", "StoreError", "StoreLockedError", "StoreCorruptError",
    "UnknownRecordError", "StoreDamagedError",
]
