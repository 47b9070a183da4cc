"""The package's public names, where each is defined, and the modules' old names.

One table serves `i3d_keras` (everything in its `__all__`) and its
subpackages (`i3d_keras.models.InceptionI3D` is `i3d_keras.InceptionI3D`).
Names are imported on first use, so `import i3d_keras` loads no TensorFlow.

Until version 0.2 the modules lay side by side (`i3d_keras.model`,
`i3d_keras.training`, ...); `MOVED` maps those names to the modules' places
now, and `MovedModuleFinder` keeps imports by the old names working, with a
`DeprecationWarning`.
"""

import importlib
import importlib.abc
import importlib.util
import pathlib
import pkgutil
import sys
import warnings

PACKAGE = "i3d_keras"

#: The folders in layers, bottom up: a module imports from its own folder and
#: the layers below it, never from above or from a folder beside it; the only
#: exceptions are `LAZY_UPWARD_IMPORTS` (tests/test_layout.py checks). The
#: tools (`tools/`) sit on top.
LAYERS = (
    ("utils",),
    ("runtime",),
    ("data", "models"),
    ("weights",),
    ("export",),
    ("benchmarks",),
    ("tasks",),
)
#: Imports inside functions that go up a layer: the model builders load the
#: weights they are asked for (`InceptionI3D(weights="kinetics")`) on use;
#: `--mixed_precision auto` times I3D's own blocks where no rule knows the CPU.
LAZY_UPWARD_IMPORTS = (
    ("models.i3d", "weights.pretrained"),
    ("models.baselines", "weights.inflation"),
    ("models.inception_v1", "weights.inflation"),
    ("runtime.tuning", "models.i3d"),
)
SUBPACKAGES = tuple(sorted(name for layer in LAYERS for name in layer))

#: Module (relative to the package) -> the public names it defines.
EXPORTS = {
    "models.i3d": [
        "ARCHITECTURE", "ENDPOINTS", "InceptionI3D", "TwoStreamI3D", "apply_inception_block",
        "apply_logits_head", "apply_unit3d", "endpoint_model", "logits_model",
    ],
    "models.layers": [
        "BatchNormalization", "Conv3D", "DepthwiseConv3D", "Mean", "Pooling3D", "WeightedSum",
    ],
    "models.receptive_field": ["receptive_fields"],
    "models.inception_v1": ["InceptionV1", "inflate_into_i3d", "load_slim_checkpoint"],
    "weights.inflation": [
        "adapt_input_channels", "i3d_time_kernel", "inflate", "inflate_kernel",
        "inflate_model", "inflate_weights", "resnet_time_kernel", "unpadded_time_positions",
    ],
    "weights.deepmind": [
        "CHECKPOINT_NAMES", "from_deepmind_checkpoint", "load_deepmind_checkpoint",
    ],
    "weights.pretrained": ["load_pretrained"],
    "data.preprocessing": [
        "center_crop", "dequantize_flow", "flip_left_right", "quantize_flow", "random_crop",
        "resize_short_side", "sample_frames", "scale_rgb",
    ],
    "data.video": ["VideoDecodeError", "read_video", "write_video"],
    "data.flow": ["compute_flow", "extract_flow"],
    "data.records": ["read_examples", "write_shards"],
    "data.datasets": ["prepare_dataset"],
    "data.input_pipeline": ["build_dataset", "load_split", "video_files_dataset"],
    "data.motion_dataset": ["generate_motion_clips", "motion_datasets", "write_motion_dataset"],
    "tasks.training": ["TrainConfig", "train"],
    "runtime.precision": ["resolve_precision", "use_precision", "with_precision"],
    "export.exporters": ["export_saved_model", "export_tflite", "verify_tflite"],
    "tasks.fvd": [
        "FeatureStatistics", "FrechetVideoDistance", "KernelVideoDistance", "frechet_distance",
        "kernel_distance", "load_fvd_model", "preprocess_videos", "video_distances",
        "video_features",
    ],
}
OWNER = {name: module for module, names in EXPORTS.items() for name in names}

