"""The retraining panels with a real worker process under QProcess: success, crash, cancel, roll-back."""

from __future__ import annotations

import pytest
from training.retrain_support import fast_settings, store_with_edits

from tnseg_desktop.paths import user_models_dir
from tnseg_desktop.training.worker import FAULT_ENV
from tnseg_desktop.ui.model_versions_panel import COLUMNS, ModelVersionsPanel
from tnseg_desktop.ui.retrain_panel import RetrainPanel

STATUS = COLUMNS.index("Status")

WORKER_TIMEOUT_MS = 180_000


@pytest.fixture
def panel_for(qtbot, tmp_path):
    made = []

    def make(n=24, env=None, **settings):
        store, _ = store_with_edits(tmp_path, n=n)
        panel = RetrainPanel(store, fast_settings(**settings), extra_env=env)
        qtbot.addWidget(panel)
        panel.show()
        made.append((panel, store))
        qtbot.waitUntil(lambda: panel.plan is not None, timeout=10_000)  # counted on the store worker
        return panel, store

    yield make
    for panel, store in made:
        panel.shutdown()
        store.close()


def _open(qtbot, window, path="/fake/loop.dcm"):
    window.open_path(path)
    qtbot.waitUntil(lambda: window.displayed_index == 0, timeout=10_000)


def test_button_shows_the_count_and_is_disabled_with_the_reason(panel_for):
    panel, _ = panel_for(n=3)
    assert not panel.button.isEnabled()
    assert "3 new accepted frames" in panel.summary.text() and "at least 5" in panel.summary.text()
    assert not panel.start()


def test_a_crashing_worker_is_reported_and_the_window_keeps_working(qtbot, make_window, fake_opener, panel_for):
    window = make_window(fake_opener)
    _open(qtbot, window)
    panel, store = panel_for(env={FAULT_ENV: "crash-at-step:3"}, steps=1000)
    assert panel.button.isEnabled() and "24 new accepted frames" in panel.summary.text()
    with qtbot.waitSignal(panel.finished, timeout=WORKER_TIMEOUT_MS) as finished:
        assert panel.start()
        assert panel.is_running() and panel.cancel_button.isVisible()
        # the viewer goes on while the worker runs
        for target in (1, 2, 3):
            window.step(1)
            qtbot.waitUntil(lambda t=target: window.displayed_index == t, timeout=10_000)
    status, message = finished.args
    assert status == "failed" and "fault injected" in message
    assert panel.status.text() == "Training failed." and "fault injected" in panel.comparison.text()
    assert not panel.is_running() and panel.button.isEnabled()
    assert store.list_training_runs()[-1].status == "failed" and store.active_model_version().name == "tiny-base"
    window.step(1)
    qtbot.waitUntil(lambda: window.displayed_index == 4, timeout=10_000)


def test_cancel_from_the_panel_leaves_no_model(qtbot, panel_for):
    panel, store = panel_for(steps=100000)
    steps = []
    panel.progressed.connect(lambda e: steps.append(e) if e.get("event") == "step" else None)
    with qtbot.waitSignal(panel.finished, timeout=WORKER_TIMEOUT_MS) as finished:
        panel.start()
        qtbot.waitUntil(lambda: len(steps) >= 1, timeout=WORKER_TIMEOUT_MS)
        assert panel.status.text().startswith("Step")
        panel.cancel()
    assert finished.args[0] == "cancelled"
    assert [v.name for v in store.list_model_versions()] == ["tiny-base"]
    assert list(user_models_dir().glob("*.safetensors")) == []


def test_retrain_promotes_and_the_versions_panel_rolls_back(qtbot, panel_for):
    panel, store = panel_for()
    with qtbot.waitSignal(panel.version_promoted, timeout=WORKER_TIMEOUT_MS) as promoted:
        panel.start()
    new_name = promoted.args[0]
    assert "Your held-out frames" in panel.comparison.text() and "→" in panel.comparison.text()
    assert store.active_model_version().name == new_name
    assert not panel.button.isEnabled()  # nothing new since the new version

    versions_panel = ModelVersionsPanel(store)
    qtbot.addWidget(versions_panel)
    qtbot.waitUntil(lambda: len(versions_panel.versions) == 2, timeout=10_000)  # listed on the store worker
    assert [v.name for v in versions_panel.versions] == [new_name, "tiny-base"]
    assert versions_panel.table.item(0, STATUS).text() == "active"
    versions_panel.select("tiny-base")
    with qtbot.waitSignal(versions_panel.version_activated) as activated:
        versions_panel.use_button.click()
    assert activated.args == ["tiny-base"]
    assert store.active_model_version().name == "tiny-base"
    assert versions_panel.table.item(1, STATUS).text() == "active"


