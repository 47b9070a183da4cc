"""Compares I3D with the paper's other architectures: cost and accuracy.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017,
Tables 1 and 2. For each architecture (`i3d_keras.models.baselines.ARCHITECTURES`):
parameters, input frames, multiply-adds per clip, and validation accuracy after
a short training run on the built-in motion dataset (5 pairs of classes that
are time reversals of each other), including the within-pair accuracy, where a
model that ignores frame order stays at chance (50%). Writes comparison.md,
comparison.png and comparison.json to --output_dir. Everything runs from
scratch (no downloads) unless --weights=imagenet.

The defaults are the main job's motion recipe (1000 clips of 8 frames x 32x32,
batch 8, 5 epochs, Adam with a cosine schedule; XLA with a GPU, and on a CPU
for 3d_fused only), with which
`tools/train.py --stream rgb` took about 4 minutes for I3D on this project's
2-core CPU and reached 99% validation accuracy. For a quick look at the paper's
point, compare the per-frame 2D model with I3D (second usage line).

Usage:
  python tools/compare.py                                    # all 7, into runs/compare
  python tools/compare.py --output_dir /tmp/cmp --arch convnet_pooling,i3d  # ~15 min
  python tools/compare.py --output_dir /tmp/cost --notrain   # costs only
  python tools/compare.py --output_dir /tmp/cmp --frames 16 --epochs 8
"""


from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.runtime import precision  # noqa: E402
from i3d_keras.utils import outputs  # noqa: E402

_DEFAULT_ARCHS = ("convnet_pooling,convnet_lstm,c3d,two_stream_2d,3d_fused,i3d,two_stream_i3d")

_PRECISION = flags.DEFINE_enum("mixed_precision", "auto", list(precision.PRECISIONS),
                               precision.FLAG_HELP)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "runs/compare", "Where the table and chart go.")
_ARCH = flags.DEFINE_list("arch", _DEFAULT_ARCHS, "Architectures to compare.")
_NUM_TRAIN = flags.DEFINE_integer("num_train", 1000, "Training clips (motion dataset).",
                                  lower_bound=1)
_NUM_VAL = flags.DEFINE_integer("num_val", 200, "Validation clips (motion dataset).",
                                lower_bound=1)
_FRAMES = flags.DEFINE_integer("frames", 8, "Frames per clip.",
                               lower_bound=1)
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 32, "Frame height and width.",
                                   lower_bound=1)
_EPOCHS = flags.DEFINE_integer("epochs", 5, "Training epochs per architecture.",
                               lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 8, "Clips per batch.",
                                   lower_bound=1)
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.",
                                    lower_bound=0.0)
_BN_MOMENTUM = flags.DEFINE_float("batch_norm_momentum", 0.9, "BatchNorm momentum (all models).",
                                  lower_bound=0.0, upper_bound=1.0)
_STREAM = flags.DEFINE_enum("stream", "rgb", ["rgb", "flow"], "Stream of one-stream models.")
_WEIGHTS = flags.DEFINE_enum("weights", None, ["imagenet"], "Backbones from ImageNet "
                             "(default: from scratch).")
_SEED = flags.DEFINE_integer("seed", 0, "Data and initialisation seed.")
_TRAIN = flags.DEFINE_bool("train", True, "Train and evaluate (else costs only).")
_XLA = flags.DEFINE_bool("xla", None, "Compile with XLA (default: with a GPU; on a CPU for "
                         "3d_fused only; falls back per architecture).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace the report files in --output_dir.")


def main(argv):
    del argv
    from i3d_keras.models import baselines  # noqa: PLC0415 (after the environment is set)
    from i3d_keras.tasks import comparison  # noqa: PLC0415

    unknown = [a for a in _ARCH.value if a not in baselines.ARCHITECTURES]
    if unknown or not _ARCH.value:
        console.fail(f"--arch must name architectures among {sorted(baselines.ARCHITECTURES)}. "
                     f"Received: {_ARCH.value}")
    repeated = sorted({a for a in _ARCH.value if _ARCH.value.count(a) > 1})
    if repeated:  # it trained and reported the same architecture twice
        console.fail(f"--arch must name each architecture once. Received: {', '.join(repeated)} "
                     "more than once")
    outputs.check_output_dir(_OUTPUT_DIR.value)
    for path in comparison.report_paths(_OUTPUT_DIR.value).values():
        outputs.check_output_file(path, flag="output_dir", overwrite=_OVERWRITE.value,
                                  create_parent=True)
    precision.use_precision(_PRECISION.value, tool="compare")

    try:
        rows = comparison.run_comparison(
            _OUTPUT_DIR.value, _ARCH.value, num_train=_NUM_TRAIN.value, num_val=_NUM_VAL.value,
            frames=_FRAMES.value, image_size=_IMAGE_SIZE.value, epochs=_EPOCHS.value,
            batch_size=_BATCH_SIZE.value, learning_rate=_LEARNING_RATE.value,
            batch_norm_momentum=_BN_MOMENTUM.value, stream=_STREAM.value,
            weights=_WEIGHTS.value, seed=_SEED.value, train=_TRAIN.value, xla=_XLA.value,
            log=console.info,  # progress: standard error
        )
    except ValueError as error:
        console.fail(f"{error}")
    with open(comparison.report_paths(_OUTPUT_DIR.value)["markdown"], encoding="utf-8") as f:
        print(f.read())
    console.info(f"compare: wrote {len(rows)} rows to "
                 f"{_OUTPUT_DIR.value}/comparison.{{md,png,json}}")


if __name__ == "__main__":
    console.run(main)
