"""pytest set-up for the docstring examples (`python -m pytest --doctest-modules i3d_keras`).

The examples in the package's docstrings assume what the API reference says they
assume (docs/reference/index.md): `import numpy as np`, `import keras`,
`import tensorflow as tf`, `import i3d_keras` and the public names of
`i3d_keras.__all__` (`InceptionI3D`, `TwoStreamI3D`, ...). This file gives them
those names where the module does not define them, and starts each example from
Keras' float32 policy. It changes nothing for the test suite (`tests/`): the
fixture below acts on docstring examples only.

Modules whose optional dependency is missing (`data/beam_pipeline.py` needs
apache-beam, `benchmarks/pytorch_reference.py` needs torch) are not collected for
their examples then.
"""

import importlib.util

import pytest

collect_ignore = []
if importlib.util.find_spec("apache_beam") is None:
    collect_ignore.append("i3d_keras/data/beam_pipeline.py")
if importlib.util.find_spec("torch") is None:
    collect_ignore.append("i3d_keras/benchmarks/pytorch_reference.py")


@pytest.fixture(autouse=True)
def _docstring_example_names(request):
    """Fills the namespace of a docstring example (only those; a no-op for tests)."""
    if type(request.node).__name__ != "DoctestItem":
        yield
        return
    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    import i3d_keras  # noqa: PLC0415

    names = dict(np=np, keras=keras, tf=tf, i3d_keras=i3d_keras)
    names.update((name, getattr(i3d_keras, name)) for name in i3d_keras.__all__)
    globs = request.node.dtest.globs  # the module's own names win
    for name, value in names.items():
        globs.setdefault(name, value)
    # An example may set Keras' global dtype policy (`use_precision("auto")` picks
    # bfloat16 on some CPUs): each example starts from float32 and leaves it so.
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
