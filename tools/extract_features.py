"""Extracts I3D clip features: one .npy per video, [num_windows, D].

The feature is Mixed_5c averaged over time and space (Carreira & Zisserman,
"Quo Vadis, Action Recognition?", CVPR 2017: the input of the logits head):
1024-d for RGB or flow, 2048-d for both ([rgb, flow] concatenated). Videos are
decoded at 25 fps, short side 256, centre crop 224 (or the model's size).

Usage:
  # Whole-video RGB features with DeepMind's Kinetics weights ([1, 1024] per video):
  python tools/extract_features.py --model kinetics --output_dir features videos/

  # Sliding windows of 64 frames every 16 frames, RGB + flow (2048-d), DIS flow:
  python tools/extract_features.py --model kinetics --streams rgb,flow --window 64 \
      --stride 16 --flow_method dis --output_dir features videos/

  # Your own model (.keras or a DeepMind checkpoint), a list of videos:
  python tools/extract_features.py --model runs/rgb/best.keras --output_dir feats list.txt

Window i covers frames [i*stride, i*stride + window) at 25 fps; a video shorter
than the window gives one looped window. Rerunning the same command resumes
(existing .npy files are skipped; --overwrite recomputes); a rerun with other
settings (model, window, stride, streams, ...: recorded in
features_settings.json) stops before any work unless --overwrite. Videos of
different folders keep their relative paths under --output_dir. A video that fails
is reported (with the decoder's reason) and the others go on. Results go to
standard output, progress and messages to standard error; --verbose shows the
libraries' logs. Exit status: 0 all done, 1 some videos failed (or broke in the
middle: their windows before the break are written), 2 a usage error.

With --window, videos are streamed: frames are decoded, resized and cropped as
the windows need them and flow is computed per frame pair as it arrives, so
memory stays bounded by the window, stride and batch size whatever the video's
length (hours are fine); progress shows the position in the video and the
real-time factor. Without --window the whole video is one clip, held in memory.
"""


from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.runtime import precision  # noqa: E402
from i3d_keras.utils import outputs  # noqa: E402

_PRECISION = flags.DEFINE_enum("mixed_precision", "auto", list(precision.PRECISIONS),
                               precision.FLAG_HELP)
_MODEL = flags.DEFINE_string("model", "kinetics", "'kinetics', 'kinetics600', a .keras "
                             "file or a DeepMind checkpoint.")
_FLOW_MODEL = flags.DEFINE_string("flow_model", None, "Optional flow stream model (path).")
_STREAMS = flags.DEFINE_list("streams", ["rgb"], "rgb, flow or rgb,flow.")
_OUTPUT = flags.DEFINE_string("output_dir", None, "Where the .npy files go.")
_WINDOW = flags.DEFINE_integer("window", None, "Frames per window (default: whole video).",
                                lower_bound=1)
_STRIDE = flags.DEFINE_integer("stride", None, "Frames between windows (default: window).",
                                lower_bound=1)
_FLOW_METHOD = flags.DEFINE_enum("flow_method", "tvl1", ["tvl1", "dis", "farneback"],
                                 "Flow method (tvl1: paper; dis: ~100-200x faster).")
_BATCH = flags.DEFINE_integer("batch_size", 4, "Windows per forward pass.", lower_bound=1)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Recompute existing outputs (also when they "
                               "were made with other settings).")



def main(argv):
    if len(argv) < 2:
        console.fail("expected at least one VIDEO argument (files, folders or .txt lists)")
    if not _OUTPUT.value:
        console.fail("--output_dir is required")
    streams = _STREAMS.value
    if not streams or any(s not in ("rgb", "flow") for s in streams):
        console.fail(f"--streams must be rgb, flow or rgb,flow. Received: {streams}")

    if _STRIDE.value and not _WINDOW.value:
        console.fail(f"--stride needs --window. Received: stride={_STRIDE.value}")
    from i3d_keras.tasks import inference  # noqa: PLC0415 (TensorFlow)

    videos, root = inference.find_videos(argv[1:])
    if not videos:
        console.fail(f"no videos found in {argv[1:]}")
    outputs.check_output_dir(_OUTPUT.value, inputs=videos)
    precision.use_precision(_PRECISION.value, tool="extract_features")
    try:
        predictor = inference.load_predictor(_MODEL.value, _FLOW_MODEL.value, streams=streams)
        missing = [s for s in streams if s not in predictor.streams]
        if missing:  # before the line announcing the work
            console.fail(f"--streams: expected streams the model has ({','.join(predictor.streams)}"
                         f"; --flow_model adds flow). Received: --streams={','.join(streams)} "
                         f"with {predictor.source}")
        console.info(f"extract_features: {console.plural(len(videos), 'video')} with "
                     f"{predictor.source} ({'+'.join(streams)}); writing to {_OUTPUT.value}")
        report = inference.extract_features(
            videos, _OUTPUT.value, predictor, streams=streams, window=_WINDOW.value,
            stride=_STRIDE.value, flow_method=_FLOW_METHOD.value, batch_size=_BATCH.value,
            root=root, overwrite=_OVERWRITE.value)
    except (FileNotFoundError, ValueError) as error:
        console.fail(str(error))
    print(f"Features ({'+'.join(report['streams'])}, {report['feature_dim']}-d): "
          f"{len(report['written'])} written, {len(report['skipped'])} already done, "
          f"{len(report['failed'])} failed of {console.plural(len(videos), 'video')}; in "
          f"{_OUTPUT.value}")
    for video, reason in report["failed"]:
        print(f"  failed: {video}: {reason}")
    for video, where in report["partial"]:
        print(f"  partial: {video}: {where}; the windows before the break were written")
    if report["failed"] or report["partial"]:
        raise SystemExit(console.EXIT_FAILED)


if __name__ == "__main__":
    console.run(main, interrupted="interrupted; rerun the same command to resume",
                arguments=True)
