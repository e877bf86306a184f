"""Removing the model version in use is refused; after switching it can go."""

from __future__ import annotations

from tests.training.retrain_support import tiny_model
from tnseg_desktop import cli
from tnseg_desktop.file_hash import sha256_of
from tnseg_desktop.model.lite_weights import save_lite
from tnseg_desktop.paths import user_models_dir
from tnseg_desktop.store import AnnotationStore
from tnseg_desktop.training import versions


def test_the_active_version_cannot_be_removed(capsys) -> None:
    u1 = save_lite(tiny_model(1), user_models_dir() / "tnseg-lite-u1.safetensors")
    u2 = save_lite(tiny_model(2), user_models_dir() / "tnseg-lite-u2.safetensors")
    with AnnotationStore() as store:
        store.record_model_version("tnseg-lite-u1", file=str(u1), sha256=sha256_of(u1), status="active")
        store.record_model_version("tnseg-lite-u2", file=str(u2), sha256=sha256_of(u2), status="candidate")

    code = cli.main(["models", "remove", "tnseg-lite-u1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "model in use" in err[0] and str(u1) in err[0]
    assert u1.is_file()
    with AnnotationStore() as store:
        assert store.active_model_version().name == "tnseg-lite-u1"
        versions.switch_to(store, "tnseg-lite-u2")

    assert cli.main(["models", "remove", "tnseg-lite-u1"]) == 0
    assert not u1.exists() and u2.is_file()
