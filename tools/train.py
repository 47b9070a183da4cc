"""Trains an I3D stream (or a comparison architecture) with the paper's recipe.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017.
Each stream of the two-stream I3D is trained on its own; tools/evaluate.py adds
their logits at test time.

Usage:
  # The built-in motion dataset (no download), clips of 8 frames x 32x32, sized
  # to finish in about 10 minutes on a 2-core CPU.
  python tools/train.py --stream rgb
  python tools/train.py --stream flow

  # Prepared shards (tools/prepare_dataset.py), the paper's recipe, from
  # ImageNet-inflated weights or by fine-tuning DeepMind's Kinetics checkpoint:
  python tools/train.py --stream rgb --dataset data/ucf101_split1 --init imagenet
  python tools/train.py --stream flow --dataset data/ucf101_split1 --init kinetics \
      --freeze_until Mixed_4f --epochs 10

  # Mixed precision and XLA (on by default with a GPU), several devices:
  python tools/train.py --stream rgb --mixed_precision bfloat16 --xla
  python tools/train.py --stream rgb --strategy mirrored --num_cpu_devices 2
  TF_CONFIG='{...}' python tools/train.py --stream rgb --strategy multi_worker

Then both streams and their fusion on the validation clips (the runs' recipe):
  python tools/evaluate.py --model runs/i3d_rgb_motion/best.keras \
      --flow_model runs/i3d_flow_motion/best.keras

Killed in the middle, the same command resumes from the last finished epoch.
Progress (a line per epoch; on a terminal also one per step, in place) goes to
standard error, the run's summary (JSON) to standard output; --verbose shows the
libraries' logs. Exit status: 0 trained (or already done), 1 a failed download of the
--init weights (the message says how to go on offline), 2 a usage error.
Outputs in --output_dir: best.keras, last.keras, history.csv, tensorboard/,
training_curves.png, done.json.
"""

import json

from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.runtime import precision  # noqa: E402
from i3d_keras.tasks import training  # noqa: E402

_STREAM = flags.DEFINE_enum("stream", "rgb", list(training.STREAMS), "Input stream (both: "
                            "RGB and flow, for i3d the two-stream I3D trained as one model).")
_ARCH = flags.DEFINE_enum("arch", "i3d", list(training.ARCHITECTURES), "Architecture: i3d, "
                          "or one of the paper's comparison models.")
_DATASET = flags.DEFINE_string("dataset", None, "Folder of prepared shards; default: the "
                               "built-in motion dataset.")
_TRAIN_SPLIT = flags.DEFINE_string("train_split", "train", "Training split name.")
_VAL_SPLIT = flags.DEFINE_string("val_split", None, "Validation split (default: val or test).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Run folder (default runs/ARCH_STREAM_DATA).")
_EPOCHS = flags.DEFINE_integer("epochs", None, "Epochs (recipe default).",
                               lower_bound=1)
_STEPS = flags.DEFINE_integer("steps_per_epoch", None, "Steps per epoch (default: one pass).",
                              lower_bound=1)
_BATCH = flags.DEFINE_integer("batch_size", None, "Global batch size (recipe default).",
                              lower_bound=1)
_FRAMES = flags.DEFINE_integer("frames", None, "Frames per clip (motion 8, paper 64).",
                               lower_bound=1)
_SIZE = flags.DEFINE_integer("image_size", None, "Crop size (motion 32, paper 224).",
                             lower_bound=1)
_OPTIMIZER = flags.DEFINE_enum("optimizer", None, ["sgd", "adam"], "Optimizer.")
_LR = flags.DEFINE_float("learning_rate", None, "Base learning rate.",
                         lower_bound=0.0)
_SCHEDULE = flags.DEFINE_enum("lr_schedule", None, ["step", "cosine", "constant"],
                              "Learning-rate schedule over the run.")
_MOMENTUM = flags.DEFINE_float("momentum", 0.9, "SGD momentum.",
                               lower_bound=0.0, upper_bound=1.0)
_WD = flags.DEFINE_float("weight_decay", None, "Weight decay (paper 1e-7).",
                         lower_bound=0.0)
_DROPOUT = flags.DEFINE_float("dropout_rate", None, "Dropout before the logits (paper 0.5; "
                               "motion dataset 0).",
                              lower_bound=0.0, upper_bound=0.999)
_BN = flags.DEFINE_float("batch_norm_momentum", None, "BatchNorm moving-average momentum.",
                         lower_bound=0.0, upper_bound=1.0)
_INIT = flags.DEFINE_string("init", "scratch", "scratch | imagenet | kinetics | "
                            "kinetics_scratch | a .keras/.weights.h5/DeepMind checkpoint path.")
_FREEZE = flags.DEFINE_string("freeze_until", None, "Freeze layers up to this endpoint.")
_PRECISION = flags.DEFINE_enum("mixed_precision", "auto", list(training.PRECISIONS),
                               precision.FLAG_HELP)
_XLA = flags.DEFINE_bool("xla", None, "XLA compilation (default: on with a GPU only; on a CPU "
                         "the 2D-convolution formulation is faster without it).")
_STRATEGY = flags.DEFINE_enum("strategy", "default", list(training.STRATEGIES),
                              "tf.distribute strategy.")
_CPUS = flags.DEFINE_integer("num_cpu_devices", 2, "Logical CPU devices for --strategy "
                             "mirrored without GPUs.",
                             lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
_NUM_TRAIN = flags.DEFINE_integer("num_train", None, "Motion dataset: training clips.",
                                  lower_bound=1)
_NUM_VAL = flags.DEFINE_integer("num_val", None, "Motion dataset: validation clips.",
                                lower_bound=1)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Start over: delete the run's files in "
                               "--output_dir (only those train writes) and train again.")


def main(argv):
    del argv
    config = training.TrainConfig(
        stream=_STREAM.value, arch=_ARCH.value, dataset=_DATASET.value,
        train_split=_TRAIN_SPLIT.value, val_split=_VAL_SPLIT.value,
        output_dir=_OUTPUT_DIR.value, epochs=_EPOCHS.value, steps_per_epoch=_STEPS.value,
        batch_size=_BATCH.value, frames=_FRAMES.value, image_size=_SIZE.value,
        optimizer=_OPTIMIZER.value, learning_rate=_LR.value, lr_schedule=_SCHEDULE.value,
        momentum=_MOMENTUM.value, weight_decay=_WD.value, dropout_rate=_DROPOUT.value,
        batch_norm_momentum=_BN.value, init=_INIT.value, freeze_until=_FREEZE.value,
        mixed_precision=_PRECISION.value, xla=_XLA.value, strategy=_STRATEGY.value,
        num_cpu_devices=_CPUS.value, seed=_SEED.value, num_train=_NUM_TRAIN.value,
        num_val=_NUM_VAL.value, overwrite=_OVERWRITE.value,
    )
    try:
        # Before any work: settings and the run folder; the recipe's defaults filled in.
        config = training.check_run(config)
    except training.TrainingError as error:
        console.fail(f"{error}")
    streams = "rgb and flow streams" if config.stream == "both" else f"{config.stream} stream"
    console.info(f"train: the {streams} of {config.arch} on "
                 f"{config.dataset or 'the built-in motion dataset'}, into {config.output_dir}")
    try:
        summary = training.train(config)
    except (training.TrainingError, FileNotFoundError) as error:
        console.fail(f"{error}")
    if summary.get("already_done"):
        console.info(f"train: this run already finished ({summary['output_dir']}); pass "
                     "--overwrite to train again.")
    summary.pop("history", None)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    console.run(main, interrupted="interrupted; rerun the same command to resume from the last "
                                  "finished epoch")
