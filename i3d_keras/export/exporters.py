"""Export of I3D models: SavedModel for TF Serving, and LiteRT (TFLite) files.

SavedModels are written in the layout TF Serving watches,
`saved_models/<name>/<version>/`, atomically (a temporary folder renamed into
place, so that a watching server never loads half a model), and never over an
existing version unless asked. LiteRT files use builtin ops only (no Flex), so
they run in the standalone `ai-edge-litert` interpreter: the package's 3D
poolings are built from 2D poolings for this reason (see `i3d_keras.models.layers`).
They hold the model rebuilt in 4-D tensors (`i3d_keras.export.litert_graph`),
which LiteRT's XNNPACK delegate runs whole (`litert_delegation`), in float32,
float16, dynamic-range int8 or full-integer int8 calibrated on clips
(`i3d_keras.export.calibration`).

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017
(two-stream fusion: logits added before the softmax).
"""

import contextlib
import io
import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from i3d_keras.data import preprocessing
from i3d_keras.utils import outputs

SERVING_SIGNATURE = "serving_default"
PREPROCESSED_SIGNATURE = "preprocessed"
SHORT_SIDE = 256
TFLITE_QUANTIZATIONS = ("float32", "float16", "dynamic_int8", "int8")
TFLITE_GRAPHS = ("4d", "keras")


class ExportError(ValueError):
    """An export that cannot proceed (existing version, bad arguments)."""


def _streams(model):
    """{'rgb': shape, 'flow': shape} of the model's inputs (without batch)."""
    streams = {}
    for tensor in model.inputs:
        name = tensor.name.split(":")[0]
        key = "rgb" if tensor.shape[-1] == 3 else "flow" if tensor.shape[-1] == 2 else None
        if key is None or name not in ("rgb", "flow"):
            raise ExportError(
                "Expected a model with inputs named 'rgb' (3 channels) and/or 'flow' "
                f"(2 channels). Received: input {name!r} with shape {tuple(tensor.shape)}"
            )
        streams[key] = tuple(tensor.shape[1:])
    return streams


def _call_for_logits(model, streams, inputs, **kwargs):
    """`model`'s logits for `{'rgb', 'flow'}` inputs: a one-stream model takes
    its tensor; two-stream models take the dict and return logits or
    TwoStreamI3D's `{"logits", ...}`."""
    if len(model.inputs) == 1 and not isinstance(model.output, dict):
        (key,) = streams
        return model(inputs[key], **kwargs)
    out = model({k: inputs[k] for k in streams}, **kwargs)
    return out["logits"] if isinstance(out, dict) else out


def _for_clips(model, frames, height, width):
    """`model`, rebuilt for clips of `frames` x `height` x `width` where its
    input fixes another shape (`i3d_keras.models.clip_shape`)."""
    from i3d_keras.models import clip_shape  # noqa: PLC0415

    wanted = (frames, height, width)
    if all(have in (None, want) for t in model.inputs
           for have, want in zip(t.shape[1:4], wanted)):
        return model
    try:
        return clip_shape.with_clip_shape(model, frames=frames, image_size=(height, width))
    except ValueError as error:
        raise ExportError(str(error)) from None


def _num_classes(model):
    """The number of logits of a stream, two-stream or comparison model."""
    output = model.output["logits"] if isinstance(model.output, dict) else model.output
    return int(output.shape[-1])


def _logits_fn(model):
    """A function from {'rgb', 'flow'} inputs to logits, whatever the model type."""
    streams = _streams(model)

    def logits(inputs):
        return tf.cast(_call_for_logits(model, streams, inputs, training=False), tf.float32)

    if not isinstance(model.output, dict) and model.layers[-1].name == "Predictions":
        raise ExportError(
            "Expected a model ending at its logits (final_endpoint='Logits') or a "
            f"two-stream model. Received: model {model.name!r} ending at 'Predictions'"
        )
    return logits, streams


