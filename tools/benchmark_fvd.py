"""Times FVD's feature extraction: seconds per clip, and for a whole FVD set.

Reference: Unterthiner et al., "Towards Accurate Generative Models of Video: A New
Metric & Challenges", arXiv:1812.01717 (2048 clips of 16 frames per set in the usual
protocol). Times `i3d_keras.tasks.fvd.video_features`' work on random uint8 clips:
the TF1 bilinear resize to 224x224, [-1, 1], and I3D up to its time-averaged logits,
batch by batch after a warm-up batch (tracing). Reports the median seconds per clip
over --repeats runs of --clips clips, and that median times --set_size.

Usage:
  python tools/benchmark_fvd.py                           # 4 clips of 16x224x224, float32
  python tools/benchmark_fvd.py --clips 8 --batch_size 4 --repeats 5 --json fvd_speed.json
  python tools/benchmark_fvd.py --mixed_precision         # the package's 'auto' policy

The weights do not change the cost: random ones are used unless --weights is given.
"""


from i3d_keras.utils import console

console.setup()  # before TensorFlow loads: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.utils import outputs  # noqa: E402

_CLIPS = flags.DEFINE_integer("clips", 4, "Clips per timed run.",
                              lower_bound=1)
_FRAMES = flags.DEFINE_integer("frames", 16, "Frames per clip.",
                               lower_bound=1)
_INPUT_SIZE = flags.DEFINE_integer("input_size", 224, "Frame size before the resize to 224.",
                                   lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", 1, "Clips per forward pass.",
                              lower_bound=1)
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed runs (median).",
                                lower_bound=1)
_SET_SIZE = flags.DEFINE_integer("set_size", 2048, "Clips of the extrapolated FVD set.",
                                 lower_bound=1)
_MIXED = flags.DEFINE_bool("mixed_precision", False, "The package's 'auto' precision "
                           "(i3d_keras.runtime.precision: bfloat16 on AMX/AVX512-BF16 CPUs and "
                           "newer GPUs, float16 on 7.x GPUs, else float32).")
_WEIGHTS = flags.DEFINE_string("weights", "random", "Weights (see tools/fvd.py --weights).")
_JSON = flags.DEFINE_string("json", None, "Also write the results to this JSON file.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace an existing --json file.")


def main(argv):
    if len(argv) > 1:
        console.fail(f"unexpected arguments {argv[1:]}")
    if _JSON.value:
        outputs.check_output_file(_JSON.value, flag="json", inputs=[_WEIGHTS.value],
                                  overwrite=_OVERWRITE.value)

    import warnings  # noqa: PLC0415

    import tensorflow as tf  # noqa: PLC0415

    from i3d_keras.benchmarks import results  # noqa: PLC0415
    from i3d_keras.runtime import hardware  # noqa: PLC0415
    from i3d_keras.tasks import fvd  # noqa: PLC0415

    precision = "auto" if _MIXED.value else "float32"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # random weights: no FVD is computed here
            model = fvd.load_fvd_model(_WEIGHTS.value, precision=precision)
    except (FileNotFoundError, ValueError) as error:
        console.fail(f"--weights: {error}")
    except OSError as error:
        console.fail(str(error), console.EXIT_FAILED)
    size = f"{_FRAMES.value}x{_INPUT_SIZE.value}x{_INPUT_SIZE.value}"
    console.info(f"timing {console.plural(_CLIPS.value, 'clip')} of {size}, "
                 f"{console.plural(_REPEATS.value, 'run')} ...")
    result = fvd.benchmark_video_features(
        model, clips=_CLIPS.value, frames=_FRAMES.value, input_size=_INPUT_SIZE.value,
        batch_size=_BATCH.value, repeats=_REPEATS.value, set_size=_SET_SIZE.value)
    gpus = tf.config.list_physical_devices("GPU")
    cpu = hardware.cpu_info()
    result.update(cpu=cpu.model, cpu_cores=cpu.cores,
                  gpus=[g.name for g in gpus], weights=_WEIGHTS.value)
    minutes = result["set_seconds"] / 60
    print(f"features: {result['seconds_per_clip']:.3f} s per clip (median of "
          f"{', '.join(f'{r:.3f}' for r in result['runs'])}); {result['set_size']} clips: "
          f"{minutes:.1f} min per set; {result['precision']}, batch {result['batch_size']}, "
          f"{result['frames']}x{result['input_size']}x{result['input_size']} -> 224x224; "
          f"{result['cpu']} ({result['cpu_cores']} cores){', GPU' if gpus else ''}")
    if _JSON.value:
        result["run"] = results.run_record("benchmark_fvd")  # machine, versions, commit, date
        outputs.write_json(_JSON.value, result)


if __name__ == "__main__":
    console.run(main)
