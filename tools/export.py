"""Exports I3D models: a SavedModel for TF Serving, or a LiteRT (TFLite) file.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017
(two-stream fusion: the streams' logits are added before the softmax).

SavedModels go to saved_models/<name>/<version>/, the layout TF Serving watches;
an existing version is never overwritten unless --overwrite is given.

Usage:
  # Two-stream fusion of trained streams, with the class names of the run:
  python tools/export.py --rgb_model runs/i3d_rgb_motion/best.keras \
      --flow_model runs/i3d_flow_motion/best.keras --labels runs/i3d_rgb_motion/classes.txt \
      --name i3d_motion --image_size 32

  # One stream, version 3, replacing it if it exists:
  python tools/export.py --rgb_model runs/i3d_rgb_motion/best.keras --name rgb \
      --version 3 --overwrite

  # LiteRT, builtin ops only, float16 weights, fixed 16-frame clips, with a check
  # of LiteRT against Keras on a random clip:
  python tools/export.py --format tflite --rgb_model runs/i3d_rgb_motion/best.keras \
      --frames 16 --image_size 32 --quantization float16 --output i3d_rgb.tflite --verify
"""

import json
import os

from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

_FORMAT = flags.DEFINE_enum("format", "saved_model", ["saved_model", "tflite"], "Output format.")
_RGB = flags.DEFINE_string("rgb_model", None, "RGB stream .keras file.")
_FLOW = flags.DEFINE_string("flow_model", None, "Flow stream .keras file.")
_MODEL = flags.DEFINE_string("model", None, "A .keras fusion model (instead of the streams).")
_LABELS = flags.DEFINE_string("labels", None, "Class names, one per line.")
_NAME = flags.DEFINE_string("name", "i3d", "Model name (folder under --base_dir).")
_BASE = flags.DEFINE_string("base_dir", "saved_models", "SavedModel base folder.")
_VERSION = flags.DEFINE_integer("version", None, "Version (default: the next free one).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing version.")
_TOP_K = flags.DEFINE_integer("top_k", 5, "Top classes returned by the signatures.")
_SIZE = flags.DEFINE_integer("image_size", None, "Crop size (default: the model's, else 224).")
_FRAMES = flags.DEFINE_integer("frames", None, "LiteRT: clip length (default: the model's).")
_QUANT = flags.DEFINE_enum("quantization", "float32", ["float32", "float16", "dynamic_int8"],
                           "LiteRT weight format.")
_OUTPUT = flags.DEFINE_string("output", None, "LiteRT output file (default saved_models/NAME.tflite).")
_VERIFY = flags.DEFINE_bool("verify", True, "LiteRT: compare against Keras on a random clip.")


def _load(path):
    import keras  # noqa: PLC0415

    if not os.path.exists(path):
        console.fail(f"no model file at {path!r}")
    return keras.models.load_model(path)


def main(argv):
    del argv
    import numpy as np  # noqa: PLC0415

    import i3d_keras  # noqa: PLC0415
    from i3d_keras.export import exporters  # noqa: PLC0415

    if _MODEL.value:
        model = _load(_MODEL.value)
    elif _RGB.value or _FLOW.value:
        rgb = _load(_RGB.value) if _RGB.value else None
        flow = _load(_FLOW.value) if _FLOW.value else None
        model = i3d_keras.TwoStreamI3D(rgb, flow) if (rgb and flow) else (rgb or flow)
    else:
        console.fail("give --rgb_model and/or --flow_model, or --model")
    model_size = model.inputs[0].shape[2]
    image_size = _SIZE.value or model_size or 224
    class_names = None
    if _LABELS.value:
        if not os.path.exists(_LABELS.value):
            console.fail(f"no labels file at {_LABELS.value!r}")
        class_names = [line.strip() for line in open(_LABELS.value) if line.strip()]
    try:
        if _FORMAT.value == "saved_model":
            path = exporters.export_saved_model(
                model, _BASE.value, _NAME.value, _VERSION.value, class_names=class_names,
                top_k=_TOP_K.value, image_size=image_size, overwrite=_OVERWRITE.value)
            config = os.path.join(_BASE.value, "models.config")
            if not os.path.exists(config):
                with open(config, "w") as f:
                    f.write(exporters.models_config([(_NAME.value, f"/models/{_NAME.value}")]))
            print(f"SavedModel written to {path} (TF Serving base path "
                  f"{os.path.dirname(path)}); signatures: serving_default (raw uint8 frames), "
                  "preprocessed (float clips)")
            return
        output = _OUTPUT.value or os.path.join(_BASE.value, f"{_NAME.value}.tflite")
        path = exporters.export_tflite(model, output, quantization=_QUANT.value,
                                       frames=_FRAMES.value, image_size=_SIZE.value)
        print(f"LiteRT model written to {path} ({os.path.getsize(path) / 1e6:.1f} MB), ops: "
              f"{', '.join(exporters.tflite_builtin_ops(path))}")
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