def serving_preprocess(frames, flow=None, image_size=224, short_side=SHORT_SIDE):
    """The serving graph's preprocessing of raw clips (the paper's test protocol).

    Raw decoded frames are resized so the short side is `short_side`
    (bilinear), centre-cropped to `image_size` and scaled to [-1, 1]. Flow
    (already in [-1, 1], computed at the raw frames' resolution) is resized and
    cropped the same way; its vectors are scaled by the resize factor, since a
    displacement of d pixels becomes d * factor pixels, and clipped to [-1, 1].

    Args:
        frames: uint8 `[batch, frames, height, width, 3]`, or None (flow only).
        flow: optional float32 `[batch, frames, height, width, 2]`.
        image_size: crop size.
        short_side: resize target of the shorter side.

    Returns:
        `(rgb, flow)` float32 `[batch, frames, image_size, image_size, C]`
        (None where not given).
    """

    def per_clip(clip, scale_values):
        shape = tf.shape(clip)
        resized = preprocessing.resize_short_side(clip, short_side)
        out = preprocessing.center_crop(resized, image_size)
        if scale_values:
            factor = tf.cast(tf.shape(resized)[1:3], tf.float32) / tf.cast(shape[1:3], tf.float32)
            out = tf.clip_by_value(out * tf.stack([factor[1], factor[0]]), -1.0, 1.0)
        return out

    def batched(clips, channels, scale_values):
        shape = tf.shape(clips)
        merged = tf.reshape(clips, tf.concat([[-1], shape[2:]], 0))  # [B*T, H, W, C]
        out = per_clip(merged, scale_values)
        return tf.reshape(out, tf.stack([shape[0], shape[1], image_size, image_size, channels]))

    rgb = None if frames is None else preprocessing.scale_rgb(batched(frames, 3, False))
    if flow is not None:
        flow = batched(tf.cast(flow, tf.float32), 2, True)
    return rgb, flow


class _ServingModule(tf.Module):
    def __init__(self, model, class_names, top_k, image_size):
        super().__init__()
        self.model = model
        self._logits, self._streams = _logits_fn(model)
        num_classes = int(model.output["logits"].shape[-1] if isinstance(model.output, dict)
                          else model.output.shape[-1])
        if class_names is None:
            class_names = [str(i) for i in range(num_classes)]
        if len(class_names) != num_classes:
            raise ExportError(
                f"Expected {num_classes} class names (one per logit). "
                f"Received: {len(class_names)} class names"
            )
        self.class_names = tf.constant(list(class_names))
        self.top_k = min(top_k, num_classes)
        self.image_size = image_size

    def _outputs(self, inputs):
        logits = self._logits(inputs)
        top = tf.math.top_k(logits, k=self.top_k)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits),
            "top_k_indices": top.indices,
            "top_k_names": tf.gather(self.class_names, top.indices),
            "top_k_probabilities": tf.gather(tf.nn.softmax(logits), top.indices, batch_dims=1),
        }

    def raw_fn(self, **inputs):
        rgb, flow = serving_preprocess(inputs.get("frames"), inputs.get("flow"), self.image_size)
        return self._outputs({"rgb": rgb, "flow": flow})

    def preprocessed_fn(self, **inputs):
        return self._outputs(inputs)


def _signatures(module, streams):
    raw_specs = {}
    if "rgb" in streams:
        raw_specs["frames"] = tf.TensorSpec([None, None, None, None, 3], tf.uint8, name="frames")
    if "flow" in streams:
        raw_specs["flow"] = tf.TensorSpec([None, None, None, None, 2], tf.float32, name="flow")
    pre_specs = {
        key: tf.TensorSpec([None, *shape], tf.float32, name=key) for key, shape in streams.items()
    }
    signatures = {
        PREPROCESSED_SIGNATURE: tf.function(module.preprocessed_fn).get_concrete_function(**pre_specs)
    }
    signatures[SERVING_SIGNATURE] = tf.function(module.raw_fn).get_concrete_function(**raw_specs)
    return signatures


