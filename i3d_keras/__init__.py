"""i3d_keras: Two-Stream Inflated 3D ConvNets (I3D) in TensorFlow 2 / Keras 3.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", CVPR 2017.

The package has a folder per concern, bottom up: `utils`, `runtime` (hardware,
precision), `models` and `data`, `weights`, `export`, `benchmarks`, `tasks`
(docs/design/layout.md; the table in `i3d_keras/_api.py`).
The public API is re-exported here and loaded on first use. Only the custom
layers are imported at once (in the main process), so that
`keras.models.load_model` finds them after `import i3d_keras`; spawned worker
processes (flow extraction, dataset conversion: OpenCV only) skip that and do
not import TensorFlow.

Example:

>>> import i3d_keras
>>> rgb = i3d_keras.InceptionI3D(num_classes=400, stream="rgb")
>>> flow = i3d_keras.InceptionI3D(num_classes=400, stream="flow")
>>> two_stream = i3d_keras.TwoStreamI3D(rgb, flow)
"""

import importlib
import importlib.abc
import importlib.util
import multiprocessing
import os
import sys

# oneDNN's CPU kernels, on which I3D's convolutions run as 2D ones
# (i3d_keras.models.convolution): TensorFlow turns them on by default only on CPUs with
# AVX-512 neural-network extensions or AMX. On the project's AVX2 CPU, with the
# gradients i3d_keras.models.convolution picks for them, the forward pass took 0.81-0.89
# and the training step 0.75 of the time without them (docs/design/onednn.md).
# TensorFlow reads this once, when it loads: it takes effect when i3d_keras is
# imported before TensorFlow (as the tools do); set TF_ENABLE_ONEDNN_OPTS=0 to
# override.
_TF_LOADED_WITH_ITS_DEFAULT = ("tensorflow" in sys.modules
                               and "TF_ENABLE_ONEDNN_OPTS" not in os.environ)
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from i3d_keras import _api  # noqa: E402

__getattr__, __dir__, __all__ = _api.lazy_exports(__name__)
_api.install_moved_module_finder()


class _RegisterLayersAfterKeras(importlib.abc.MetaPathFinder):
    """Imports `i3d_keras.models.layers` once the first import of Keras or TensorFlow
    (each imports the other) has finished, then steps aside."""

    def __init__(self):
        self.depth = 0

    def find_spec(self, name, path=None, target=None):
        if name not in ("keras", "tensorflow") or self not in sys.meta_path:
            return None
        sys.meta_path.remove(self)  # the real finders, without this one
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            self.depth += 1
            try:
                exec_module(module)
            finally:
                self.depth -= 1
            if self.depth == 0 and self in sys.meta_path:
                sys.meta_path.remove(self)
                importlib.import_module(f"{__package__}.models.layers")

        spec.loader.exec_module = exec_then_register
        return spec


# Saved models name their custom layers ("i3d_keras>Pooling3D"); Keras can only
# resolve them once `i3d_keras.models.layers` has registered them: at once if Keras or
# TensorFlow is loaded, else right after Keras loads. So `import i3d_keras`
# loads no TensorFlow itself, and a tool can set up its output first
# (i3d_keras.utils.console) and still `keras.models.load_model` any I3D file.
if multiprocessing.parent_process() is None:
    if "keras" in sys.modules or "tensorflow" in sys.modules:
        importlib.import_module(f"{__name__}.models.layers")
    elif not any(isinstance(f, _RegisterLayersAfterKeras) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterLayersAfterKeras())
    if _TF_LOADED_WITH_ITS_DEFAULT and not importlib.import_module(
            f"{__name__}.models.convolution").onednn_enabled():
        import warnings  # noqa: PLC0415

        warnings.warn(
            "TensorFlow was imported before i3d_keras, with oneDNN off (its default on this "
            "CPU): I3D's forward pass and training step take about 1.2x and 1.3x as long as "
            "with oneDNN. Import i3d_keras first, or set TF_ENABLE_ONEDNN_OPTS=1 (or 0, to keep "
            "it off and silence this) before importing TensorFlow.", stacklevel=2)
