"""Classifies videos with I3D: the top-k classes of each video, or of each window
of a long video or a live stream, with a timeline picture and an annotated video.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017.
Videos are decoded at 25 fps with the short side resized to 256 (--short_side) and
the centre 224x224 crop (or the model's size) is classified; for two-stream models flow is
computed on the fly and the logits are added. Videos are read as the windows
need them, so memory stays bounded whatever their length (i3d_keras.data.streaming).

Usage:
  # DeepMind's Kinetics-400 RGB weights (downloaded with the class names):
  python tools/predict.py --model kinetics video1.mp4 video2.avi

  # Two-stream Kinetics (RGB + flow; TV-L1 flow is slow: ~1-3 s per frame pair
  # on one core; --flow_method dis is ~100-200x faster, noisier):
  python tools/predict.py --model kinetics --streams rgb,flow --flow_method dis clip.mp4

  # What happens when in a long video: 64-frame windows every 32 frames, as a
  # table, CSV, a timeline PNG and the video with the labels drawn on it:
  python tools/predict.py --model runs/rgb/best.keras --window 64 --stride 32 \
      --csv windows.csv --timeline timeline.png --annotate annotated.mp4 lecture.mp4

  # A camera or a stream (Ctrl-C stops; the windows so far are kept in --json):
  python tools/predict.py --model kinetics --source 0 --window 64
  python tools/predict.py --model kinetics --source rtsp://camera.local/stream --json live.json

  # A model of yours with its class names, top 3, as JSON:
  python tools/predict.py --model runs/rgb/best.keras --labels classes.txt --top_k 3 \
      --json predictions.json videos/

  # A converted DeepMind checkpoint, or an exported SavedModel:
  python tools/predict.py --model kinetics-i3d/data/checkpoints/rgb_imagenet/model.ckpt clip.mp4
  python tools/predict.py --model saved_models/i3d/1 clip.mp4

Without --window a video is classified whole: in one pass up to 250 frames (10 s,
the paper's protocol), a longer one in 250-frame chunks whose logits are averaged
(i3d_keras.tasks.inference.predict_windows). Window i covers frames [i*stride,
i*stride + window) at 25 fps, as in extract_features.py; a video shorter than a
window gives one looped window. A video that breaks in the middle keeps the
windows before the break and says where it broke.

VIDEO arguments are files, folders (searched recursively) or .txt lists. A
video that cannot be read is reported (with the decoder's reason) and the others
go on. For a model from tools/train.py the class names come from its run folder
(classes.txt beside the .keras file) unless --labels is given.

Results go to standard output (and --json, --csv), progress (the position in the
video and the real-time factor) and messages to standard error; --verbose shows
the libraries' own logs. Exit status: 0 all videos classified, 1 some failed (or
broke in the middle), 2 a usage error (e.g. a missing model file), 130 Ctrl-C.
"""

import datetime
import math
from pathlib import Path

from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.runtime import precision  # noqa: E402
from i3d_keras.utils import outputs  # noqa: E402

_PRECISION = flags.DEFINE_enum("mixed_precision", "auto", list(precision.PRECISIONS),
                               precision.FLAG_HELP)
_MODEL = flags.DEFINE_string("model", "kinetics", "'kinetics', 'kinetics600', "
                             "'kinetics_scratch', a .keras file, a SavedModel folder, a "
                             "LiteRT .tflite file (tools/export.py) or a DeepMind checkpoint.")
_FLOW_MODEL = flags.DEFINE_string("flow_model", None, "Optional flow stream model (path).")
_STREAMS = flags.DEFINE_list("streams", ["rgb"], "Streams for the Kinetics keywords: rgb, "
                             "flow or rgb,flow.")
_LABELS = flags.DEFINE_string("labels", None, "Class names, one per line (default: the "
                              "Kinetics label map for Kinetics weights).")
_TOP_K = flags.DEFINE_integer("top_k", 5, "Classes printed per video (and window).",
                              lower_bound=1)