def version_dir(base_dir, name, version=None):
    """`base_dir/name/version`; the next free integer version when None.

    Raises:
        ExportError: `name` is not one folder name (empty, `.`, `..`, or with a
            path separator: the model would land outside `base_dir/name`), or
            `version` is below 1.
    """
    name = str(name)
    if not name or name in (".", "..") or set(name) & {"/", os.sep, os.altsep or "/"}:
        raise ExportError("Expected `name` to be one folder name (not empty, no '/', not '.' "
                          f"or '..'). Received: name={name!r}")
    model_dir = Path(base_dir) / name
    if version is None:
        existing = [int(p.name) for p in model_dir.glob("*") if p.name.isdigit()]
        version = max(existing, default=0) + 1
    if int(version) < 1:
        raise ExportError(f"Expected a positive integer version. Received: version={version}")
    return model_dir / str(int(version))


def export_saved_model(
    model,
    base_dir="saved_models",
    name="i3d",
    version=None,
    *,
    class_names=None,
    top_k=5,
    image_size=224,
    overwrite=False,
):
    """Writes a SavedModel for TF Serving at `base_dir/name/version/`.

    Signatures:
      * `serving_default`: raw decoded clips, uint8 `frames`
        `[batch, frames, height, width, 3]` of any size (and, for two-stream
        models, float32 `flow` `[batch, frames, height, width, 2]` in [-1, 1]);
        resized to short side 256, centre-cropped and scaled in the graph.
      * `preprocessed`: float32 clips already at the model's input size, named
        `rgb` / `flow`.
    Both return `logits`, `probabilities`, `top_k_indices`, `top_k_names` and
    `top_k_probabilities`.

    Args:
        model: a stream model (ending at Logits) or a `TwoStreamI3D` model.
        base_dir: the folder TF Serving watches (`--model_base_path` is
            `base_dir/name`).
        name: model name.
        version: integer version; default: the next free one.
        class_names: one name per class (default: the class indices).
        top_k: number of top classes returned.
        image_size: the crop size of the raw-frames signature.
        overwrite: replace an existing version (otherwise refused).

    Returns:
        The version folder (`pathlib.Path`).

    Raises:
        ExportError: the version exists and `overwrite` is False, or the model
            or class names do not fit.

    Example:

    >>> rgb = InceptionI3D(10, frames=16, image_size=64)
    >>> path = export_saved_model(rgb, "/tmp/models", "i3d_rgb", image_size=64)
    """
    target = version_dir(base_dir, name, version)
    if target.exists() and not overwrite:
        raise ExportError(
            "Expected a version that does not exist, or overwrite=True to replace it; "
            f"version {target.name} of {name!r} exists at {str(target)!r}. Received: "
            f"version={target.name}, overwrite=False"
        )
    # The raw-frames signature crops to image_size: a model fixed to another
    # frame size is rebuilt for it (the same weights), and for clips of any
    # length where it can take them (I3D: a clip fixed by training, 8 frames,
    # made the 'preprocessed' signature refuse a whole video).
    trained_frames = model.inputs[0].shape[1]  # recorded: evaluation's default clip
    try:
        model = _for_clips(model, None, image_size, image_size)
    except ExportError:  # a head that needs its clip length (a flattened clip)
        model = _for_clips(model, model.inputs[0].shape[1], image_size, image_size)
    module = _ServingModule(model, class_names, top_k, image_size)
    signatures = _signatures(module, module._streams)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    outputs.set_default_mode(tmp)  # mkdtemp's 0700: TF Serving's user could not read it
    try:
        tf.saved_model.save(module, str(tmp), signatures=signatures)
        (tmp / "assets.extra").mkdir(exist_ok=True)
        (tmp / "assets.extra" / "i3d_keras.json").write_text(json.dumps({
            "streams": {k: list(v) for k, v in module._streams.items()},
            "class_names": [c.decode() for c in module.class_names.numpy()],
            "image_size": image_size,
            "short_side": SHORT_SIDE,
            # The clip length the model was built (trained) for; None: any.
            "frames": trained_frames,
        }, indent=1))
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def update_models_config(base_dir, name, serving_root="/models"):
    """Adds `name` to `base_dir/models.config`, TF Serving's list of models.

    The file lists every model folder under `base_dir` that holds a version
    (`serving_root/<name>`, the path the Docker command of the export guide
    mounts). A file this function did not write (edited by hand, or another
    tool's) is left as it is.

    Returns:
        `(path, written)`: whether the file now lists the model because this
        call wrote it (False: an edited file, left alone; or it listed it).
    """
    path = Path(base_dir) / "models.config"
    names = sorted(p.name for p in Path(base_dir).iterdir()
                   if p.is_dir() and not p.name.startswith(".")
                   and any(v.name.isdigit() for v in p.iterdir()))
    if name not in names:
        names.append(name)
    if path.exists():
        text = path.read_text(encoding="utf-8", errors="replace")
        listed = re.findall(r'name: "([^"]*)"', text)
        if text != models_config([(n, f"{serving_root}/{n}") for n in listed]):
            return path, False  # written by someone else: theirs to edit
        if sorted(listed) == sorted(names):
            return path, False
    with outputs.atomic_open(path) as f:
        f.write(models_config([(n, f"{serving_root}/{n}") for n in sorted(names)]))
    return path, True


