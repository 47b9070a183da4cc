"""Training of I3D streams (and the comparison architectures) with Keras `fit`.

The paper's recipe (Carreira & Zisserman, "Quo Vadis, Action Recognition?",
CVPR 2017, Sec. 3.1) is the default for real datasets: SGD with momentum 0.9, a
step learning-rate schedule, weight decay 1e-7, dropout 0.5, BatchNorm in
training mode, 64-frame clips with random 224x224 crops and flips, each stream
trained on its own. On the built-in motion dataset (no `dataset`), a short
recipe that finishes on a 2-core CPU is used instead (see `MOTION_RECIPE`).

Runs are resumable: a run killed in the middle and started again with the same
arguments continues from the last finished epoch (`BackupAndRestore`), keeps
its best model, and appends to its logs.
"""

import csv
import dataclasses
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Optional

import keras
import tensorflow as tf

from i3d_keras.models import baselines
from i3d_keras.models import i3d as i3d_model
from i3d_keras.runtime import precision
from i3d_keras.utils import outputs, plotting

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
PRECISIONS = precision.PRECISIONS
INITS = ("scratch", "imagenet", "kinetics", "kinetics_scratch")
#: `arch` values: I3D and the paper's comparison models (`baselines.ARCHITECTURES`).
ARCHITECTURES = tuple(baselines.ARCHITECTURES)
STREAMS = ("rgb", "flow", "both")

# The built-in motion dataset's recipe, sized for a 2-core CPU: 8 frames of
# 32x32 pixels, batch 8, no dropout. XLA only with a GPU: on the CPU the 2D
# formulation of the convolutions (i3d_keras.models.convolution) took 0.23 s per step
# without XLA against 0.42 s with it (after a 48 s compilation); TensorFlow's
# own Conv3D gradients had taken 10.6 s (docs/design/conv3d-as-2d.md).
MOTION_RECIPE = dict(
    frames=8, image_size=32, batch_size=8, epochs=5, num_train=1000, num_val=200,
    optimizer="adam", learning_rate=1e-3, lr_schedule="cosine", batch_norm_momentum=0.9,
    weight_decay=0.0, dropout_rate=0.0,
)
# The paper's recipe for real datasets.
PAPER_RECIPE = dict(
    frames=64, image_size=224, batch_size=8, epochs=40, optimizer="sgd", learning_rate=0.1,
    lr_schedule="step", batch_norm_momentum=0.999, weight_decay=1e-7, dropout_rate=0.5,
)


class TrainingError(ValueError):
    """A training run that cannot start: bad arguments or data."""


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs; `tools/train.py` fills it from flags.

    Attributes left None take the recipe's value (`MOTION_RECIPE` without a
    dataset, `PAPER_RECIPE` with one).
    """

    stream: str = "rgb"
    arch: str = "i3d"
    dataset: Optional[str] = None
    train_split: str = "train"
    val_split: Optional[str] = None
    output_dir: Optional[str] = None
    epochs: Optional[int] = None
    steps_per_epoch: Optional[int] = None
    batch_size: Optional[int] = None
    frames: Optional[int] = None
    image_size: Optional[int] = None
    optimizer: Optional[str] = None
    learning_rate: Optional[float] = None
    lr_schedule: Optional[str] = None
    momentum: float = 0.9
    weight_decay: Optional[float] = None
    dropout_rate: Optional[float] = None
    batch_norm_momentum: Optional[float] = None
    init: str = "scratch"
    freeze_until: Optional[str] = None
    mixed_precision: str = "auto"
    xla: Optional[bool] = None
    strategy: str = "default"
    num_cpu_devices: int = 2
    seed: int = 0
    num_train: Optional[int] = None
    num_val: Optional[int] = None
    overwrite: bool = False
    verbose: int = 1

    def resolved(self):
        """A copy with the recipe's defaults filled in."""
        recipe = MOTION_RECIPE if self.dataset is None else PAPER_RECIPE
        values = dataclasses.asdict(self)
        for key, value in recipe.items():
            if values.get(key) is None:
                values[key] = value
        if values["output_dir"] is None:
            data = "motion" if self.dataset is None else Path(self.dataset).name
            values["output_dir"] = os.path.join("runs", f"{self.arch}_{self.stream}_{data}")
        return TrainConfig(**values)