#: The longest clip one forward pass takes (100 s at 25 fps, 10x the paper's
#: 250-frame protocol): longer ones would not fit in memory (24 GB at 100,000).
MAX_CLIP_FRAMES = 2500
_NUM_FRAMES = flags.DEFINE_integer("num_frames", None, "Classify only the centre clip of this "
                                   "many frames (default: the whole video).", lower_bound=1,
                                   upper_bound=MAX_CLIP_FRAMES)
_WINDOW = flags.DEFINE_integer("window", None, "Frames per window: classify every window "
                               "(default: the whole video).", lower_bound=1,
                               upper_bound=MAX_CLIP_FRAMES)
_STRIDE = flags.DEFINE_integer("stride", None, "Frames between window starts (default: "
                               "--window; larger leaves gaps).", lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 1, "Windows per forward pass.", lower_bound=1)
_SHORT_SIDE = flags.DEFINE_integer("short_side", 256, "Resize each frame's short side to this "
                                   "before the centre crop: the paper's 256, or the "
                                   "--short_side the model's training data was prepared with.",
                                   lower_bound=16, upper_bound=4096)
_SOURCE = flags.DEFINE_string("source", None, "A live source instead of VIDEO files: a camera "
                              "index (0) or a stream URL (rtsp://, http://, ...).")
_LIVE_WINDOW = 64  # frames (2.56 s) per window of a live source without --window
_FLOW_METHOD = flags.DEFINE_enum("flow_method", "tvl1", ["tvl1", "dis", "farneback"],
                                 "Flow for two-stream models (tvl1: paper; dis: ~100-200x faster).")
_WEIGHTS = flags.DEFINE_list("stream_weights", None, "rgb,flow weights of the logits sum.")
_JSON = flags.DEFINE_string("json", None, "Also write the results to this JSON file.")
_CSV = flags.DEFINE_string("csv", None, "Also write a row per window and rank to this CSV "
                           "file (with --window or --source).")
_TIMELINE = flags.DEFINE_string("timeline", None, "Draw the top classes' probabilities over "
                                "time to this PNG (one video; with --window or --source).")
_ANNOTATE = flags.DEFINE_string("annotate", None, "Write the video with each window's top "
                                "classes drawn on it to this file (.mp4 or .avi; one video "
                                "file, with --window).")
#: What --annotate writes (OpenCV's writers: mp4v, MJPG).
ANNOTATE_EXTENSIONS = (".mp4", ".avi")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace existing --json, --csv, "
                               "--timeline and --annotate files.")


def _check_flags(argv, videos):
    """Every flag and output checked before a model loads or a video decodes."""
    from i3d_keras.tasks import inference  # noqa: PLC0415 (TensorFlow)

    bad = [s for s in _STREAMS.value if s not in ("rgb", "flow")]
    if bad or not _STREAMS.value:
        console.fail(f"--streams must be rgb, flow or rgb,flow. Received: {_STREAMS.value}")
    weights = None
    if _WEIGHTS.value:
        try:
            values = [float(v) for v in _WEIGHTS.value]
        except ValueError:
            values = []
        if (len(values) != 2 or not all(math.isfinite(v) and v >= 0 for v in values)
                or not any(values)):
            console.fail("--stream_weights must be two numbers >= 0, not both 0 (rgb,flow). "
                         f"Received: {','.join(_WEIGHTS.value)}")
        weights = dict(zip(("rgb", "flow"), values))
    windowed = _WINDOW.value is not None or _SOURCE.value is not None
    if _STRIDE.value and not _WINDOW.value:
        console.fail(f"--stride needs --window. Received: stride={_STRIDE.value}")
    if _NUM_FRAMES.value and windowed:
        console.fail("--num_frames (a centre clip) and --window/--source (windows) exclude "
                     "each other")
    for flag in ("csv", "timeline"):
        if flags.FLAGS[flag].value and not windowed:
            console.fail(f"--{flag} needs windows: pass --window (or --source)")
    if _ANNOTATE.value and (not _WINDOW.value or _SOURCE.value):
        console.fail("--annotate needs --window and a video file (not --source)")
    if _ANNOTATE.value and Path(_ANNOTATE.value).suffix.lower() not in ANNOTATE_EXTENSIONS:
        console.fail(f"--annotate writes a {' or '.join(ANNOTATE_EXTENSIONS)} video. "
                     f"Received: {_ANNOTATE.value!r}")
    # Models and class names are looked for before the precision is chosen
    # (which may time both precisions on a new machine) and anything loads.
    for flag in ("model", "flow_model"):
        value = flags.FLAGS[flag].value
        if value and value not in inference.KINETICS_KEYWORDS and not (
                Path(value).exists() or Path(value + ".index").is_file()):
            console.fail(f"--{flag}: expected a .keras file, a SavedModel folder, a LiteRT "
                         f".tflite file, a DeepMind checkpoint or one of "
                         f"{', '.join(inference.KINETICS_KEYWORDS)}. Received: {value!r} "
                         "(no such file)")
    if _LABELS.value:
        try:
            inference.read_class_names(_LABELS.value)
        except (FileNotFoundError, ValueError) as error:
            console.fail(f"--labels: {error}")
    if (_TIMELINE.value or _ANNOTATE.value) and len(videos) + bool(_SOURCE.value) != 1:
        console.fail(f"--timeline and --annotate draw one video. Received: "
                     f"{console.plural(len(videos) + bool(_SOURCE.value), 'video')}")
    inputs = [*argv[1:], *videos, _MODEL.value, _FLOW_MODEL.value, _LABELS.value]
    written = []
    for flag in ("json", "csv", "timeline", "annotate"):
        value = flags.FLAGS[flag].value
        if value:
            outputs.check_output_file(value, flag=flag, overwrite=_OVERWRITE.value,
                                      inputs=inputs)
            if any(outputs.same_file(value, other) for other in written):
                console.fail(f"--{flag} names a file another flag writes. Received: {value!r}")
            written.append(value)
    return weights


