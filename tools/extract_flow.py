"""Computes optical flow for many videos, one worker process per core.

Flow as in I3D (Carreira & Zisserman, CVPR 2017): grayscale frames at 25 fps
with short side 256, TV-L1 (`cv2.optflow.DualTVL1OpticalFlow`), clipped to
[-20, 20] pixels and scaled to [-1, 1]; stored per video as quantised uint8 in
`<output_dir>/<relative path>.flow.npz` (read back with
`i3d_keras.data.flow.load_flow`). flow[t] is frame t -> t+1, the last field
repeated, so flow and RGB align frame by frame.

Rerunning the same command resumes: finished outputs are skipped. A rerun with
another --method, --fps or --short_side (recorded in flow_settings.json) stops
before any work unless --overwrite. A video that fails is reported and skipped.

Usage:
  python tools/extract_flow.py --input data/UCF-101 --output_dir data/ucf101_flow
  python tools/extract_flow.py --input videos.txt --output_dir flow --method dis
  python tools/extract_flow.py --input clip.mp4 --output_dir flow --workers 1

`--input` is a folder (searched recursively for videos), a single video file,
or a text file (`.txt`, `.lst`, `.list`) listing one video path per line. TV-L1 costs seconds of
one core per 340x256 frame pair (1-3 s); `--method dis` is ~100-200x faster, noisier.
"""

from pathlib import Path

from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.utils import outputs  # noqa: E402

_INPUT = flags.DEFINE_string("input", None, "Folder of videos, a video, or a text file of paths.")
_OUTPUT = flags.DEFINE_string("output_dir", None, "Where the .flow.npz files go.")
_METHOD = flags.DEFINE_enum("method", "tvl1", ["tvl1", "dis", "farneback"], "Flow method.")
_WORKERS = flags.DEFINE_integer("workers", 0, "Worker processes (0: one per core).",
                                 lower_bound=0)
_FPS = flags.DEFINE_float("fps", 25.0, "Decode frame rate.", lower_bound=1e-3)
_SHORT_SIDE = flags.DEFINE_integer("short_side", 256, "Resize the short side to this.",
                                   lower_bound=1)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Recompute existing outputs (also when they "
                               "were made with other settings).")


def find_videos(spec: str):
    """Returns (videos, root) for a folder, a video file or a list file."""
    from i3d_keras.data.video import VIDEO_EXTENSIONS, find_videos  # noqa: PLC0415

    outputs.check_input_path(spec, flag="input", kind="any")
    videos, root = find_videos([spec], what="--input")
    if not videos:
        console.fail(f"no videos found in --input {spec!r}" + (
            f" (looked for {', '.join(VIDEO_EXTENSIONS)})" if Path(spec).is_dir() else ""))
    return videos, root


def main(argv):
    if len(argv) > 1:
        console.fail(f"unexpected arguments {argv[1:]}")
    if not _INPUT.value or not _OUTPUT.value:
        console.fail("--input and --output_dir are required (see --help)")
    from i3d_keras.data.flow import extract_flow  # noqa: PLC0415

    videos, root = find_videos(_INPUT.value)
    outputs.check_output_dir(_OUTPUT.value, inputs=[_INPUT.value, *videos])
    report = extract_flow(videos, _OUTPUT.value, method=_METHOD.value, root=root,
                          num_workers=_WORKERS.value, fps=_FPS.value,
                          short_side=_SHORT_SIDE.value, overwrite=_OVERWRITE.value)
    print(f"Flow ({_METHOD.value}): {len(report['converted'])} computed, "
          f"{len(report['skipped'])} already done, {len(report['failed'])} failed "
          f"of {console.plural(len(videos), 'video')}; outputs in {_OUTPUT.value}")
    for video, reason in report["failed"]:
        print(f"  failed: {video}: {reason}")
    if videos and not report["converted"] and not report["skipped"]:
        console.fail("every video failed", console.EXIT_FAILED)
    if report["failed"]:
        raise SystemExit(console.EXIT_FAILED)


if __name__ == "__main__":
    console.run(main, interrupted="interrupted; rerun the same command to resume")