#: The flat layout's module names (before 0.2) -> the modules now.
MOVED = {
    "model": "models.i3d", "layers": "models.layers", "convolution": "models.convolution",
    "baselines": "models.baselines", "inception_v1": "models.inception_v1",
    "receptive_field": "models.receptive_field",
    "conversion": "weights.deepmind", "inflation": "weights.inflation",
    "weights": "weights.pretrained",
    "video": "data.video", "flow": "data.flow", "preprocessing": "data.preprocessing",
    "records": "data.records", "datasets": "data.datasets",
    "input_pipeline": "data.input_pipeline", "motion_dataset": "data.motion_dataset",
    "beam_pipeline": "data.beam_pipeline", "_parallel": "data.parallel",
    "training": "tasks.training", "evaluation": "tasks.evaluation",
    "inference": "tasks.inference", "comparison": "tasks.comparison", "metrics": "tasks.fvd",
    "export": "export.exporters", "serving": "export.serving",
    "benchmarking": "benchmarks.speed", "pytorch_reference": "benchmarks.pytorch_reference",
    "diagnostics": "benchmarks.diagnostics",
    "hardware": "runtime.hardware", "precision": "runtime.precision",
    "console": "utils.console", "_plotting": "utils.plotting",
}


def _import(relative):
    return importlib.import_module(f"{PACKAGE}.{relative}")


def _warn_moved(old):
    warnings.warn(
        f"`{PACKAGE}.{old}` is now `{PACKAGE}.{MOVED[old]}`; the old name will be removed "
        "in a later release.", DeprecationWarning, stacklevel=3)


def modules_of(subpackage):
    """The modules of a subpackage (`"models"` -> `["baselines", ...]`), sorted."""
    folder = pathlib.Path(__file__).parent / subpackage
    return sorted(m.name for m in pkgutil.iter_modules([str(folder)]))


def lazy_exports(package, old_module=None):
    """`(__getattr__, __dir__, __all__)` for a package of this library.

    The package's public names (those of `EXPORTS` under it) and its modules
    resolve on first use. `old_module` names the module that had the
    package's name in the flat layout (`i3d_keras.export` was
    `export/exporters.py`): its public names resolve too, so that old imports
    (`from i3d_keras.export import models_config`) keep working.
    """
    relative = package[len(PACKAGE) + 1:]
    if relative:
        owner = {n: m for n, m in OWNER.items() if m.split(".")[0] == relative}
        modules = modules_of(relative)
    else:
        owner, modules = OWNER, list(SUBPACKAGES)

    def __getattr__(name):
        module = sys.modules[package]
        if name in owner:
            value = getattr(_import(owner[name]), name)
        elif name in modules:
            value = importlib.import_module(f"{package}.{name}")
        elif not relative and name in MOVED:
            _warn_moved(name)
            return _import(MOVED[name])
        elif old_module and not name.startswith("__"):
            old = _import(f"{relative}.{old_module}")
            public = getattr(old, "__all__", None) or [n for n in vars(old) if n[0] != "_"]
            if name not in public:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            value = getattr(old, name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(module, name, value)
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(owner) | set(modules))

    return __getattr__, __dir__, sorted(owner)


class _AliasLoader(importlib.abc.Loader):
    """Loads an old module name as the module it moved to (the same object)."""

    def __init__(self, old):
        self.old = old

    def create_module(self, spec):
        _warn_moved(self.old)
        module = _import(MOVED[self.old])
        self.spec = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self.spec  # the import system set it to the old name's


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Finds `i3d_keras.<old name>` (the flat layout's modules) as their new modules."""

    def find_spec(self, name, path=None, target=None):
        prefix, _, old = name.partition(".")
        if prefix != PACKAGE or old not in MOVED or old in SUBPACKAGES:
            return None
        return importlib.util.spec_from_loader(name, _AliasLoader(old))


def install_moved_module_finder():
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
