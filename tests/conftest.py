import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# tests use tiny models: one thread each avoids OpenMP oversubscription on small CI machines
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TNSEG_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared data not found at {DATA}")
    return DATA


@pytest.fixture(autouse=True)
def _isolated_user_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own user data/config folders so nothing touches the real ones."""
    base = tmp_path_factory.mktemp("userdirs")
    monkeypatch.setenv("TNSEG_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("TNSEG_CONFIG_DIR", str(base / "config"))
    yield
