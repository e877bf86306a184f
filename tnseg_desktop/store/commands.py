"""CLI handlers: ``tnseg-desktop export`` and ``tnseg-desktop store info | restore`` (DESIGN.md section 5)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tnseg_desktop.errors import UserFacingError
from tnseg_desktop.store.annotation_store import AnnotationStore
from tnseg_desktop.store.backups import StoreDamagedError
from tnseg_desktop.store.errors import StoreError


def cmd_export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    with AnnotationStore() as store:
        if store.problem is not None:  # an export from a damaged database could silently miss or mix up masks
            raise StoreDamagedError(store.problem, str(store.db_path), store.backup_offer)
        study = store.find_study(args.study)
        if args.format == "training":
            from tnseg_desktop.store.training_export import export_training_set

            result = export_training_set(store, out, study_ids=[study.id])
            for line in result.messages:
                print(line)
            return 0 if result.exported else 2
        accepted = store.accepted_frames(study_id=study.id)
        if not accepted:
            raise UserFacingError(f"Study {study.id} has no accepted frames to export.", study.source_path)
        if args.format == "png":
            from tnseg_desktop.io.export_png import write_mask_pngs

            written = write_mask_pngs({a.frame_index: store.load_mask(a.final_mask_id) for a in accepted}, out)
            print(f"wrote {len(written)} mask PNG(s) to {out}")
        elif args.format == "seg":
            from tnseg_desktop.io.seg_writer import write_seg

            if not Path(study.source_path).is_file():
                raise UserFacingError("The study's source DICOM file is not there any more; a SEG must reference it.",
                                      study.source_path)
            models = sorted({f"{a.model_name}" for a in accepted if a.model_name})
            path = write_seg(
                study.source_path, {a.frame_index: store.load_mask(a.final_mask_id) for a in accepted},
                out / f"study{study.id}_seg.dcm",
                algorithm_name=", ".join(models) or None,
                algorithm_type="SEMIAUTOMATIC" if models else "MANUAL",
                content_creator=None,
            )
            print(f"wrote {path}")
        elif args.format == "csv":
            from tnseg_desktop.store.export_measurements import export_measurements_csv

            path = export_measurements_csv(store, study.id, out / f"study{study.id}_measurements.csv")
            print(f"wrote {path}")
        else:  # argparse restricts the choices; kept for direct callers
            raise UserFacingError(f"Unknown export format '{args.format}'.")
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    if args.store_command == "restore":
        done = AnnotationStore.restore_last_good(backup=getattr(args, "backup", None))
        kept = f"; the damaged file is kept as {done.damaged_kept[0]}" if done.damaged_kept else ""
        print(f"restored the annotation store from {done.backup}{kept}")
        return 0
    if args.store_command != "info":
        raise UserFacingError(f"Unknown store action '{args.store_command}'.")
    with AnnotationStore() as store:
        problem = store.problem
        try:
            info = store.info()
        except StoreError:
            if problem is None:
                raise
            raise StoreDamagedError(problem, str(store.db_path), store.backup_offer) from None
        if problem is not None:  # what could be read is printed; this line says it cannot be trusted
            print(f"tnseg-desktop: {store.db_path}: {' '.join(problem.split())}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps(info, indent=2))
        return 0 if problem is None else 1
    print(f"store: {info['path']} (schema {info['schema_version']})")
    print(f"studies: {info['studies']}  accepted frames: {info['accepted_frames']}  edits: {info['edits']}  "
          f"drafts: {info['drafts']}")
    print(f"model versions: {info['model_versions']} (active: {info['active_model_version'] or 'none'})  "
          f"training runs: {info['training_runs']}")
    if info["unclean_sessions"]:
        print(f"sessions that did not close cleanly: {info['unclean_sessions']}")
    for s in info["study_list"]:
        print(f"  study {s['id']}: {s['accepted']}/{s['frames']} frames accepted  {s['source_path']}")
    return 0 if problem is None else 1