def models_config(entries):
    """TF Serving's `models.config` text for `[(name, base_path), ...]`."""
    blocks = []
    for name, base_path in entries:
        blocks.append(
            "  config {\n"
            f"    name: \"{name}\"\n"
            f"    base_path: \"{base_path}\"\n"
            "    model_platform: \"tensorflow\"\n"
            "  }"
        )
    return "model_config_list {\n" + "\n".join(blocks) + "\n}\n"


def _clip_shapes(streams, frames, image_size):
    """`{stream: (T, H, W, C)}`, fixed: the model's own where not given."""
    shapes = {}
    for key, shape in streams.items():
        t = frames if frames is not None else shape[0]
        h = image_size if image_size is not None else shape[1]
        w = image_size if image_size is not None else shape[2]
        if None in (t, h, w):
            raise ExportError(
                "LiteRT export needs a fixed clip shape: pass frames and image_size. "
                f"Received: frames={t}, image_size={h if h == w else (h, w)}"
            )
        shapes[key] = (t, h, w, shape[-1])
    return shapes


def _fixed_shape_logits_model(model, streams, clip_shapes):
    """A batch-1, fixed-shape Keras model from {'rgb', 'flow'} inputs to logits."""
    inputs = {key: keras.Input(clip_shapes[key], batch_size=1, name=key) for key in streams}
    logits = _call_for_logits(model, streams, inputs)
    return keras.Model(inputs, {"logits": logits}, name=f"{model.name}_litert")


def _converter(model, streams, clip_shapes, graph):
    """The LiteRT converter of `model`'s logits, and the layers left in 5-D."""
    if graph == "keras":
        fixed = _fixed_shape_logits_model(model, streams, clip_shapes)
        # from_keras_model freezes the variables into constants (a concrete
        # function with captured Keras 3 variables converts to VAR_HANDLE ops).
        return tf.lite.TFLiteConverter.from_keras_model(fixed), ()
    from i3d_keras.export import litert_graph  # noqa: PLC0415

    function = litert_graph.logits_function(model, clip_shapes)
    module = tf.Module()
    module.weights = [v.value for v in model.weights]  # frozen by the converter
    return tf.lite.TFLiteConverter.from_concrete_functions([function], module), \
        function.fallbacks


