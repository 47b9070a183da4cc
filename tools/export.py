"""Exports I3D models: a SavedModel for TF Serving, or a LiteRT (TFLite) file.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017
(two-stream fusion: the streams' logits are added before the softmax).

SavedModels go to saved_models/<name>/<version>/, the layout TF Serving watches;
an existing version is never overwritten unless --overwrite is given. A flag
of the other format (--quantization, --output, --frames ... with a SavedModel,
--version or --top_k with a LiteRT file) is a usage error, not ignored.

Usage:
  # Two-stream fusion of trained streams, with the class names of the run:
  python tools/export.py --rgb_model runs/i3d_rgb_motion/best.keras \
      --flow_model runs/i3d_flow_motion/best.keras --labels runs/i3d_rgb_motion/classes.txt \
      --name i3d_motion --image_size 32

  # One stream, version 3, replacing it if it exists:
  python tools/export.py --rgb_model runs/i3d_rgb_motion/best.keras --name rgb \
      --version 3 --overwrite

  # LiteRT, builtin ops only, float16 weights, fixed 16-frame clips, with a check
  # of LiteRT against Keras on a random clip and XNNPACK's partitions:
  python tools/export.py --format tflite --rgb_model runs/i3d_rgb_motion/best.keras \
      --frames 16 --image_size 32 --quantization float16 --output i3d_rgb.tflite --verify

  # Full-integer int8 (weights and activations), calibrated on 128 clips of a folder of
  # videos (int8 input and output tensors too with --int8_io):
  python tools/export.py --format tflite --rgb_model runs/i3d_rgb_motion/best.keras \
      --frames 16 --quantization int8 --calibration_data videos/ --output i3d_rgb_int8.tflite
"""

import json
import os

from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.utils import outputs  # noqa: E402

_FORMAT = flags.DEFINE_enum("format", "saved_model", ["saved_model", "tflite"], "Output format.")
_RGB = flags.DEFINE_string("rgb_model", None, "RGB stream .keras file.")
_FLOW = flags.DEFINE_string("flow_model", None, "Flow stream .keras file.")
_MODEL = flags.DEFINE_string("model", None, "A .keras fusion model (instead of the streams).")
_LABELS = flags.DEFINE_string("labels", None, "Class names, one per line.")
_NAME = flags.DEFINE_string("name", "i3d", "Model name (folder under --base_dir).")
_BASE = flags.DEFINE_string("base_dir", "saved_models", "SavedModel base folder.")
_VERSION = flags.DEFINE_integer("version", None, "Version (default: the next free one).",
                                 lower_bound=1)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing version (or LiteRT "
                               "--output file).")
_TOP_K = flags.DEFINE_integer("top_k", 5, "Top classes returned by the signatures.",
                              lower_bound=1)
_SIZE = flags.DEFINE_integer("image_size", None, "Crop size (default: the model's, else 224).",
                             lower_bound=1)
_FRAMES = flags.DEFINE_integer("frames", None, "LiteRT: clip length (default: the model's).",
                               lower_bound=1)
_QUANT = flags.DEFINE_enum("quantization", "float32",
                           ["float32", "float16", "dynamic_int8", "int8"],
                           "LiteRT: float32, float16 weights, dynamic_int8 (int8 weights, float "
                           "activations) or int8 (full integer: int8 weights and activations, "
                           "calibrated on --calibration_data).")
_CALIBRATION = flags.DEFINE_string("calibration_data", None, "LiteRT int8: a folder of videos "
                                   "to calibrate the int8 ranges on (clips at the exported "
                                   "length, centre crops, spread over the videos), or a "
                                   "dataset from tools/prepare_dataset.py (its training "
                                   "split).")
_CALIBRATION_CLIPS = flags.DEFINE_integer("calibration_clips", 128, "LiteRT int8: calibration "
                                          "clips taken from --calibration_data (spread over "
                                          "its videos).", lower_bound=1)
_INT8_IO = flags.DEFINE_bool("int8_io", False, "LiteRT int8: int8 input and output tensors "
                             "(default float32, quantised in the file).")
_FLOW_METHOD = flags.DEFINE_enum("flow_method", "tvl1", ["tvl1", "dis", "farneback"],
                                 "LiteRT int8 of a flow stream: how the calibration videos' "
                                 "flow is computed.")
_GRAPH = flags.DEFINE_enum("graph", "4d", ["4d", "keras"], "LiteRT graph: 4d (time folded "
                           "into the batch, BatchNorm folded: XNNPACK runs it whole) or keras "
                           "(the Keras layers as they are, for comparison).")
_OUTPUT = flags.DEFINE_string("output", None, "LiteRT output file (default saved_models/NAME.tflite).")
_VERIFY = flags.DEFINE_bool("verify", True, "LiteRT: compare against Keras on a random clip.")

#: Flags only --format tflite reads, and those of them only --quantization int8 reads.
_TFLITE_ONLY = ("quantization", "output", "frames", "graph", "verify", "int8_io",
                "calibration_data", "calibration_clips", "flow_method")
