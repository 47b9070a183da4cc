"""Shared pytest fixtures and settings for the i3d_keras test suite."""

import pathlib

# Before TensorFlow loads, as the tools do: the suite runs with the package's
# TensorFlow settings (oneDNN on, quieter logs; see i3d_keras/__init__.py).
import i3d_keras  # noqa: F401

import numpy as np  # noqa: E402
import pytest  # noqa: E402

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data():
    """The real videos, checkpoint indexes and labels beside the checkout."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder {SHARED_DATA} (absent in a fresh clone)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _seeded():
    """Seeds Python, NumPy, TensorFlow and Keras before every test, so a
    failure reproduces: tests compare float32 results through ReLUs and max
    pools, and a random draw that puts a value within rounding of a kink
    changes gradients by far more than rounding (seen once in ~10 runs)."""
    import keras  # noqa: PLC0415

    keras.utils.set_random_seed(0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def truncated_i3d():
    """Builds I3D up to Mixed_3c (stem, pools, two Inception blocks) with a
    classifier, for tests where the whole network only adds tracing or
    conversion time: `truncated_i3d(classes, frames=..., image_size=...)`."""
    import keras  # noqa: PLC0415

    import i3d_keras  # noqa: PLC0415

    def build(classes, stream="rgb", *, frames, image_size):
        features = i3d_keras.InceptionI3D(classes, stream, frames=frames, image_size=image_size,
                                          final_endpoint="Mixed_3c")
        pooled = keras.layers.GlobalAveragePooling3D(name="pool")(features.output)
        return keras.Model(features.input, keras.layers.Dense(classes, name="logits")(pooled))

    return build
