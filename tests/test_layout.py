"""Tests of the package's layout: the public API, the folders' layers, old names.

The tree reads as the architecture (i3d_keras._api.LAYERS): these tests keep it
so, and keep what users had before the folders (the flat layout's public names,
module paths and saved `.keras` files) working.
"""

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from i3d_keras import _api

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "i3d_keras"
FIXTURES = ROOT / "tests" / "fixtures"

#: `i3d_keras.__all__` as the flat layout (before the folders) had it.
FLAT_LAYOUT_ALL = [
    "ARCHITECTURE", "BatchNormalization", "CHECKPOINT_NAMES", "Conv3D", "DepthwiseConv3D",
    "ENDPOINTS", "FeatureStatistics", "FrechetVideoDistance", "InceptionI3D", "InceptionV1",
    "KernelVideoDistance", "Mean", "Pooling3D", "TrainConfig", "TwoStreamI3D",
    "VideoDecodeError", "WeightedSum", "adapt_input_channels", "apply_inception_block",
    "apply_logits_head", "apply_unit3d", "build_dataset", "center_crop", "compute_flow",
    "dequantize_flow", "endpoint_model", "export_saved_model", "export_tflite", "extract_flow",
    "flip_left_right", "frechet_distance", "from_deepmind_checkpoint", "generate_motion_clips",
    "i3d_time_kernel", "inflate", "inflate_into_i3d", "inflate_kernel", "inflate_model",
    "inflate_weights", "kernel_distance", "load_deepmind_checkpoint", "load_fvd_model",
    "load_pretrained", "load_slim_checkpoint", "load_split", "logits_model", "motion_datasets",
    "prepare_dataset", "preprocess_videos", "quantize_flow", "random_crop", "read_examples",
    "read_video", "receptive_fields", "resize_short_side", "resnet_time_kernel",
    "resolve_precision", "sample_frames", "scale_rgb", "train", "unpadded_time_positions",
    "use_precision", "verify_tflite", "video_distances", "video_features",
    "video_files_dataset", "with_precision", "write_motion_dataset", "write_shards",
    "write_video",
]

def _modules():
    """{"models.i3d": path, ...}: every module in the folders."""
    return {f"{folder}.{module}": PACKAGE / folder / f"{module}.py"
            for folder in _api.SUBPACKAGES for module in _api.modules_of(folder)}


