"""The plugin's own tests: the real binary over loopback (MOCK_CAMBER_BIN, PATH or target/)."""

from pathlib import Path

import pytest

from mock_camber import find_binary

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def mock_binary() -> str:
    """The binary the `mock_camber` fixture runs here, for the pytester runs to use too."""
    return find_binary([REPO])


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mock_binary: str) -> pytest.Pytester:
    """A pytester whose runs find the same binary and start their own mock (no outer URL)."""
    monkeypatch.setenv("MOCK_CAMBER_BIN", mock_binary)
    for var in (
        "MOCK_CAMBER_URL", "MOCK_CAMBER_API_KEY", "MOCK_CAMBER_ADMIN_TOKEN", "MOCK_CAMBER_WEBHOOK_SECRET", "MOCK_CAMBER_ARGS",
    ):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    return pytester