def _print_window(window, live=False):
    clock = f"[{datetime.datetime.now():%H:%M:%S}] " if live else ""
    from i3d_keras.tasks.timeline import format_time  # noqa: PLC0415

    span = f"{format_time(window['start'], tenths=True)}-{format_time(window['end'], tenths=True)}"
    items = " | ".join(f"{i['probability']:6.1%} {i['class']}" for i in window["top_k"])
    print(f"  {clock}{span}  {items}", flush=True)


def _print_result(r, windowed):
    if not r["ok"]:
        print(f"{r['video']}: FAILED: {r['error']}")
        return
    s = r["seconds"]
    speed = f", {r['realtime_factor']:.2f}x real time" if r.get("realtime_factor") else ""
    heading = "whole video" if windowed else r["video"]
    indent = "  " if windowed else ""
    print(f"{indent}{heading} ({console.plural(r['num_frames'], 'frame')}, "
          f"{s['total']:.1f} s{speed if windowed else ''}):")
    for rank, item in enumerate(r["top_k"], 1):
        print(f"{indent}  {rank}. {item['probability']:7.2%}  {item['class']}")
    if r.get("broken"):
        print(f"{indent}  partial: {r['broken']}")


def _write(results, predictor_names):
    """The --json, --csv and --timeline files of the results so far."""
    from i3d_keras.tasks import timeline  # noqa: PLC0415

    if _JSON.value:
        outputs.write_json(_JSON.value, results)
        console.info(f"predict: results written to {_JSON.value}")
    if _CSV.value:
        timeline.write_csv(results, _CSV.value)
        console.info(f"predict: windows written to {_CSV.value}")
    if _TIMELINE.value and results and results[0].get("windows"):
        timeline.plot_timeline(results[0], _TIMELINE.value, class_names=predictor_names)
        console.info(f"predict: timeline drawn to {_TIMELINE.value}")