def export_tflite(model, path, *, quantization="float32", frames=None, image_size=None,
                  representative_dataset=None, num_calibration_clips=None, int8_io=False,
                  graph="4d", flow_method="tvl1", class_names=None):
    """Converts a stream or two-stream model to a LiteRT flatbuffer, builtin ops only.

    The clip shape is fixed in the file (batch 1, `frames` frames of
    `image_size` pixels): export one file per clip length you serve. By
    default the file holds the model rebuilt in 4-D tensors
    (`i3d_keras.export.litert_graph`: time folded into the batch, BatchNorm
    folded into the convolutions), a graph LiteRT's XNNPACK delegate takes
    whole (`litert_delegation`: one partition for the package's models, float
    and int8); `graph="keras"` converts the Keras layers as they are (5-D
    slices that XNNPACK rejects: I3D ran in 13 partitions, about 2x slower).

    Quantisations:
      * `"float32"`;
      * `"float16"`: weights stored as float16 (half the file), computed in
        float32;
      * `"dynamic_int8"`: int8 weights, float activations quantised on the fly;
      * `"int8"`: full-integer post-training quantisation: int8 weights
        (per channel) and activations, their ranges calibrated on
        `representative_dataset`; float32 input and output (quantised and
        dequantised in the file), or int8 ones with `int8_io=True` (for
        integer-only accelerators: `run_litert` quantises and dequantises
        with the file's scales).

    Args:
        model: a stream model ending at Logits, a `TwoStreamI3D` model, or a
            comparison architecture (`i3d_keras.models.baselines.classifier`).
        path: output `.tflite` file.
        quantization: one of `TFLITE_QUANTIZATIONS`.
        frames: clip length (default: the model's, if fixed).
        image_size: frame size (default: the model's, if fixed).
        representative_dataset: `"int8"` only: the calibration clips, a
            folder of videos, a `tf.data.Dataset` of clips (batched or not,
            `(clips, labels)` pairs allowed) or any iterable of them; see
            `i3d_keras.export.calibration.calibration_clips`.
        num_calibration_clips: clips used for calibration (default
            `calibration.DEFAULT_CALIBRATION_CLIPS`, 128).
        int8_io: `"int8"` only: int8 input and output tensors.
        graph: `"4d"` (default) or `"keras"` (see above).
        flow_method: how a folder's videos get their flow for flow streams.
        class_names: one name per logit, kept in the file's `"i3d_keras"`
            metadata with its streams and clip shape
            (`i3d_keras.export.litert_metadata`; `tools/predict.py` reads them).

    Returns:
        The written path (`pathlib.Path`).

    Raises:
        ExportError: unknown quantisation or graph, calibration data missing,
            empty or of the wrong shape, or the converter needs ops that are
            not LiteRT builtins.

    Example:

    >>> model = InceptionI3D(10, frames=8, image_size=32)
    >>> train, _ = motion_datasets(num_train=64, num_frames=8, size=32)
    >>> export_tflite(model, "/tmp/i3d_int8.tflite", quantization="int8",
    ...               representative_dataset=train)  # doctest: +SKIP
    PosixPath('/tmp/i3d_int8.tflite')
    """
    if quantization not in TFLITE_QUANTIZATIONS:
        raise ExportError(
            f"`quantization` must be one of {TFLITE_QUANTIZATIONS}. "
            f"Received: quantization={quantization!r}"
        )
    if graph not in TFLITE_GRAPHS:
        raise ExportError(f"`graph` must be one of {TFLITE_GRAPHS}. Received: graph={graph!r}")
    if quantization != "int8" and (representative_dataset is not None or int8_io):
        raise ExportError(
            "Calibration data and int8 input/output are for full-integer files "
            "(quantization='int8'). Received: quantization="
            f"{quantization!r}, representative_dataset="
            f"{'given' if representative_dataset is not None else None}, int8_io={int8_io}")
    if quantization == "int8" and representative_dataset is None:
        raise ExportError(
            "Full-integer quantization='int8' needs calibration clips: pass "
            "representative_dataset (a folder of videos, or a tf.data of clips). "
            "Received: representative_dataset=None")
    _logits_fn(model)  # validates the model's outputs
    # LiteRT computes in float32 (or its own quantisations): a model built
    # under a mixed policy is rebuilt in float32, same weights.
    from i3d_keras.runtime import precision  # noqa: PLC0415

    model = precision.with_precision(model, "float32")
    streams = _streams(model)
    clip_shapes = _clip_shapes(streams, frames, image_size)
    model = _for_clips(model, *next(iter(clip_shapes.values()))[:3])
    num_classes = _num_classes(model)
    if class_names is not None and len(class_names) != num_classes:
        raise ExportError(f"Expected {num_classes} class names (one per logit). Received: "
                          f"{len(class_names)} class names")
    clips = None
    if quantization == "int8":
        from i3d_keras.export import calibration  # noqa: PLC0415

        try:
            clips = calibration.calibration_clips(
                representative_dataset, clip_shapes,
                num_calibration_clips or calibration.DEFAULT_CALIBRATION_CLIPS,
                flow_method=flow_method)
        except calibration.CalibrationError as error:
            raise ExportError(str(error)) from None
    converter, fallbacks = _converter(model, streams, clip_shapes, graph)
    if fallbacks:
        warnings.warn(f"LiteRT export: layers computed on 5-D clips as Keras computes them "
                      f"(XNNPACK may split the graph there): {', '.join(fallbacks)}",
                      stacklevel=2)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = lambda: iter(clips)
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    try:
        # Keras' export inside the converter prints its temporary SavedModel's
        # signatures (~200 lines) to stdout.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            # The converter calls the dict-input model with a list of inputs.
            warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
            # Calibration runs tf.lite's own (deprecated) interpreter.
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is")
            flatbuffer = converter.convert()
    except Exception as error:  # the converter raises several internal types
        raise ExportError(f"LiteRT conversion with builtin ops only failed: {error}") from error
    from i3d_keras import __version__  # noqa: PLC0415
    from i3d_keras.export import litert_metadata  # noqa: PLC0415

    frames, height, width = next(iter(clip_shapes.values()))[:3]
    flatbuffer = litert_metadata.add_metadata(flatbuffer, {
        "class_names": None if class_names is None else [str(c) for c in class_names],
        "num_classes": num_classes, "streams": [s for s in ("rgb", "flow") if s in streams],
        "frames": frames, "image_size": [height, width], "quantization": quantization,
        "int8_io": bool(int8_io), "i3d_keras": __version__})
    path = Path(path)
    with outputs.atomic_path(path) as tmp:
        tmp.write_bytes(flatbuffer)
    return path