def validate_config(config):
    """Raises `TrainingError` naming the first bad argument."""
    def check(condition, message):
        if not condition:
            raise TrainingError(message)

    check(config.arch in ARCHITECTURES,
          f"`arch` must be one of {ARCHITECTURES}. Received: arch={config.arch!r}")
    check(config.stream in STREAMS,
          f"`stream` must be 'rgb', 'flow' or 'both'. Received: stream={config.stream!r}")
    two_stream = [name for name in ARCHITECTURES if baselines.input_modality(name) == "both"]
    check(config.stream != "both" or config.arch == "i3d" or config.arch in two_stream,
          f"`stream` 'both' (RGB and flow together) needs arch 'i3d' (trained as the "
          f"two-stream I3D) or a two-stream architecture ({', '.join(two_stream)}). "
          f"Received: arch={config.arch!r}, stream='both'")
    check(config.strategy in STRATEGIES,
          f"`strategy` must be one of {STRATEGIES}. Received: strategy={config.strategy!r}")
    check(config.mixed_precision in PRECISIONS,
          f"`mixed_precision` must be one of {PRECISIONS}. "
          f"Received: mixed_precision={config.mixed_precision!r}")
    check(config.optimizer in ("sgd", "adam"),
          f"`optimizer` must be 'sgd' or 'adam'. Received: optimizer={config.optimizer!r}")
    check(config.lr_schedule in ("step", "cosine", "constant"),
          "`lr_schedule` must be 'step', 'cosine' or 'constant'. "
          f"Received: lr_schedule={config.lr_schedule!r}")
    for name in ("epochs", "batch_size", "frames", "image_size"):
        value = getattr(config, name)
        check(isinstance(value, int) and value > 0,
              f"`{name}` must be a positive integer. Received: {name}={value}")
    from i3d_keras.weights import deepmind, pretrained  # noqa: PLC0415 (light: no download)

    init = config.init
    if init != "scratch" and init not in pretrained.KEYWORDS \
            and init not in deepmind.CHECKPOINT_NAMES:
        check(Path(init).is_file() or Path(init + ".index").is_file()
              or Path(init).is_dir(),
              f"`init` must be 'scratch', one of {pretrained.KEYWORDS}, a DeepMind checkpoint "
              f"name or an existing weights file. Received: init={init!r} (no such file)")
        if not init.endswith((".keras", ".h5")):  # a checkpoint: its data beside its index
            try:
                deepmind.open_checkpoint(init)
            except FileNotFoundError as error:
                raise TrainingError(f"--init: {error}") from None
    if config.dataset is not None:
        check(Path(config.dataset).is_dir(),
              f"Expected a folder of prepared shards (tools/prepare_dataset.py). "
              f"Received: dataset={config.dataset!r} "
              f"({'a file: pass its folder' if Path(config.dataset).exists() else 'no such folder'})")
        check(any(Path(config.dataset).glob("*.tfrecord*")),
              f"Expected TFRecord shards in the dataset folder. Received: dataset="
              f"{config.dataset!r} with no *.tfrecord files (run tools/prepare_dataset.py)")
        _check_training_clips(config)