def main(argv):
    if len(argv) < 2 and not _SOURCE.value:
        console.fail("expected at least one VIDEO argument, or --source (see --help)")
    if len(argv) > 1 and _SOURCE.value:
        console.fail(f"give VIDEO arguments or --source, not both. Received: {argv[1:]} and "
                     f"--source {_SOURCE.value}")
    from i3d_keras.tasks import inference  # noqa: PLC0415 (TensorFlow)

    videos = []
    if not _SOURCE.value:
        videos, _ = inference.find_videos(argv[1:])
        if not videos:
            console.fail(f"no videos found in {argv[1:]}")
    weights = _check_flags(argv, videos)
    inference.use_precision_for(_MODEL.value, _PRECISION.value, tool="predict")
    try:
        predictor = inference.load_predictor(
            _MODEL.value, _FLOW_MODEL.value, labels=_LABELS.value, streams=_STREAMS.value)
    except (FileNotFoundError, ValueError) as error:
        console.fail(str(error))
    if weights:
        predictor.stream_weights.update(
            {k: v for k, v in weights.items() if k in predictor.stream_weights})
    crop = min(predictor.image_size or (inference.DEFAULT_IMAGE_SIZE,))
    if _SHORT_SIDE.value < crop:
        console.fail(f"--short_side must be at least the centre crop, {crop} px (the model's "
                     f"input). Received: --short_side={_SHORT_SIDE.value}")
    live = _SOURCE.value is not None
    window = _WINDOW.value or (_LIVE_WINDOW if live else None)
    if predictor.frames is not None and window is not None and window != predictor.frames:
        console.fail(f"the model takes clips of exactly {predictor.frames} frames. Received: "
                     f"window={window}")
    sources = [_SOURCE.value] if live else videos
    console.info(f"predict: {console.plural(len(sources), 'source' if live else 'video')} "
                 f"with {predictor.source} ({'+'.join(predictor.streams)}, "
                 f"{console.plural(predictor.num_classes, 'class', 'classes')})"
                 + (f", windows of {window} frames every {_STRIDE.value or window}"
                    if window else ""))
    centre_clip = _NUM_FRAMES.value is not None or (predictor.frames is not None and not window)
    results = []
    if centre_clip:  # the paper's protocol on a centre clip: one array per video
        try:
            results = inference.predict_videos(
                videos, predictor, top_k=_TOP_K.value, num_frames=_NUM_FRAMES.value,
                flow_method=_FLOW_METHOD.value, short_side=_SHORT_SIDE.value)
        except ValueError as error:  # e.g. --num_frames against a fixed-length model
            console.fail(str(error))
        for r in results:
            _print_result(r, False)
    else:
        so_far = []  # the current source's windows, kept if Ctrl-C stops it

        def on_window(entry):
            so_far.append(entry)
            _print_window(entry, live)

        from i3d_keras.data import parallel  # noqa: PLC0415

        # Across the videos (each one's own line shows its position and real-time factor).
        bar = parallel.Progress(len(sources), desc="predict", enabled=not live)
        source = None
        try:
            for source in sources:
                so_far.clear()
                if window:
                    print(f"{source}:" if not live else f"{source} (live; Ctrl-C stops):",
                          flush=True)
                result = inference.predict_windows(
                    source, predictor, window=window, stride=_STRIDE.value, top_k=_TOP_K.value,
                    batch_size=1 if live else _BATCH.value, flow_method=_FLOW_METHOD.value,
                    short_side=_SHORT_SIDE.value, on_window=on_window if window else None)
                results.append(result)
                _print_result(result, bool(window))
                bar.update(1, failed=0 if result["ok"] else 1)
            bar.close()
        except KeyboardInterrupt:  # keep what was classified, then stop as interrupted
            if so_far:
                results.append({"video": str(source), "ok": True, "interrupted": True,
                                "live": live, "window": window, "windows": list(so_far)})
            _write(results, predictor.class_names)
            raise
    _write(results, predictor.class_names)
    if _ANNOTATE.value and results and results[0]["ok"]:
        from i3d_keras.tasks import timeline  # noqa: PLC0415

        timeline.annotate_video(videos[0], results[0], _ANNOTATE.value)
        console.info(f"predict: annotated video written to {_ANNOTATE.value}")
    failed = sum(not r["ok"] for r in results)
    partial = sum(bool(r.get("broken")) for r in results if r["ok"])
    if failed or partial:
        console.info(f"predict: {failed} of {console.plural(len(results), 'video')} failed"
                     + (f", {partial} broke in the middle" if partial else ""))
        raise SystemExit(console.EXIT_FAILED)


if __name__ == "__main__":
    console.run(main, arguments=True)