def litert_interpreter(path, num_threads=None):
    """An `ai_edge_litert` interpreter for `path` (falls back to `tf.lite`)."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
    except ImportError:  # pragma: no cover - the test extra installs it
        Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
    interpreter.allocate_tensors()
    return interpreter


def _quantize(x, detail):
    """float32 -> the tensor's integer type with its scale and zero point."""
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale) + zero, info.min, info.max).astype(detail["dtype"])


def run_litert(interpreter, inputs):
    """Runs a LiteRT interpreter on `{'rgb': ..., 'flow': ...}` and returns float logits.

    Float clips are quantised for a file with int8 inputs, and int8 logits
    dequantised, with the scales and zero points the file holds.
    """
    runner = interpreter.get_signature_runner()
    expected = runner.get_input_details()
    missing = [k for k in expected if k not in inputs]
    if missing:
        raise ValueError(f"Expected inputs {sorted(expected)}. Received: {sorted(inputs)}")
    feed = {}
    for key, detail in expected.items():
        x = np.asarray(inputs[key], dtype=np.float32)
        if tuple(x.shape) != tuple(detail["shape"]):
            raise ValueError(
                f"Expected {key!r} of shape {tuple(detail['shape'])}. Received: shape={x.shape}"
            )
        feed[key] = _quantize(x, detail) if detail["dtype"] != np.float32 else x
    logits = runner(**feed)["logits"]
    detail = runner.get_output_details()["logits"]
    if detail["dtype"] != np.float32:
        scale, zero = detail["quantization"]
        logits = (logits.astype(np.float32) - zero) * scale
    return logits


