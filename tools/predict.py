"""Classifies video files with I3D: the top-k classes and probabilities.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017.
Videos are decoded at 25 fps with the short side resized to 256, the centre
224x224 crop (or the model's size) of the whole video is classified; for
two-stream models flow is computed on the fly and the logits are added.

Usage:
  # DeepMind's Kinetics-400 RGB weights (downloaded with the class names):
  python tools/predict.py --model kinetics video1.mp4 video2.avi

  # Two-stream Kinetics (RGB + flow; TV-L1 flow is slow: ~1-3 s per frame pair
  # on one core; --flow_method dis is ~90x faster, noisier):
  python tools/predict.py --model kinetics --streams rgb,flow --flow_method dis clip.mp4

  # A model of yours with its class names, top 3, as JSON:
  python tools/predict.py --model runs/rgb/best.keras --labels classes.txt --top_k 3 \
      --json predictions.json videos/

  # A converted DeepMind checkpoint, or an exported SavedModel:
  python tools/predict.py --model kinetics-i3d/data/checkpoints/rgb_imagenet/model.ckpt clip.mp4
  python tools/predict.py --model saved_models/i3d/1 clip.mp4

VIDEO arguments are files, folders (searched recursively) or .txt lists. A
video that cannot be read is reported (with the decoder's reason) and the others
go on. For a model from tools/train.py the class names come from its run folder
(classes.txt beside the .keras file) unless --labels is given.

Results go to standard output (and --json), progress and messages to standard
error; --verbose shows the libraries' own logs. Exit status: 0 all videos
classified, 1 some failed, 2 a usage error (e.g. a missing model file).
"""

from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.runtime import precision  # noqa: E402
from i3d_keras.utils import outputs  # noqa: E402

_PRECISION = flags.DEFINE_enum("mixed_precision", "auto", list(precision.PRECISIONS),
                               precision.FLAG_HELP)
_MODEL = flags.DEFINE_string("model", "kinetics", "'kinetics', 'kinetics600', "
                             "'kinetics_scratch', a .keras file, a SavedModel folder or a "
                             "DeepMind checkpoint.")
_FLOW_MODEL = flags.DEFINE_string("flow_model", None, "Optional flow stream model (path).")
_STREAMS = flags.DEFINE_list("streams", ["rgb"], "Streams for the Kinetics keywords: rgb, "
                             "flow or rgb,flow.")
_LABELS = flags.DEFINE_string("labels", None, "Class names, one per line (default: the "
                              "Kinetics label map for Kinetics weights).")
_TOP_K = flags.DEFINE_integer("top_k", 5, "Classes printed per video.", lower_bound=1)
_NUM_FRAMES = flags.DEFINE_integer("num_frames", None, "Centre clip length (default: the "
                                   "whole video).", lower_bound=1)
_FLOW_METHOD = flags.DEFINE_enum("flow_method", "tvl1", ["tvl1", "dis", "farneback"],
                                 "Flow for two-stream models (tvl1: paper; dis: ~90x faster).")
_WEIGHTS = flags.DEFINE_list("stream_weights", None, "rgb,flow weights of the logits sum.")
_JSON = flags.DEFINE_string("json", None, "Also write the results to this JSON file.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --json file.")



def main(argv):
    if len(argv) < 2:
        console.fail("expected at least one VIDEO argument (see --help)")
    bad = [s for s in _STREAMS.value if s not in ("rgb", "flow")]
    if bad or not _STREAMS.value:
        console.fail(f"--streams must be rgb, flow or rgb,flow. Received: {_STREAMS.value}")
    weights = None
    if _WEIGHTS.value:
        try:
            weights = dict(zip(("rgb", "flow"), (float(v) for v in _WEIGHTS.value)))
        except ValueError:
            console.fail(f"--stream_weights must be two numbers. Received: {_WEIGHTS.value}")

    from i3d_keras.tasks import inference  # noqa: PLC0415 (TensorFlow)

    videos, _ = inference.find_videos(argv[1:])
    if not videos:
        console.fail(f"no videos found in {argv[1:]}")
    if _JSON.value:
        outputs.check_output_file(
            _JSON.value, flag="json", overwrite=_OVERWRITE.value,
            inputs=[*argv[1:], *videos, _MODEL.value, _FLOW_MODEL.value, _LABELS.value])
    precision.use_precision(_PRECISION.value, tool="predict")
    try:
        predictor = inference.load_predictor(
            _MODEL.value, _FLOW_MODEL.value, labels=_LABELS.value, streams=_STREAMS.value)
    except (FileNotFoundError, ValueError) as error:
        console.fail(str(error))
    except OSError as error:  # e.g. no network for the Kinetics downloads
        console.fail(str(error), console.EXIT_FAILED)
    if weights:
        predictor.stream_weights.update(
            {k: v for k, v in weights.items() if k in predictor.stream_weights})
    console.info(f"predict: {console.plural(len(videos), 'video')} with {predictor.source} "
                 f"({'+'.join(predictor.streams)}, "
                 f"{console.plural(predictor.num_classes, 'class', 'classes')})")
    try:
        results = inference.predict_videos(
            videos, predictor, top_k=_TOP_K.value, num_frames=_NUM_FRAMES.value,
            flow_method=_FLOW_METHOD.value)
    except ValueError as error:  # e.g. --num_frames against a fixed-length model
        console.fail(str(error))
    failed = 0
    for r in results:
        if not r["ok"]:
            failed += 1
            print(f"{r['video']}: FAILED: {r['error']}")
            continue
        s = r["seconds"]
        print(f"{r['video']} ({console.plural(r['num_frames'], 'frame')}, {s['total']:.1f} s):")
        for rank, item in enumerate(r["top_k"], 1):
            print(f"  {rank}. {item['probability']:7.2%}  {item['class']}")
    if _JSON.value:
        outputs.write_json(_JSON.value, results)
        console.info(f"predict: results written to {_JSON.value}")
    if failed:
        console.info(f"predict: {failed} of {console.plural(len(results), 'video')} failed")
        raise SystemExit(console.EXIT_FAILED)

if __name__ == "__main__":
    console.run(main)
