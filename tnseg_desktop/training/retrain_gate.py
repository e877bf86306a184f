"""The validation gate of a retraining run, and recording the versions a finished worker made.

A new version is promoted only if its Dice on the user's held-out frames is
higher than its parent's and it loses no more than ``max_base_drop`` on the
base validation set. The automatic mask and LiteMedSAM's decoder are gated
and recorded each on its own, as versions of their own roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tnseg_desktop.store import AnnotationStore, ModelVersion, TrainingRun
from tnseg_desktop.training.job import Job


@dataclass
class GateDecision:
    promote: bool
    reason: str
    user_before: float | None = None
    user_after: float | None = None
    base_before: float | None = None
    base_after: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RetrainResult:
    status: str  # "promoted", "rejected", "cancelled", "failed" (the automatic-mask part)
    run: TrainingRun
    version: ModelVersion | None = None
    decision: GateDecision | None = None
    message: str = ""
    decoder_version: ModelVersion | None = None
    decoder_decision: GateDecision | None = None
    decoder_message: str = ""  # why the decoder was not retrained or what became of it

    @property
    def decoder_promoted(self) -> bool:
        return self.decoder_decision is not None and self.decoder_decision.promote


def _dice(metrics: dict[str, Any], when: str, which: str) -> float | None:
    part = (metrics.get(when) or {}).get(which)
    return None if not part else part.get("dice")


def gate(metrics: dict[str, Any], max_base_drop: float = 0.01) -> GateDecision:
    """Promote only when Dice on the user's held-out frames improves and the base set loses at most ``max_base_drop``."""
    d = GateDecision(False, "", _dice(metrics, "before", "val_user"), _dice(metrics, "after", "val_user"),
                     _dice(metrics, "before", "val_base"), _dice(metrics, "after", "val_base"))
    if d.user_before is None or d.user_after is None:
        d.reason = "There were no held-out frames of yours to check the new model on."
        return d
    if d.user_after <= d.user_before:
        d.reason = f"Dice on your held-out frames did not improve ({100 * d.user_before:.1f} → {100 * d.user_after:.1f})."
        return d
    if d.base_before is not None and d.base_after is not None and d.base_after < d.base_before - max_base_drop:
        d.reason = (f"It improved on your frames but lost {100 * (d.base_before - d.base_after):.1f} Dice points on the base "
                    f"validation set (limit {100 * max_base_drop:.0f}).")
        return d
    d.promote = True
    d.reason = f"Dice on your held-out frames improved ({100 * d.user_before:.1f} → {100 * d.user_after:.1f})."
    if d.base_before is None:
        d.reason += " No base validation set was available to check for forgetting."
    return d


def record_finished(store: AnnotationStore, run: TrainingRun, job: Job, done: dict[str, Any],
                    max_base_drop: float) -> RetrainResult:
    """Gate both parts of the worker's 'done' report, record their versions (active or rejected) and the run."""
    decision = gate(done["metrics"], max_base_drop)
    metrics = {**done["metrics"], "gate": decision.to_json(), "steps": done.get("steps"), "minutes": done.get("minutes")}
    version = store.record_model_version(job.output_name, file=done["output"], sha256=done["sha256"], parent=job.base_name,
                                         metrics=metrics, data_counts=done.get("data_counts") or job.counts(),
                                         last_edit_id=run.last_edit_id, status="active" if decision.promote else "rejected")
    result = RetrainResult("promoted" if decision.promote else "rejected", run, version, decision)
    _record_decoder(store, run, job, done.get("decoder"), max_base_drop, result)
    if result.decoder_version is not None:
        metrics["decoder_version"] = result.decoder_version.name
        metrics["decoder_gate"] = result.decoder_version.metrics.get("gate")
    result.run = store.finish_training_run(run.id, "succeeded", result_version=version.name, metrics=metrics)
    verdict = "now in use" if decision.promote else "kept, but not used"
    result.message = f"Model {version.name} is {verdict}: {decision.reason}"
    return result


def _record_decoder(store: AnnotationStore, run: TrainingRun, job: Job, part: dict[str, Any] | None, max_base_drop: float,
                    result: RetrainResult) -> None:
    """Gate and record the decoder part on its own (its own role, its own active version)."""
    if job.decoder is None:
        result.decoder_message = "The box tool (LiteMedSAM) is not installed, so only the automatic mask was retrained."
        return
    if not part or part.get("error") or part.get("skipped"):
        why = (part or {}).get("error") or (part or {}).get("skipped") or "the worker reported no result for it"
        result.decoder_message = f"The box tool was not retrained: {why}"
        return
    decision = gate(part["metrics"], max_base_drop)
    timing = {k: part.get(k) for k in ("seconds_per_step", "encode_seconds", "train_seconds", "train_views", "views_made")}
    if part.get("seconds_per_view"):  # over the views encoded in this run; views found in the cache cost none
        timing["seconds_per_view"] = float(part["seconds_per_view"])
    metrics = {**part["metrics"], "gate": decision.to_json(), "steps": part.get("steps"), "minutes": part.get("minutes"), "timing": timing}
    result.decoder_version = store.record_model_version(
        job.decoder.output_name, file=part["output"], sha256=part["sha256"], parent=job.decoder.base_name, metrics=metrics,
        data_counts={"train_views": part.get("train_views"), **job.counts()}, last_edit_id=run.last_edit_id,
        status="active" if decision.promote else "rejected", role="decoder")
    result.decoder_decision = decision
    verdict = "now in use" if decision.promote else "kept, but not used"
    result.decoder_message = f"Box tool {job.decoder.output_name} is {verdict}: {decision.reason}"