def verify_tflite(model, path, inputs):
    """Runs the same clip through Keras and LiteRT.

    Keras computes in float32, as the file does (a model trained in a mixed
    precision would otherwise differ by its own rounding, not the file's).

    Returns:
        `{"max_abs_logit_diff": float, "top1_agreement": float}`.
    """
    from i3d_keras.runtime import precision  # noqa: PLC0415

    clip = next(iter(inputs.values()))
    model = _for_clips(precision.with_precision(model, "float32"), *np.shape(clip)[1:4])
    logits_fn, streams = _logits_fn(model)
    keras_logits = logits_fn({k: tf.constant(inputs[k], tf.float32) for k in streams}).numpy()
    lite_logits = run_litert(litert_interpreter(path), inputs)
    return {
        "max_abs_logit_diff": float(np.max(np.abs(keras_logits - lite_logits))),
        "top1_agreement": float(np.mean(
            np.argmax(keras_logits, -1) == np.argmax(lite_logits, -1))),
    }


def litert_delegation(path, num_threads=None):
    """How LiteRT's default delegate (XNNPACK on CPUs) splits a file's graph.

    The interpreter keeps the operators a delegate replaced in its node list
    and appends one `DELEGATE` node per partition; an operator belongs to a
    partition when it lies between that node's inputs and outputs. Operators
    in no partition run in LiteRT's reference kernels, with a copy at every
    border.

    Args:
        path: a `.tflite` file.
        num_threads: interpreter threads (the partitioning does not depend on it).

    Returns:
        `{"partitions": n, "delegated_ops": n, "ops": n, "outside": {op: count}}`
        (`partitions` 1 and `outside` empty: XNNPACK runs the whole graph).

    Example:

    >>> litert_delegation("i3d_rgb.tflite")  # doctest: +SKIP
    {'partitions': 1, 'delegated_ops': 149, 'ops': 149, 'outside': {}}
    """
    interpreter = litert_interpreter(path, num_threads=num_threads)
    nodes = interpreter._get_ops_details()
    delegates = [n for n in nodes if n["op_name"] == "DELEGATE"]
    original = [n for n in nodes if n["op_name"] != "DELEGATE"]
    # -1 marks an optional input or output left out.
    producer = {t: n for n in original for t in n["outputs"] if t >= 0}
    covered = set()
    for delegate in delegates:
        stop = set(delegate["inputs"])
        stack = list(delegate["outputs"])
        while stack:
            tensor = stack.pop()
            node = producer.get(tensor)
            if tensor in stop or node is None or node["index"] in covered:
                continue
            covered.add(node["index"])
            stack.extend(node["inputs"])
    outside = {}
    for node in original:
        if node["index"] not in covered:
            outside[node["op_name"]] = outside.get(node["op_name"], 0) + 1
    return {"partitions": len(delegates), "delegated_ops": len(covered), "ops": len(original),
            "outside": dict(sorted(outside.items()))}


def tflite_builtin_ops(path):
    """The operator names used by a LiteRT file (to check for Flex ops)."""
    from tensorflow.lite.python import schema_py_generated as schema  # noqa: PLC0415

    from i3d_keras.export import litert_memory  # noqa: PLC0415

    model = schema.Model.GetRootAsModel(Path(path).read_bytes(), 0)
    return sorted(set(litert_memory.operator_code_names(model)))


__all__ = [
    "ExportError",
    "export_saved_model",
    "export_tflite",
    "litert_delegation",
    "litert_interpreter",
    "models_config",
    "update_models_config",
    "run_litert",
    "serving_preprocess",
    "tflite_builtin_ops",
    "verify_tflite",
    "version_dir",
]