def _i3d_imports(path):
    """`[(imported module relative to the package, inside a function?)]` of a file."""
    found = []

    def target(module, name):
        parts = module.split(".")[1:]
        if (PACKAGE.joinpath(*parts, f"{name}.py")).exists():
            parts.append(name)
        return ".".join(parts)

    def visit(node, lazy):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ImportFrom) and child.level == 0 and child.module and \
                    child.module.split(".")[0] == "i3d_keras":
                found.extend((target(child.module, a.name), lazy) for a in child.names)
            elif isinstance(child, ast.Import):
                found.extend((a.name.split(".", 1)[1] if "." in a.name else "", lazy)
                             for a in child.names if a.name.split(".")[0] == "i3d_keras")
            visit(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                    ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return found


def _layer(module):
    folder = module.split(".")[0]
    for index, layer in enumerate(_api.LAYERS):
        if folder in layer:
            return index
    return -1  # the package root and _api: below everything


def test_public_api_is_the_flat_layouts():
    import i3d_keras

    assert sorted(i3d_keras.__all__) == sorted(FLAT_LAYOUT_ALL)
    for name in i3d_keras.__all__:
        value = getattr(i3d_keras, name)
        module = importlib.import_module(f"i3d_keras.{_api.OWNER[name]}")
        assert value is getattr(module, name)
        if callable(value):
            assert value.__module__ == module.__name__, name


def test_each_folder_exports_its_public_names():
    import i3d_keras
    from i3d_keras import models, tasks

    assert models.InceptionI3D is i3d_keras.InceptionI3D
    assert tasks.train is i3d_keras.train
    for folder in _api.SUBPACKAGES:
        package = importlib.import_module(f"i3d_keras.{folder}")
        assert package.__doc__, folder
        for name in package.__all__:
            assert _api.OWNER[name].split(".")[0] == folder
        assert set(_api.modules_of(folder)) <= set(dir(package))


def test_folders_import_only_downwards():
    allowed_upward = set(_api.LAZY_UPWARD_IMPORTS)
    wrong = []
    for module, path in _modules().items():
        for target, lazy in _i3d_imports(path):
            if target in ("", "_api") or target.split(".")[0] == module.split(".")[0]:
                continue
            below = _layer(target) < _layer(module)
            if not below and not (lazy and (module, target) in allowed_upward):
                wrong.append(f"{module} -> {target}{' (in a function)' if lazy else ''}")
    assert not wrong, "imports that go up or sideways: " + ", ".join(wrong)


def test_no_import_cycle_at_module_level():
    graph = {module: sorted({t for t, lazy in _i3d_imports(path) if not lazy and t in _modules()})
             for module, path in _modules().items()}
    state = {}

    def visit(module, stack):
        if state.get(module) == "done":
            return
        if state.get(module) == "open":
            pytest.fail("import cycle: " + " -> ".join(stack + [module]))
        state[module] = "open"
        for target in graph[module]:
            visit(target, stack + [module])
        state[module] = "done"

    for module in graph:
        visit(module, [])
    # The models load their weights on use only (the "no import circle").
    assert not [t for m, t in ((m, t) for m in graph for t in graph[m])
                if m.startswith("models.") and t.startswith("weights.")]


def test_every_module_has_its_test_file():
    tests = ROOT / "tests"
    missing = [module for module in _modules()
               if not (tests / module.split(".")[0] / f"test_{module.split('.')[1]}.py").exists()]
    assert not missing, f"modules without tests/<folder>/test_<module>.py: {missing}"
    # No test file left at the top for a module that has moved into a folder.
    assert not [p.name for p in tests.glob("test_*.py")
                if p.stem[5:] in _api.MOVED or f"_{p.stem[5:]}" in _api.MOVED]


def test_old_module_paths_still_import_with_a_warning():
    from i3d_keras.models import i3d
    from i3d_keras.tasks import training

    for old, new in _api.MOVED.items():
        if old in _api.SUBPACKAGES:
            continue
        try:
            moved = importlib.import_module(f"i3d_keras.{new}")
        except ModuleNotFoundError as error:  # an optional extra's: apache_beam, torch
            assert error.name.split(".")[0] in ("apache_beam", "torch")
            continue
        sys.modules.pop(f"i3d_keras.{old}", None)
        with pytest.warns(DeprecationWarning, match=f"i3d_keras.{new}"):
            module = importlib.import_module(f"i3d_keras.{old}")
        assert module is moved
        assert module.__spec__.name == f"i3d_keras.{new}"  # not renamed by the alias
    sys.modules.pop("i3d_keras.model")
    with pytest.warns(DeprecationWarning):
        from i3d_keras.model import InceptionI3D  # noqa: PLC0415
    assert InceptionI3D is i3d.InceptionI3D
    import i3d_keras

    vars(i3d_keras).pop("training", None)  # set by the import of the old name above
    with pytest.warns(DeprecationWarning, match="i3d_keras.tasks.training"):
        assert i3d_keras.training is training
    # The two old modules whose names are folders now: their names still resolve.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from i3d_keras.export import models_config, serving_preprocess  # noqa: F401,PLC0415
        from i3d_keras.weights import KEYWORDS, load_pretrained  # noqa: F401,PLC0415
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        i3d_keras.export.nonexistent  # noqa: B018


def test_the_package_itself_uses_no_old_path():
    old = {f"i3d_keras.{name}" for name in _api.MOVED if name not in _api.SUBPACKAGES}
    uses = []
    sources = [*PACKAGE.rglob("*.py"), *(ROOT / "tools").glob("*.py"), *ROOT.glob("tests/**/*.py")]
    for path in sources:
        if path.name in ("_api.py", "test_layout.py"):
            continue
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in old:
                uses.append(f"{path.relative_to(ROOT)}: from {node.module}")
            if isinstance(node, ast.ImportFrom) and node.module == "i3d_keras":
                uses += [f"{path.relative_to(ROOT)}: from i3d_keras import {a.name}"
                         for a in node.names if f"i3d_keras.{a.name}" in old]
    assert not uses


def test_importing_the_package_and_its_folders_loads_no_tensorflow_keras_or_opencv():
    code = ("import sys, i3d_keras, i3d_keras.models, i3d_keras.data, i3d_keras.tasks; "
            "from i3d_keras.data import parallel; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"


def test_a_keras_file_saved_before_the_folders_loads():
    import keras

    import i3d_keras  # noqa: F401 (registers the layers)

    # Written by the flat layout's code (commit 7423d19): every custom layer of
    # i3d_keras, compiled with the training recipe's optimizer, trained a step.
    model = keras.models.load_model(FIXTURES / "saved_before_layout.keras")
    saved = np.load(FIXTURES / "saved_before_layout.npz")
    logits = model.predict({"rgb": saved["rgb"], "flow": saved["flow"]}, verbose=0)
    np.testing.assert_allclose(logits, saved["logits"], rtol=1e-5, atol=1e-5)
    assert int(model.optimizer.iterations.numpy()) == int(saved["iterations"]) == 1
    custom = {type(layer).__module__ for layer in model.layers} - {None}
    assert "i3d_keras.models.layers" in custom
    assert not [m for m in custom if m.startswith("i3d_keras") and m != "i3d_keras.models.layers"]
    classes = {type(layer).__name__ for layer in model.layers}
    assert {"Conv3D", "BatchNormalization", "Pooling3D", "Mean", "WeightedSum",
            "DepthwiseConv3D", "FoldTime", "UnfoldTime", "Snapshots"} <= classes