def test_window_has_the_training_menu_and_docks(make_window):
    window = make_window()
    titles = [a.text() for a in window.training_menu.actions()]
    assert titles == ["&Retrain on My Edits…", "Model &Versions…"]
    window.show_training_panel("versions")
    assert window.training_docks["versions"].isVisible()


def _editing_window(qtbot, make_window, fake_opener, tmp_path, n=2):
    """An open cine in an editing window whose models come from the real provider over a store whose
    active version is "tiny-base" (a tiny network saved as a file)."""
    from tnseg_desktop.ui.editing_controller import attach_editing
    from tnseg_desktop.ui.model_provider import ModelProvider

    store, _ = store_with_edits(tmp_path, n=n)
    window = make_window(fake_opener)
    controller = attach_editing(window, provider=ModelProvider(device="cpu", store=store), store=store, ask_recovery=False)
    _open(qtbot, window)
    qtbot.waitUntil(lambda: controller.session is not None and controller.session.auto_model is not None, timeout=30_000)
    return store, window, controller


def _record_active_version(store, name: str) -> None:
    """A second trained version, recorded as the active one."""
    from tnseg_desktop.file_hash import sha256_of
    from tnseg_desktop.model.lite_weights import save_lite
    from training.retrain_support import tiny_model

    new_file = save_lite(tiny_model(1), user_models_dir() / f"{name}.safetensors")
    store.record_model_version(name, file=str(new_file), sha256=sha256_of(new_file), parent="tiny-base",
                               status="active")


def _probs(model, frame):
    return model.auto_probs([frame])[0]


def test_a_version_promoted_by_the_real_worker_makes_the_open_sessions_next_mask(qtbot, make_window, fake_opener, tmp_path):
    import numpy as np

    from tnseg_desktop.engine.session import EditingSession
    from tnseg_desktop.model.lite_predictor import LitePredictor
    from tnseg_desktop.training import versions

    store, window, controller = _editing_window(qtbot, make_window, fake_opener, tmp_path, n=24)
    frame = controller.session.frame(0)
    before = _probs(controller.session.auto_model, frame)
    window.show_training_panel("retrain")
    panel = window.training_docks["retrain"].widget()
    qtbot.waitUntil(lambda: panel.plan is not None, timeout=10_000)
    panel.settings, panel.plan = fast_settings(steps=30), None  # the run counts again, with these settings

    with qtbot.waitSignal(controller.models_ready, timeout=WORKER_TIMEOUT_MS):
        with qtbot.waitSignal(panel.version_promoted, timeout=WORKER_TIMEOUT_MS) as promoted:
            assert panel.start()
    new_name = promoted.args[0]
    assert store.active_model_version().name == new_name

    new_model = LitePredictor(versions.load_version(store, new_name))
    session = controller.session
    assert np.allclose(_probs(session.auto_model, frame), _probs(new_model, frame), atol=1e-6)
    assert not np.allclose(_probs(session.auto_model, frame), before, atol=1e-6)
    # the next automatic mask the user asks for comes from the new version
    expected = EditingSession([frame], auto_model=new_model).auto_mask(0)
    controller.segment_frame()
    qtbot.waitUntil(lambda: session.mask(0) is not None and np.array_equal(session.mask(0), expected), timeout=20_000)
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == f"Now using model {new_name}.", timeout=10_000)
    assert controller.model_panel.version_label.text() == new_name


def test_the_model_panel_names_the_version_in_use_and_follows_a_switch(qtbot, make_window, fake_opener, tmp_path):
    store, window, controller = _editing_window(qtbot, make_window, fake_opener, tmp_path)
    qtbot.waitUntil(lambda: controller.model_panel.version_label.text() == "tiny-base", timeout=10_000)
    before = controller.session.auto_model
    _record_active_version(store, "tiny-base-u1")
    window.show_training_panel("versions")
    with qtbot.waitSignal(controller.models_ready, timeout=30_000):
        window.training_docks["versions"].widget().version_activated.emit("tiny-base-u1")
    assert controller.model_panel.version_label.text() == "tiny-base-u1"
    assert window.statusBar().currentMessage() == "Now using model tiny-base-u1."
    assert controller.session.auto_model is not before
