"""Evaluates an I3D stream or two-stream model on a prepared dataset split.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017
(centre-crop whole-video testing; two-stream fusion by adding logits).

Prints top-1, top-5 and mean class accuracy (per stream and fused), and with
--output_dir writes `evaluation.json` (per-class accuracy, confusion matrix,
protocol) and `confusion_matrix.png`.

Usage:
  # Centre clip (the model's clip length), RGB model from tools/train.py:
  python tools/evaluate.py --model runs/rgb/best.keras --dataset data/ucf101 --split test

  # 10 clips x 3 crops averaged, 64-frame clips, report in eval/:
  python tools/evaluate.py --model runs/rgb/best.keras --dataset data/ucf101 \
      --protocol clips --num_clips 10 --num_crops 3 --num_frames 64 --output_dir eval

  # Two-stream (RGB + flow logits added, flow weighted 1.5), whole videos:
  python tools/evaluate.py --model runs/rgb/best.keras --flow_model runs/flow/best.keras \
      --dataset data/ucf101 --protocol whole --stream_weights 1,1.5

  # The built-in motion dataset (tools/prepare_dataset.py or motion_dataset):
  python tools/evaluate.py --model runs/motion_rgb/best.keras --dataset data/motion --split val

--model / --flow_model take a .keras file, a SavedModel folder (from
i3d_keras.export) or a DeepMind checkpoint. Exit status: 0 on success, 1 on a
user error (missing model, a folder without shards, classes that do not match).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

_MODEL = flags.DEFINE_string("model", None, "RGB (or flow, or two-stream) model: .keras, "
                             "SavedModel folder or DeepMind checkpoint.")
_FLOW_MODEL = flags.DEFINE_string("flow_model", None, "Optional flow stream model.")
_DATASET = flags.DEFINE_string("dataset", None, "Prepared dataset folder (shards + metadata).")
_SPLIT = flags.DEFINE_string("split", None, "Split to evaluate (default: test, else val).")
_PROTOCOL = flags.DEFINE_enum("protocol", "center", ["center", "clips", "whole"],
                              "center clip, K clips x crops, or the whole video.")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", None, "Frames per clip (default: the "
                                   "model's clip length, else 64).")
_NUM_CLIPS = flags.DEFINE_integer("num_clips", 10, "K clips for --protocol clips.")
_NUM_CROPS = flags.DEFINE_enum("num_crops", "1", ["1", "3"], "1 centre crop or 3 crops.")
_CROP = flags.DEFINE_integer("crop_size", None, "Crop size (default: the model's, else 224).")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Clips per forward pass.")
_WEIGHTS = flags.DEFINE_list("stream_weights", None, "rgb,flow weights of the logits sum.")
_OUTPUT = flags.DEFINE_string("output_dir", None, "Where the JSON report and PNG go.")
_MAX = flags.DEFINE_integer("max_videos", None, "Evaluate only the first N videos.")


def _fail(message):
    print(f"evaluate: error: {message}", file=sys.stderr)
    sys.exit(1)


def main(argv):
    if len(argv) > 1:
        _fail(f"unexpected arguments: {argv[1:]}")
    if not _MODEL.value or not _DATASET.value:
        _fail("--model and --dataset are required (see --help). Received: "
              f"model={_MODEL.value!r}, dataset={_DATASET.value!r}")
    weights = None
    if _WEIGHTS.value:
        try:
            values = [float(v) for v in _WEIGHTS.value]
        except ValueError:
            _fail(f"--stream_weights must be numbers. Received: {_WEIGHTS.value}")
        weights = dict(zip(("rgb", "flow"), values)) if len(values) == 2 else None
        if weights is None:
            _fail(f"--stream_weights needs two numbers (rgb,flow). Received: {_WEIGHTS.value}")

    from i3d_keras import evaluation, inference  # noqa: PLC0415 (TensorFlow)

    try:
        info = evaluation.dataset_info(_DATASET.value, _SPLIT.value)  # fail fast on bad data
        predictor = inference.load_predictor(_MODEL.value, _FLOW_MODEL.value)
        report = evaluation.evaluate(
            predictor, _DATASET.value, info["split"], protocol=_PROTOCOL.value,
            stream_weights=weights,
            num_frames=_NUM_FRAMES.value, num_clips=_NUM_CLIPS.value,
            num_crops=int(_NUM_CROPS.value), crop_size=_CROP.value, batch_size=_BATCH.value,
            output_dir=_OUTPUT.value, max_videos=_MAX.value)
    except (FileNotFoundError, ValueError) as error:
        _fail(str(error))
    protocol = report["protocol"]
    print(f"{report['dataset_name'] or report['dataset']} [{report['split']}], "
          f"{report['num_videos']} videos, protocol {protocol['name']} "
          f"({protocol['views_per_video']} views/video, "
          f"{protocol['num_frames']}{'' if protocol['name'] == 'whole' else ' frames'}, "
          f"crop {protocol['crop_size'][0]}), {report['seconds_per_video']:.2f} s/video")
    rows = dict(report["per_stream_metrics"])
    rows["fused" if rows else "+".join(report["streams"])] = report["metrics"]
    for name, m in rows.items():
        print(f"  {name:>10}: top-1 {m['top1']:.2%}  top-5 {m['top5']:.2%}  "
              f"mean class accuracy {m['mean_class_accuracy']:.2%}")
    if report["metrics"]["most_confused"]:
        worst = report["metrics"]["most_confused"][0]
        print(f"  most confused: {worst['true']} -> {worst['predicted']} ({worst['count']})")
    if _OUTPUT.value:
        print(f"Wrote {report['report_json']} and {report['confusion_matrix_png']}")


if __name__ == "__main__":
    app.run(main)