_INT8_ONLY = ("int8_io", "calibration_data", "calibration_clips", "flow_method")
#: Flags only --format saved_model reads (--base_dir and --name also name the
#: default LiteRT --output).
_SAVED_MODEL_ONLY = ("version", "top_k")


def _one_folder_name(name):
    """--name is one folder under --base_dir: not empty, no separator, not . or .."""
    if not name or name in (".", "..") or set(name) & {"/", os.sep, os.altsep or "/"}:
        raise flags.ValidationError(
            "expected one folder name under --base_dir (not empty, no '/', not '.' or '..'). "
            f"Received: {name!r}")
    return True


flags.register_validator("name", _one_folder_name)


def _refuse_unused(names, applies_to, received_with):
    """A usage error naming those of `names` given on the command line: the
    export would ignore them (e.g. --quantization with a SavedModel)."""
    given = [name for name in names if flags.FLAGS[name].present
             # The default quantization says what a SavedModel is anyway.
             and not (name == "quantization" and _QUANT.value == _QUANT.default)]
    if given:
        named = [f"--{name}" for name in given]
        listed = f"{', '.join(named[:-1])} and {named[-1]}" if len(named) > 1 else named[0]
        console.fail(f"{listed} {'is' if len(given) == 1 else 'are'} for {applies_to} only. "
                     f"Received: {' '.join(flags.FLAGS[name].serialize() for name in given)} "
                     f"with {received_with}")


def _check_flags():
    """Every flag and path checked before a model loads; returns the LiteRT
    output path."""
    if _FORMAT.value == "tflite":
        _refuse_unused(_SAVED_MODEL_ONLY, "--format saved_model", "--format tflite")
        if _OUTPUT.value:  # they would only name the default --output
            _refuse_unused(("base_dir", "name"), "--format saved_model and the default LiteRT "
                           "--output (BASE_DIR/NAME.tflite)", f"--output={_OUTPUT.value}")
        if _QUANT.value != "int8":
            _refuse_unused(_INT8_ONLY, "--quantization int8", f"--quantization {_QUANT.value}")
    else:
        default = "" if flags.FLAGS["format"].present else " (the default)"
        _refuse_unused(_TFLITE_ONLY, "--format tflite", f"--format saved_model{default}")
    models = [(flag, value) for flag, value in
              (("model", _MODEL.value), ("rgb_model", _RGB.value), ("flow_model", _FLOW.value))
              if value]
    if not models:
        console.fail("give --rgb_model and/or --flow_model, or --model")
    if _MODEL.value and (_RGB.value or _FLOW.value):
        console.fail("give --model (a fusion model) or the streams (--rgb_model, "
                     "--flow_model), not both")
    for flag, value in models:
        outputs.check_input_path(value, flag=flag, kind="file")
    if _LABELS.value:
        outputs.check_input_path(_LABELS.value, flag="labels", kind="file")
    inputs = [value for _, value in models] + [_LABELS.value]
    outputs.check_output_dir(_BASE.value, flag="base_dir", inputs=inputs)
    if _CALIBRATION.value:
        from i3d_keras.export import calibration  # noqa: PLC0415 (OpenCV, no TensorFlow)

        outputs.check_input_path(_CALIBRATION.value, flag="calibration_data", kind="folder")
        try:
            calibration.check_calibration_folder(_CALIBRATION.value, flow=bool(_FLOW.value))
        except calibration.CalibrationError as error:
            console.fail(f"--calibration_data: {error}")
    if _FORMAT.value != "tflite":
        _check_version(inputs)
        return None
    if _QUANT.value == "int8" and not _CALIBRATION.value:
        console.fail("--quantization int8 needs --calibration_data (a folder of videos or a "
                     "prepared dataset). Received: --quantization=int8 without it")
    output = _OUTPUT.value or os.path.join(_BASE.value, f"{_NAME.value}.tflite")
    outputs.check_output_file(output, flag="output", inputs=inputs, overwrite=_OVERWRITE.value,
                              create_parent=not _OUTPUT.value)
    return output


def _check_version(inputs):
    """--name is not a file, and an existing --version is replaced only with
    --overwrite: checked here, before a model loads."""
    model_dir = os.path.join(_BASE.value, _NAME.value)
    outputs.check_output_dir(model_dir, flag="name", inputs=inputs)
    if _VERSION.value is None:  # the next free version
        return
    target = os.path.join(model_dir, str(_VERSION.value))
    if os.path.exists(target) and not _OVERWRITE.value:
        raise outputs.OutputError(f"--version {_VERSION.value} of --name {_NAME.value!r} "
                                  f"exists at {target!r}; pass --overwrite to replace it")


