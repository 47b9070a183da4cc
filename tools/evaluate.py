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

  # The two streams trained on the built-in motion dataset (tools/train.py
  # --stream rgb / flow): without --dataset, their validation clips with the
  # runs' recipe (config.json in the run folders), RGB, flow and fused:
  python tools/evaluate.py --model runs/i3d_rgb_motion/best.keras \
      --flow_model runs/i3d_flow_motion/best.keras
  # The same clips as shards (tools/prepare_dataset.py --layout motion):
  python tools/evaluate.py --model runs/i3d_rgb_motion/best.keras --dataset data/motion

  # A LiteRT file (tools/export.py --format tflite), e.g. int8, on the same clips,
  # and how often it answers as the float model did:
  python tools/evaluate.py --model runs/i3d_rgb_motion/best.keras --dataset data/motion \
      --json float.json
  python tools/evaluate.py --model i3d_rgb_int8.tflite --dataset data/motion \
      --agreement_with float.json

--model / --flow_model take a .keras file, a SavedModel folder (from
i3d_keras.export.exporters), a LiteRT .tflite file (its clip length and size) or a
DeepMind checkpoint. Results go to standard output (and
--json), progress and messages to standard error; --verbose shows the
libraries' logs. Exit status: 0 on success, 2 on a usage error (missing model,
no --dataset for a model without a run folder, a folder without shards, classes
that do not match).
"""

import json
import tempfile

from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.runtime import precision  # noqa: E402
from i3d_keras.utils import outputs  # noqa: E402

_PRECISION = flags.DEFINE_enum("mixed_precision", "auto", list(precision.PRECISIONS),
                               precision.FLAG_HELP)
_MODEL = flags.DEFINE_string("model", None, "RGB (or flow, or two-stream) model: .keras, "
                             "SavedModel folder, LiteRT .tflite file or DeepMind checkpoint.")
_FLOW_MODEL = flags.DEFINE_string("flow_model", None, "Optional flow stream model.")
_DATASET = flags.DEFINE_string("dataset", None, "Prepared dataset folder (shards + metadata). "
                               "Default: the data of the run the model came from (its "
                               "config.json): the built-in motion dataset's validation clips "
                               "with the run's recipe, or the run's prepared dataset.")
_SPLIT = flags.DEFINE_string("split", None, "Split to evaluate (default: test, else val).")
_PROTOCOL = flags.DEFINE_enum("protocol", "center", ["center", "clips", "whole"],
                              "center clip, K clips x crops, or the whole video.")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", None, "Frames per clip (default: the "
                                   "model's clip length, else 64).", lower_bound=1)
_NUM_CLIPS = flags.DEFINE_integer("num_clips", 10, "K clips for --protocol clips.",
                                  lower_bound=1)
_NUM_CROPS = flags.DEFINE_enum("num_crops", "1", ["1", "3"], "1 centre crop or 3 crops.")
_CROP = flags.DEFINE_integer("crop_size", None, "Crop size (default: the model's, else 224).",
                             lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 8, "Clips per forward pass.", lower_bound=1)
_WEIGHTS = flags.DEFINE_list("stream_weights", None, "rgb,flow weights of the logits sum.")
_OUTPUT = flags.DEFINE_string("output_dir", None, "Where the JSON report and PNG go.")
_MAX = flags.DEFINE_integer("max_videos", None, "Evaluate only the first N videos.",
                            lower_bound=1)
_JSON = flags.DEFINE_string("json", None, "Also write the report (metrics, per-class "
                            "accuracy, confusion matrix) to this JSON file.")
_AGREEMENT = flags.DEFINE_string("agreement_with", None, "A report (--json) of another model "
                                 "on the same split and protocol: also print how often the "
                                 "two give the same top-1 class (int8 against float32, "
                                 "LiteRT against Keras).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --json file and the "
                               "report files in --output_dir.")



def main(argv):
    if len(argv) > 1:
        console.fail(f"unexpected arguments: {argv[1:]}")
    if not _MODEL.value:
        console.fail(f"--model is required (see --help). Received: model={_MODEL.value!r}")
    weights = None
    if _WEIGHTS.value:
        try:
            values = [float(v) for v in _WEIGHTS.value]
        except ValueError:
            console.fail(f"--stream_weights must be numbers. Received: {_WEIGHTS.value}")
        weights = dict(zip(("rgb", "flow"), values)) if len(values) == 2 else None
        if weights is None:
            console.fail(f"--stream_weights needs two numbers (rgb,flow). Received: "
                         f"{_WEIGHTS.value}")
    from i3d_keras.tasks import evaluation, inference  # noqa: PLC0415 (TensorFlow)

    inputs = [_MODEL.value, _FLOW_MODEL.value, _DATASET.value, _AGREEMENT.value]
    reference = None
    if _AGREEMENT.value:
        outputs.check_input_path(_AGREEMENT.value, flag="agreement_with", kind="file")
        try:
            with open(_AGREEMENT.value, encoding="utf-8") as f:
                reference = json.load(f)
            evaluation.agreement(reference, reference)  # a report with predictions?
        except (OSError, ValueError) as error:
            console.fail(f"--agreement_with {_AGREEMENT.value!r}: {error}")
    if _JSON.value:
        outputs.check_output_file(_JSON.value, flag="json", inputs=inputs,
                                  overwrite=_OVERWRITE.value)
    if _OUTPUT.value:
        folder = outputs.check_output_dir(_OUTPUT.value, inputs=inputs)
        for name in (evaluation.REPORT_NAME, evaluation.CONFUSION_NAME):
            outputs.check_output_file(folder / name, flag="output_dir", inputs=inputs,
                                      overwrite=_OVERWRITE.value, create_parent=True)

    with tempfile.TemporaryDirectory(prefix="i3d_motion_") as scratch:
        dataset, split = _DATASET.value, _SPLIT.value
        try:
            if dataset is None:
                found = evaluation.run_dataset(
                    [m for m in (_MODEL.value, _FLOW_MODEL.value) if m], scratch)
                dataset, split = found["dataset"], split or found["split"]
                console.info(f"evaluate: no --dataset: {found['description']}")
            info = evaluation.dataset_info(dataset, split)  # fail fast on bad data
            if reference is not None:
                evaluation.check_reference(reference, info, _MAX.value)
            inference.use_precision_for(_MODEL.value, _PRECISION.value, tool="evaluate")
            predictor = inference.load_predictor(_MODEL.value, _FLOW_MODEL.value)
        except (FileNotFoundError, ValueError) as error:
            console.fail(str(error))
        console.info(f"evaluate: {console.plural(info['num_videos'] or 0, 'video')} of split "
                     f"{info['split']!r}, {predictor.source} "
                     f"({'+'.join(predictor.streams)}), protocol {_PROTOCOL.value}")
        try:
            report = evaluation.evaluate(
                predictor, dataset, info["split"], protocol=_PROTOCOL.value,
                stream_weights=weights,
                num_frames=_NUM_FRAMES.value, num_clips=_NUM_CLIPS.value,
                num_crops=int(_NUM_CROPS.value), crop_size=_CROP.value,
                batch_size=_BATCH.value, output_dir=_OUTPUT.value, max_videos=_MAX.value)
        except (FileNotFoundError, ValueError) as error:
            console.fail(str(error))
    if _DATASET.value is None:
        report["dataset"] = "built-in motion dataset"
    protocol = report["protocol"]
    frames = protocol["num_frames"]
    print(f"{report['dataset_name'] or report['dataset']} [{report['split']}], "
          f"{console.plural(report['num_videos'], 'video')}, protocol {protocol['name']} "
          f"({protocol['views_per_video']} views/video, "
          f"{frames if protocol['name'] == 'whole' else console.plural(frames, 'frame')}, "
          f"crop {protocol['crop_size'][0]}), {report['seconds_per_video']:.2f} s/video")
    rows = dict(report["per_stream_metrics"])
    rows["fused" if rows else "+".join(report["streams"])] = report["metrics"]
    for name, m in rows.items():
        print(f"  {name:>10}: top-1 {m['top1']:.2%}  top-5 {m['top5']:.2%}  "
              f"mean class accuracy {m['mean_class_accuracy']:.2%}")
    if report["metrics"]["most_confused"]:
        worst = report["metrics"]["most_confused"][0]
        print(f"  most confused: {worst['true']} -> {worst['predicted']} ({worst['count']})")
    problem = None
    if reference is not None:
        try:
            report["agreement"] = evaluation.agreement(report, reference)
        except ValueError as error:  # another protocol: the report is still written
            problem = f"--agreement_with {_AGREEMENT.value!r}: {error}"
        else:
            same = report["agreement"]
            print(f"  top-1 agreement with {same['reference']}: {same['top1_agreement']:.2%} "
                  f"({same['same']} of {console.plural(same['videos'], 'video')})")
    if _JSON.value:
        outputs.write_json(_JSON.value, report, default=evaluation._json_default)  # noqa: SLF001
        console.info(f"evaluate: report written to {_JSON.value}")
    if _OUTPUT.value:
        console.info(f"evaluate: wrote {report['report_json']} and "
                     f"{report['confusion_matrix_png']}")
    if problem:
        console.fail(problem)

if __name__ == "__main__":
    console.run(main)
