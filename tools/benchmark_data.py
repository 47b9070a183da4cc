"""Benchmarks the data side: flow methods, motion dataset generation, tf.data.

A benchmark script, not a test. Measures on this machine:
  1. optical flow seconds per frame pair for TV-L1, DIS and Farneback on a
     340x256 clip (one OpenCV thread; median over pairs);
  2. generation time of the built-in motion dataset;
  3. clips/s of the training input pipeline from TFRecord shards (64 frames,
     224x224 random crops and flips) for RGB, flow and both -- the issue asks
     for at least 3x the training step's clips/s.

Usage:
  python tools/benchmark_data.py                       # uses ../shared/data/videos
  python tools/benchmark_data.py --video my.mp4 --tvl1_pairs 5
  python tools/benchmark_data.py --json data_speed.json  # also the figures, with the machine

Results go to standard output (and --json, with the run's machine, versions,
commit and date: i3d_keras.benchmarks.results).
"""

import statistics
import tempfile
import time
from pathlib import Path

from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.benchmarks import checks  # noqa: E402 (no TensorFlow)
from i3d_keras.utils import outputs  # noqa: E402

_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
_VIDEO = flags.DEFINE_string("video", str(_SHARED / "arm_wrestling.mp4"),
                             "A video for the flow timings (340x256 like Kinetics' to compare "
                             "with the recorded figures).")
_SECOND = flags.DEFINE_string("video2", str(_SHARED / "cleaning_pool.mp4"),
                              "A second video for the pipeline shards.")
_TVL1_PAIRS = flags.DEFINE_integer("tvl1_pairs", 3, "Frame pairs timed for TV-L1.",
                                   lower_bound=1)
_PAIRS = flags.DEFINE_integer("pairs", 20, "Frame pairs timed for DIS and Farneback.",
                              lower_bound=1)
_CLIPS = flags.DEFINE_integer("clips", 24, "Clips timed per pipeline configuration.",
                              lower_bound=1)
_JSON = flags.DEFINE_string("json", None, "Also write the results to this JSON file.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --json file.")


def _flow_frames():
    """The frames the flow timings read: one more than the pairs timed."""
    return max(_PAIRS.value, _TVL1_PAIRS.value) + 1


def bench_flow(video):
    import cv2

    from i3d_keras.data.flow import _gray, create_flow_estimator
    from i3d_keras.data.video import read_video

    cv2.setNumThreads(1)
    frames = read_video(video, max_frames=_flow_frames())
    gray = [_gray(f) for f in frames]
    print(f"flow on {frames.shape[2]}x{frames.shape[1]} frames of {Path(video).name}, "
          "1 OpenCV thread:")
    result = {"video": Path(video).name, "width": int(frames.shape[2]),
              "height": int(frames.shape[1]), "opencv_threads": 1, "methods": {}}
    for method, pairs in (("tvl1", _TVL1_PAIRS.value), ("farneback", _PAIRS.value),
                          ("dis", _PAIRS.value)):
        fn = create_flow_estimator(method)
        times = []
        for i in range(pairs):
            t0 = time.perf_counter()
            fn(gray[i], gray[i + 1])
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"  {method:10s} median {med:.4f} s/pair ({1 / med:.1f} pairs/s), n={pairs}")
        result["methods"][method] = {"seconds_per_pair": med, "pairs": pairs}
    return result


def bench_motion():
    from i3d_keras.data import motion_dataset as md

    result = {"clips": 1000, "frames": 16, "size": 32}
    for with_flow in (False, True):
        t0 = time.perf_counter()
        md.generate_motion_clips(1000, num_frames=16, with_flow=with_flow)
        seconds = time.perf_counter() - t0
        print(f"motion dataset: 1000 clips 16x32x32 (flow={with_flow}) in {seconds:.2f} s")
        result["seconds_with_flow" if with_flow else "seconds"] = seconds
    return result


def bench_pipeline(videos):
    import tensorflow as tf

    from i3d_keras.data import input_pipeline, records
    from i3d_keras.data.flow import compute_flow
    from i3d_keras.data.video import read_video

    with tempfile.TemporaryDirectory() as tmp:
        examples = []
        for v in videos:
            frames = read_video(v)
            flow = compute_flow(frames, "dis")
            for copy in range(4):
                examples.append(records.video_to_example(
                    frames, copy, "c", f"{Path(v).stem}_{copy}", flow=flow, flow_method="dis"))
        shards = records.write_shards(examples, tmp, "bench_train", 4)
        print(f"pipeline: {len(examples)} videos of {frames.shape} in 4 shards, "
              f"{tf.config.threading.get_inter_op_parallelism_threads() or 'auto'} inter-op threads")
        result = {"videos": len(examples), "shards": 4, "frames": 64, "crop": 224,
                  "clips_timed": _CLIPS.value, "clips_per_second": {}}
        for modality in ("rgb", "flow", "both"):
            ds = input_pipeline.build_dataset([str(p) for p in shards], training=True,
                                              modality=modality, num_frames=64, crop_size=224,
                                              batch_size=1, repeat=True)
            it = iter(ds)
            for _ in range(3):
                next(it)  # warm up
            t0 = time.perf_counter()
            for _ in range(_CLIPS.value):
                next(it)
            rate = _CLIPS.value / (time.perf_counter() - t0)
            print(f"  training 64x224x224 {modality:5s}: {rate:.2f} clips/s")
            result["clips_per_second"][modality] = rate
    return result


def main(argv):
    del argv  # console.run refuses arguments besides the flags
    for flag, video in (("video", _VIDEO.value), ("video2", _SECOND.value)):
        outputs.check_input_path(video, flag=flag, kind="file")
    if _JSON.value:
        outputs.check_output_file(_JSON.value, flag="json", overwrite=_OVERWRITE.value,
                                  inputs=[_VIDEO.value, _SECOND.value])
    # Decoded before any timing: a corrupt or too short video is a usage error
    # now, not a traceback after the flow timings.
    pairs = max(_PAIRS.value, _TVL1_PAIRS.value)
    checks.check_video(_VIDEO.value, flag="video", min_frames=_flow_frames(),
                       why=f"{pairs} frame pairs: --pairs {_PAIRS.value}, --tvl1_pairs "
                           f"{_TVL1_PAIRS.value}")
    checks.check_video(_SECOND.value, flag="video2")
    from i3d_keras.data.video import VideoDecodeError  # noqa: PLC0415 (OpenCV: after setup)

    try:
        result = {"flow": bench_flow(_VIDEO.value), "motion_dataset": bench_motion(),
                  "pipeline": bench_pipeline([_VIDEO.value, _SECOND.value])}
    except VideoDecodeError as error:  # damaged past the frames checked above
        console.fail(f"the videos must decode. Received: {error.path!r} ({error.reason})")
    if _JSON.value:
        from i3d_keras.benchmarks import results  # noqa: PLC0415

        result["run"] = results.run_record("benchmark_data")  # machine, versions, commit, date
        outputs.write_json(_JSON.value, result)


if __name__ == "__main__":
    console.run(main)