def _load(flag, path, stream=None):
    """The model of `--flag`; a usage error for a file that is not a Keras
    model or a stream model of the other stream."""
    from i3d_keras.weights import pretrained  # noqa: PLC0415

    try:
        model = pretrained.load_keras_model(path)
    except (FileNotFoundError, ValueError) as error:
        console.fail(f"--{flag}: {error}")
    channels = {tensor.shape[-1] for tensor in model.inputs}
    wanted = {"rgb": 3, "flow": 2}.get(stream)
    if wanted is not None and channels != {wanted}:
        other = "a flow" if channels == {2} else "an RGB" if channels == {3} else "a two-stream"
        console.fail(f"--{flag}: {other} model where {'an RGB' if stream == 'rgb' else 'a flow'}"
                     f" model is expected (inputs with {sorted(channels)} channels). "
                     f"Received: {path!r}")
    return model


def _class_names(model):
    """--labels, else the classes.txt of the run folder a model file lies in
    (tools/train.py writes it), else None."""
    from i3d_keras.tasks import inference  # noqa: PLC0415

    output = model.output["logits"] if isinstance(model.output, dict) else model.output
    if _LABELS.value:
        names = inference.read_class_names(_LABELS.value)
        if len(names) != output.shape[-1]:
            console.fail(f"--labels must name each of the model's {output.shape[-1]} classes. "
                         f"Received: {len(names)} names in {_LABELS.value!r}")
        return names
    for path in (_MODEL.value, _RGB.value, _FLOW.value):
        found = path and os.path.join(os.path.dirname(path), inference.RUN_CLASSES_FILE)
        if found and os.path.isfile(found):
            names = inference.read_class_names(found)
            if len(names) == output.shape[-1]:
                console.info(f"export: class names from {found}")
                return names
    return None


def main(argv):
    if len(argv) > 1:
        console.fail(f"unexpected arguments {argv[1:]}")
    tflite_output = _check_flags()
    import numpy as np  # noqa: PLC0415

    import i3d_keras  # noqa: PLC0415
    from i3d_keras.export import exporters, litert_memory  # noqa: PLC0415

    if _MODEL.value:
        model = _load("model", _MODEL.value)
    else:
        rgb = _load("rgb_model", _RGB.value, "rgb") if _RGB.value else None
        flow = _load("flow_model", _FLOW.value, "flow") if _FLOW.value else None
        model = i3d_keras.TwoStreamI3D(rgb, flow) if (rgb and flow) else (rgb or flow)
    model_size = model.inputs[0].shape[2]
    image_size = _SIZE.value or model_size or 224
    class_names = _class_names(model)
    try:
        if _FORMAT.value == "saved_model":
            path = exporters.export_saved_model(
                model, _BASE.value, _NAME.value, _VERSION.value, class_names=class_names,
                top_k=_TOP_K.value, image_size=image_size, overwrite=_OVERWRITE.value)
            config, _ = exporters.update_models_config(_BASE.value, _NAME.value)
            if f'name: "{_NAME.value}"' not in config.read_text(encoding="utf-8",
                                                                  errors="replace"):
                console.info(f"export: {config} was edited by hand and does not list "
                             f"{_NAME.value!r}; add it there to serve several models")
            channels = {tensor.shape[-1] for tensor in model.inputs}
            raw = " and ".join(name for c, name in ((3, "raw uint8 frames"), (2, "float flow"))
                               if c in channels)
            print(f"SavedModel written to {path} (TF Serving base path "
                  f"{os.path.dirname(path)}); signatures: serving_default ({raw}), "
                  "preprocessed (float clips)")
            return
        extra = {}
        if _QUANT.value == "int8":
            extra = dict(representative_dataset=_CALIBRATION.value,
                         num_calibration_clips=_CALIBRATION_CLIPS.value, int8_io=_INT8_IO.value,
                         flow_method=_FLOW_METHOD.value)
        path = exporters.export_tflite(model, tflite_output, quantization=_QUANT.value,
                                       frames=_FRAMES.value, image_size=_SIZE.value,
                                       graph=_GRAPH.value, class_names=class_names, **extra)
        delegation = exporters.litert_delegation(path)
        outside = ", ".join(f"{n} {op}" for op, n in delegation["outside"].items()) or "none"
        arena = litert_memory.litert_memory(path)["arena_mb"]
        print(f"LiteRT model written to {path} ({os.path.getsize(path) / 1e6:.1f} MB), ops: "
              f"{', '.join(exporters.tflite_builtin_ops(path))}; XNNPACK partitions: "
              f"{delegation['partitions']}, operators outside XNNPACK: {outside}; "
              f"activation arena {arena:.1f} MB")
        if _VERIFY.value:
            interpreter = exporters.litert_interpreter(path)
            rng = np.random.default_rng(0)
            clip = {k: rng.uniform(-1, 1, d["shape"]).astype("float32")
                    for k, d in interpreter.get_signature_runner().get_input_details().items()}
            print(json.dumps(exporters.verify_tflite(model, path, clip)))
    except exporters.ExportError as error:
        console.fail(f"{error}", console.EXIT_FAILED)


if __name__ == "__main__":
    console.run(main)