def _check_training_clips(config):
    """Refuses a training split with fewer clips than one batch (the training
    pipeline drops the last partial batch, so an epoch would have no step)."""
    from i3d_keras.data import records  # noqa: PLC0415

    try:
        splits = records.read_metadata(config.dataset)["splits"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise TrainingError(f"Expected a dataset folder with the metadata of "
                            f"tools/prepare_dataset.py. Received: dataset={config.dataset!r} "
                            f"({error})") from None
    if config.train_split not in splits:
        raise TrainingError(f"Expected a split named {config.train_split!r} in "
                            f"{config.dataset}. Received: splits {sorted(splits)}")
    try:
        clips = _num_clips(config.dataset, splits[config.train_split])
    except (KeyError, TypeError, ValueError) as error:
        raise TrainingError(f"Expected the metadata of tools/prepare_dataset.py in "
                            f"{config.dataset}. Received: split {config.train_split!r} without "
                            f"{error}") from None
    except tf.errors.DataLossError:
        _raise_naming_corrupt_shard(config.dataset)
        raise
    # With --steps_per_epoch the split repeats before batching: any clip will do.
    repeats = config.steps_per_epoch is not None
    if clips < (1 if repeats else config.batch_size):
        expected = ("at least one training clip" if repeats else
                    f"at least --batch_size={config.batch_size} training clips (one batch per "
                    "step; or pass a smaller --batch_size)")
        raise TrainingError(
            f"Expected {expected}. Received: {clips} clip{'' if clips == 1 else 's'} in "
            f"split {config.train_split!r} of {config.dataset}")


def _num_clips(dataset, split):
    """The videos of a split: its metadata's count, else its records counted."""
    if split.get("num_videos") is not None:
        return int(split["num_videos"])
    files = sorted(str(p) for p in Path(dataset).glob(split["file_pattern"]))
    return int(tf.data.TFRecordDataset(files).reduce(0, lambda n, _: n + 1)) if files else 0


def _is_multi_worker(strategy):
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())  # noqa: SLF001


def install_multi_worker_fixes():
    """Makes Keras 3 `fit` work under `MultiWorkerMirroredStrategy` (TF backend).

    Keras 3.15's `fit` fails there (keras-team/keras#20585): (1) before the
    first step it averages a distributed input batch with `strategy.reduce`
    only to build the model, which raises "Failed to convert PerReplica to a
    Tensor" in eager mode; (2) it reduces the step's scalar metrics with
    `strategy.reduce("MEAN", v, axis=0)`, an invalid axis for scalars. This
    patches both, and only changes behaviour under that strategy: the model is
    built from this worker's first local batch, and scalar metrics are
    averaged with `axis=None`. Idempotent; `make_strategy("multi_worker")`
    calls it.
    """
    from keras.src.backend.tensorflow import trainer as tf_trainer  # noqa: PLC0415

    if getattr(tf_trainer, "_i3d_keras_multi_worker_fixes", False):
        return
    reduce_per_replica = tf_trainer.reduce_per_replica
    maybe_symbolic_build = tf_trainer.TensorFlowTrainer._maybe_symbolic_build  # noqa: SLF001

    def reduce_fixed(values, strategy, reduction):
        if reduction in ("auto", "mean") and _is_multi_worker(strategy):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    def symbolic_build_fixed(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy  # noqa: SLF001
        if strategy is None or iterator is None or not _is_multi_worker(strategy):
            return maybe_symbolic_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            data_batch = tf.nest.map_structure(
                lambda v: (strategy.experimental_local_results(v)[0]
                           if isinstance(v, tf.distribute.DistributedValues) else v),
                next(it))
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)  # noqa: SLF001

    tf_trainer.reduce_per_replica = reduce_fixed
    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = symbolic_build_fixed  # noqa: SLF001
    tf_trainer._i3d_keras_multi_worker_fixes = True  # noqa: SLF001


