"""Shared pytest fixtures and settings for the i3d_keras test suite."""

import os
import pathlib

# Must be set before TensorFlow is imported (see i3d_keras/__init__.py).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data():
    """The real videos, checkpoint indexes and labels beside the checkout."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED_DATA} (absent in a fresh clone)")
    return SHARED_DATA


@pytest.fixture
def rng():
    return np.random.default_rng(0)