def make_strategy(name="default", num_cpu_devices=2):
    """A `tf.distribute` strategy by name.

    Args:
        name: `"default"` (one device), `"mirrored"` (all local GPUs, or
            `num_cpu_devices` logical CPU devices when there is no GPU),
            `"multi_worker"` (`MultiWorkerMirroredStrategy`, cluster from the
            `TF_CONFIG` environment variable) or `"tpu"`.
        num_cpu_devices: logical CPU devices for `"mirrored"` without GPUs.
            Must be called before TensorFlow initialises its devices.

    Returns:
        A `tf.distribute.Strategy`. With any of them, the batch size given to
        the datasets is the global batch size.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_physical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        split_cpu(num_cpu_devices)
        devices = [d.name for d in tf.config.list_logical_devices("CPU")][:num_cpu_devices]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise TrainingError(
                "strategy 'multi_worker' reads the cluster from the TF_CONFIG environment "
                "variable. Received: TF_CONFIG unset"
            )
        install_multi_worker_fixes()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise TrainingError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")


def split_cpu(num_devices):
    """Splits the CPU into `num_devices` logical devices (before TF initialises)."""
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current and len(current) >= num_devices:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_devices
        )
    except RuntimeError as error:
        raise TrainingError(
            "Logical CPU devices must be configured before TensorFlow initialises its "
            f"devices (start a new process). Received: {error}"
        ) from None


def resolve_precision(mixed_precision="auto"):
    """The Keras dtype policy name for a `mixed_precision` setting.

    `i3d_keras.runtime.precision.resolve_precision` (kept here for existing callers):
    `"auto"` picks `mixed_bfloat16` on CPUs with AMX-BF16 or AVX512-BF16 and on
    GPUs of compute capability >= 8.0, `mixed_float16` on 7.x GPUs, else float32.
    """
    return precision.resolve_precision(mixed_precision)


def learning_rate_schedule(kind, base, total_steps):
    """The learning rate over a run of `total_steps`.

    "step" is the paper's schedule made proportional to the run: the rate
    drops 10x at 50% and again at 75% of the steps. "cosine" decays to zero.
    """
    total_steps = max(int(total_steps), 1)
    if kind == "constant":
        return base
    if kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(base, total_steps)
    boundaries = [max(int(total_steps * 0.5), 1), max(int(total_steps * 0.75), 2)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, [base, base * 0.1, base * 0.01]
    )


def make_optimizer(config, total_steps):
    schedule = learning_rate_schedule(config.lr_schedule, config.learning_rate, total_steps)
    # Decoupled weight decay: w <- w - lr * wd * w, the same as the paper's L2
    # term (wd/2 * |w|^2) for plain SGD.
    weight_decay = config.weight_decay or None
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=config.momentum,
                                    weight_decay=weight_decay)
    return keras.optimizers.Adam(schedule, weight_decay=weight_decay)


def _models_with_layer(model, name):
    """`model` if it has a layer `name`, else its nested models that have one
    (the stream models of a two-stream model)."""
    if any(layer.name == name for layer in model.layers):
        return [model]
    return [found for layer in model.layers if isinstance(layer, keras.Model)
            for found in _models_with_layer(layer, name)]


def freeze_until(model, endpoint):
    """Freezes every layer up to and including the `endpoint` layer (graph order).

    In a two-stream model (`TwoStreamI3D`), each stream is frozen up to its own
    `endpoint`.
    """
    models = _models_with_layer(model, endpoint)
    if not models:
        raise TrainingError(
            f"`freeze_until` must name a layer of the model, e.g. 'Mixed_4f'. "
            f"Received: freeze_until={endpoint!r}"
        )
    for found in models:
        names = [layer.name for layer in found.layers]
        for layer in found.layers[: names.index(endpoint) + 1]:
            layer.trainable = False


def build_model(config, num_classes, synchronized_batch_norm=False):
    """The model of `config.arch` for `config.stream`, initialised per `config.init`.

    With `synchronized_batch_norm` (set by `train` under several replicas), I3D's
    BatchNorm statistics span the global batch, so that a distributed run
    computes what one device computes on the same global batch.
    """
    weights = None if config.init == "scratch" else config.init
    common = dict(frames=config.frames, image_size=config.image_size)
    if config.arch == "i3d":
        streams = ["rgb", "flow"] if config.stream == "both" else [config.stream]
        models = [
            i3d_model.InceptionI3D(
                num_classes, s, dropout_rate=config.dropout_rate,
                batch_norm_momentum=config.batch_norm_momentum,
                synchronized_batch_norm=synchronized_batch_norm, weights=weights, **common,
            )
            for s in streams
        ]
        model = models[0] if len(models) == 1 else i3d_model.TwoStreamI3D(*models)
    else:
        model = baselines.build_architecture(
            config.arch, num_classes, stream=config.stream, weights=weights,
            batch_norm_momentum=config.batch_norm_momentum, **common
        )
    if config.freeze_until:
        freeze_until(model, config.freeze_until)
    # `TwoStreamI3D` outputs {"logits", "probabilities"}; the loss and metrics
    # take the fused logits (the view shares its layers and weights).
    return baselines.classifier(model)


def _input_modality(config):
    if config.arch == "i3d":
        return config.stream
    return baselines.input_modality(config.arch, config.stream)


def build_datasets(config):
    """(train, val, class_names) for `config`: prepared shards or the motion dataset."""
    modality = _input_modality(config)
    if config.dataset is None:
        from i3d_keras.data import motion_dataset  # noqa: PLC0415

        train, val = motion_dataset.motion_datasets(
            num_train=config.num_train or MOTION_RECIPE["num_train"],
            num_val=config.num_val or MOTION_RECIPE["num_val"],
            num_frames=config.frames, size=config.image_size, batch_size=config.batch_size,
            modality=modality, seed=config.seed,
        )
        if config.steps_per_epoch is not None:  # epochs of any length, as with shards
            train = train.repeat()
        return train, val, list(motion_dataset.CLASSES)
    from i3d_keras.data import input_pipeline, records  # noqa: PLC0415

    meta = records.read_metadata(config.dataset)
    splits = meta["splits"]
    if config.train_split not in splits:
        raise TrainingError(
            f"Expected a split named {config.train_split!r} in {config.dataset}. "
            f"Received: splits {sorted(splits)}"
        )
    val_split = config.val_split or next(
        (s for s in ("val", "validation", "test") if s in splits), None)
    common = dict(modality=modality, num_frames=config.frames, crop_size=config.image_size,
                  batch_size=config.batch_size)
    train = input_pipeline.load_split(config.dataset, config.train_split, training=True,
                                      seed=config.seed, repeat=config.steps_per_epoch is not None,
                                      **common)
    val = None
    # Shards have no known cardinality: one epoch is one pass over the split's
    # videos (the last partial batch dropped), one validation one pass over all
    # of them. Unknown, Keras reads on until the data runs out and warns.
    if val_split is not None:
        val = input_pipeline.load_split(config.dataset, val_split, training=False, **common)
        clips = _num_clips(config.dataset, splits[val_split])
        if clips:
            val = val.apply(tf.data.experimental.assert_cardinality(
                -(-clips // config.batch_size)))
    steps = _num_clips(config.dataset, splits[config.train_split]) // config.batch_size
    train = train.apply(tf.data.experimental.assert_cardinality(steps)) if steps and \
        config.steps_per_epoch is None else train
    return train, val, list(meta["classes"])


def _raise_naming_corrupt_shard(dataset):
    """Raises a `TrainingError` naming the first unreadable shard of `dataset`.

    TensorFlow's read error ("corrupted record at 1234") does not say which file
    failed; the shards are read once more, only after such a failure, to find it.
    Finished epochs are safe (BackupAndRestore), so the run resumes once the
    shard is replaced.
    """
    if dataset is None:
        return
    from i3d_keras.data import records  # noqa: PLC0415

    files = [str(p) for split in records.read_metadata(dataset)["splits"].values()
             for p in sorted(Path(dataset).glob(split["file_pattern"]))]
    corrupt = records.find_corrupt_shard(files)
    if corrupt is not None:
        raise TrainingError(f"{corrupt}. Re-create or remove that shard and run the same "
                            "command again to resume.") from None


class ProgressETA(keras.callbacks.Callback):
    """The run's progress on standard error: one line per epoch with its
    metrics, the elapsed time and the run's ETA; on a terminal also a line
    rewritten in place after every step (Keras' own bar is off: it writes to
    standard output, with colour codes, and ran into these lines)."""

    def __init__(self, total_epochs, stream=None, steps=None):
        super().__init__()
        self.total_epochs = total_epochs
        self.stream = stream
        self.steps = steps
        self.start = None
        self.first_epoch = None
        self._epoch_start = None
        self._epoch = 0
        self._last_draw = 0.0

    def _out(self):
        return self.stream if self.stream is not None else sys.stderr

    def _tty(self):
        try:
            return self._out().isatty()
        except (AttributeError, ValueError):
            return False

    def on_epoch_begin(self, epoch, logs=None):
        if self.start is None:
            self.start, self.first_epoch = time.time(), epoch
        self._epoch, self._epoch_start = epoch, time.time()

    def on_train_batch_end(self, batch, logs=None):
        now = time.time()
        if not self._tty() or now - self._last_draw < 0.2:
            return
        self._last_draw = now
        rate = (batch + 1) / max(now - self._epoch_start, 1e-9)
        of = f"/{self.steps}" if self.steps else ""
        metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items())
                           if isinstance(v, (int, float)))
        self._out().write(f"\r[epoch {self._epoch + 1}/{self.total_epochs}] step {batch + 1}{of} "
                          f"{metrics} | {rate:.2f} steps/s\x1b[K")
        self._out().flush()

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.time() - self.start
        done = epoch + 1 - self.first_epoch
        remaining = (self.total_epochs - epoch - 1) * elapsed / max(done, 1)
        metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items())
                           if isinstance(v, (int, float)))
        erase = "\r\x1b[K" if self._tty() else ""
        print(f"{erase}[epoch {epoch + 1}/{self.total_epochs}] {metrics} | elapsed "
              f"{elapsed:.0f}s, ETA {remaining:.0f}s", file=self._out(), flush=True)


def read_history(csv_path):
    """The per-epoch metrics a CSVLogger wrote (all runs of a resumed training)."""
    if not Path(csv_path).exists():
        return {}
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    history = {}
    for row in rows:
        for key, value in row.items():
            if value not in ("", None):
                history.setdefault(key, []).append(float(value))
    return history


def plot_history(history, path, title="training curves"):
    """Writes the loss and accuracy curves of `history` to a PNG."""
    plt = plotting.pyplot()
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    epochs = [int(e) + 1 for e in history.get("epoch", range(len(history.get("loss", []))))]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + metric)
            if values:
                ax.plot(epochs[: len(values)], values, style, marker="o",
                        label=("validation " if prefix else "training ") + metric)
        ax.set_xlabel("epoch")
        # Whole epochs only; one epoch gets room either side instead of 0.96 ... 1.04.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if epochs:
            ax.set_xlim(min(epochs) - 0.5, max(epochs) + 0.5)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _best_so_far(history, monitor):
    values = history.get(monitor)
    return max(values) if values else None


#: What `train` writes into a run folder (and `overwrite` removes: nothing else).
RUN_FILES = ("config.json", "classes.txt", "backup", "last.keras", "best.keras",
             "history.csv", "tensorboard", "training_curves.png", "done.json")
#: Settings that do not change what a run computes: a rerun may change them.
_RESUMABLE_CHANGES = ("output_dir", "overwrite", "verbose", "xla", "strategy",
                      "num_cpu_devices")


def check_run(config):
    """Checks a run before any work: its settings (`validate_config`) and its
    folder, which must not hold a run of other settings, nor run files without
    a run's config, unless `config.overwrite`.

    Returns:
        The resolved config (recipe defaults filled in).

    Raises:
        TrainingError: a bad setting.
        outputs.OutputError: the folder is a file, or holds another run.
    """
    config = config.resolved()
    validate_config(config)
    out = outputs.check_output_dir(config.output_dir)
    if not config.overwrite and out.is_dir():
        _check_run_folder(out, config)
    return config


def _check_run_folder(out: Path, config) -> None:
    saved = out / "config.json"
    if not saved.exists():
        found = [name for name in RUN_FILES if (out / name).exists()]
        if found:
            raise outputs.OutputError(
                f"--output_dir {str(out)!r} holds {', '.join(found)} but no config.json of a "
                "run; pass --overwrite to replace them, or choose another --output_dir")
        return
    try:
        previous = json.loads(saved.read_text())
        if not isinstance(previous, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        raise outputs.OutputError(
            f"--output_dir {str(out)!r}: its config.json cannot be read ({error}); pass "
            "--overwrite to start the run over, or choose another --output_dir") from None
    current = dataclasses.asdict(config)
    keep = [k for k in current if k not in _RESUMABLE_CHANGES]
    differ = outputs.differences({k: previous.get(k) for k in keep},
                                 {k: current[k] for k in keep})
    if differ:
        raise outputs.OutputError(
            f"--output_dir {str(out)!r} holds a run with other settings: {differ}; rerun "
            "with the same settings to resume, pass --overwrite to start over (its run files "
            "are deleted), or choose another --output_dir")


def _remove_run(out: Path) -> None:
    """Deletes what `train` wrote into `out` (`RUN_FILES`), nothing else."""
    import shutil  # noqa: PLC0415

    for name in RUN_FILES:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def train(config, strategy=None, callbacks=()):
    """Trains (or resumes) a run; returns a summary dict.

    Reference: Carreira & Zisserman, CVPR 2017, Sec. 3.1 (training details).

    Args:
        config: a `TrainConfig`.
        strategy: a `tf.distribute.Strategy`; default `make_strategy(config.strategy)`.
        callbacks: extra Keras callbacks.

    Returns:
        `{"output_dir", "epochs_run", "best_val_accuracy", "final_val_accuracy",
        "history", "seconds", "best_model", "last_model", "curves_png"}`.

    Example:

    >>> summary = train(TrainConfig(stream="rgb"))  # doctest: +SKIP
    >>> summary["best_val_accuracy"] >= 0.9  # doctest: +SKIP
    True
    """
    config = check_run(config)
    out = Path(config.output_dir)
    done_marker = out / "done.json"
    if done_marker.exists() and not config.overwrite:
        summary = json.loads(done_marker.read_text())
        summary["already_done"] = True
        return summary

    keras.utils.set_random_seed(config.seed)
    policy, reason = precision.choose_precision(config.mixed_precision)
    # Models are built in the run's policy; the caller's is restored after, also on
    # an error (a caller's later models are not silently built in bfloat16).
    with precision.policy_scope(policy):
        return _train(config, out, policy, reason, strategy, callbacks)


def _train(config, out, policy, reason, strategy, callbacks):
    strategy = strategy or make_strategy(config.strategy, config.num_cpu_devices)
    gpu = bool(tf.config.list_physical_devices("GPU"))
    xla = gpu if config.xla is None else config.xla

    train_ds, val_ds, class_names = build_datasets(config)
    steps = config.steps_per_epoch or int(train_ds.cardinality().numpy())
    if steps <= 0:  # `check_run` refused fewer clips than a batch: not expected here
        raise TrainingError(
            f"Expected at least one training batch per epoch. Received: {steps} steps "
            f"(batch_size={config.batch_size})")
    with strategy.scope():
        try:
            model = build_model(config, len(class_names),
                                synchronized_batch_norm=strategy.num_replicas_in_sync > 1)
        except (ValueError, FileNotFoundError) as error:  # e.g. --init of another model
            raise TrainingError(f"Cannot build the model (--init {config.init!r}, "
                                f"--freeze_until {config.freeze_until!r}): {error}") from None
        # Any other OSError is a failed download of the --init weights (its
        # message says how to go on offline): it reaches the caller as it is.
        model.compile(
            optimizer=make_optimizer(config, steps * config.epochs),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                     keras.metrics.SparseTopKCategoricalAccuracy(
                         k=min(5, len(class_names)), name="top5_accuracy")],
            jit_compile=xla,
        )
    # The run folder is made (or emptied, with `overwrite`) once the run can start:
    # a bad --init, a failed download or too few clips leave nothing behind.
    if config.overwrite:
        _remove_run(out)
    out.mkdir(parents=True, exist_ok=True)
    outputs.write_json(out / "config.json", dataclasses.asdict(config))
    (out / "classes.txt").write_text("\n".join(class_names) + "\n")

    csv_path = out / "history.csv"
    monitor = "val_accuracy" if val_ds is not None else "accuracy"
    best = _best_so_far(read_history(csv_path), monitor)
    all_callbacks = [
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        keras.callbacks.ModelCheckpoint(str(out / "last.keras")),
        keras.callbacks.ModelCheckpoint(
            str(out / "best.keras"), monitor=monitor, mode="max", save_best_only=True,
            initial_value_threshold=best,
        ),
        keras.callbacks.CSVLogger(str(csv_path), append=True),
        keras.callbacks.TensorBoard(str(out / "tensorboard"), update_freq="epoch",
                                    write_graph=False),
        *([ProgressETA(config.epochs, steps=config.steps_per_epoch or steps)]
          if config.verbose else []),
        *callbacks,
    ]
    print(
        f"Training {config.arch} ({config.stream}) on "
        f"{'the built-in motion dataset' if config.dataset is None else config.dataset}: "
        f"{len(class_names)} classes, clips of {config.frames} frames x "
        f"{config.image_size}x{config.image_size}, batch {config.batch_size}, "
        f"{config.epochs} epoch{'' if config.epochs == 1 else 's'} x {steps} "
        f"step{'' if steps == 1 else 's'}, {config.optimizer} lr {config.learning_rate} "
        f"({config.lr_schedule}), precision {policy} ({reason}), XLA {'on' if xla else 'off'}, "
        f"{strategy.num_replicas_in_sync} "
        f"{'replica' if strategy.num_replicas_in_sync == 1 else 'replicas'}; writing to {out}",
        file=sys.stderr, flush=True,
    )
    start = time.time()
    try:
        model.fit(
            train_ds, validation_data=val_ds, epochs=config.epochs,
            steps_per_epoch=config.steps_per_epoch, callbacks=all_callbacks,
            shuffle=False,  # the datasets shuffle themselves
            verbose=0,  # ProgressETA reports (on standard error)
        )
    except tf.errors.DataLossError:
        _raise_naming_corrupt_shard(config.dataset)
        raise
    except (tf.errors.FailedPreconditionError, tf.errors.InvalidArgumentError) as error:
        found = re.search(r"Input dataset was expected to contain \d+ elements but "
                          r"contained [^.]*", str(error))
        if not found:  # not `assert_cardinality`'s: the batches the metadata counts
            raise
        raise TrainingError(
            f"Expected the shards of {config.dataset} to hold the videos its metadata counts "
            f"(num_videos). Received: batches of them: {found.group(0).replace('Input ', '')} "
            "(convert the dataset again: tools/prepare_dataset.py --overwrite)") from None
    seconds = time.time() - start
    history = read_history(csv_path)
    curves = plot_history(history, out / "training_curves.png",
                          title=f"{config.arch} {config.stream}")
    val_acc = history.get("val_accuracy") or history.get("accuracy") or [float("nan")]
    summary = {
        "output_dir": str(out),
        "epochs_run": len(history.get("loss", [])),
        "best_val_accuracy": max(val_acc),
        "final_val_accuracy": val_acc[-1],
        "seconds_this_run": seconds,
        "best_model": str(out / "best.keras"),
        "last_model": str(out / "last.keras"),
        "curves_png": str(curves),
        "history": history,
    }
    (out / "done.json").write_text(json.dumps(summary, indent=1))
    return summary


__all__ = [
    "MOTION_RECIPE", "PAPER_RECIPE", "RUN_FILES", "TrainConfig", "TrainingError",
    "build_datasets", "build_model", "check_run", "freeze_until", "install_multi_worker_fixes",
    "learning_rate_schedule", "make_strategy", "plot_history", "read_history",
    "resolve_precision", "split_cpu", "train", "validate_config",
]
