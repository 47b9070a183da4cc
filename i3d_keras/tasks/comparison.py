"""The paper's architecture comparison, rerun on a dataset: cost and accuracy.

Reference: Carreira & Zisserman, "Quo Vadis, Action Recognition? A New Model
and the Kinetics Dataset", CVPR 2017, Table 1 (parameters, input frames) and
Table 2 (accuracy of the five architectures).

For each architecture of `i3d_keras.models.baselines.ARCHITECTURES`: parameters,
input frames, multiply-adds per clip (`receptive_fields`), accuracy after a
short training run, and the *within-pair* accuracy on classes that differ
only in time: for each validation clip of a class pair (a, b), is the logit of
its class above the logit of the other class of the pair? On the built-in
motion dataset (`i3d_keras.data.motion_dataset`, 5 time-reversed pairs) a model
that ignores frame order (`convnet_pooling`) is at chance, 50%, there, while a
spatio-temporal model can be near 100%: the seed's "can't distinguish opening
from closing a door", measured.
"""

import dataclasses
import math
import os
import time

import numpy as np

from i3d_keras.utils import outputs, plotting

# The order of the paper's Sec. 2, then I3D.
DEFAULT_ARCHITECTURES = (
    "convnet_pooling", "convnet_lstm", "c3d", "two_stream_2d", "3d_fused", "i3d",
    "two_stream_i3d",
)


@dataclasses.dataclass
class ComparisonRow:
    """One architecture's results.

    Attributes:
        name: architecture name (a key of `ARCHITECTURES`).
        inputs: `"rgb"`, `"flow"` or `"rgb+flow"`.
        params: trainable and non-trainable parameters.
        input_frames: frames the model reads per clip, e.g. `"1 rgb, 10 flow"`.
        macs: multiply-adds per clip (inference).
        accuracy: top-1 validation accuracy (None if not trained).
        within_pair_accuracy: accuracy restricted to the two classes of each
            clip's time-reversed pair (None without pairs or training).
        pair_clips: validation clips that belong to a pair.
        train_seconds: training wall time.
        paper_params: the paper's Table 1 parameter count (Kinetics config).
        xla: whether training ran with XLA (None if not trained).
    """

    name: str
    inputs: str
    params: int
    input_frames: str
    macs: int
    accuracy: float = None
    within_pair_accuracy: float = None
    pair_clips: int = 0
    train_seconds: float = 0.0
    paper_params: str = ""
    xla: bool = None


def within_pair_accuracy(logits, labels, class_pairs):
    """Accuracy when each clip only has to choose between the classes of its pair.

    Args:
        logits: `[clips, classes]` scores.
        labels: `[clips]` true classes.
        class_pairs: `(a, b)` class pairs (e.g. a class and its time reversal).
            Clips of classes in no pair are ignored.

    Returns:
        `(accuracy, clips)`: the fraction of pair clips whose own class scores
        above the other class of its pair (ties count as wrong), and the number
        of such clips; `(None, 0)` if there are none.

    Example:

    >>> within_pair_accuracy(np.array([[2., 1.], [2., 1.]]), np.array([0, 1]), [(0, 1)])
    (0.5, 2)
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels).astype(int)
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(
            "Expected logits [clips, classes] and labels [clips] of the same length. "
            f"Received: logits of shape {logits.shape}, labels of shape {labels.shape}"
        )
    other = np.full(logits.shape[1], -1)
    for a, b in class_pairs:
        other[a], other[b] = b, a
    partner = other[labels]
    mask = partner >= 0
    if not mask.any():
        return None, 0
    rows = np.flatnonzero(mask)
    correct = logits[rows, labels[rows]] > logits[rows, partner[rows]]
    return float(correct.mean()), int(mask.sum())


def motion_class_pairs():
    """The built-in motion dataset's time-reversed pairs: (0, 1), ..., (8, 9)."""
    from i3d_keras.data import motion_dataset  # noqa: PLC0415

    return [(2 * p, 2 * p + 1) for p in range(motion_dataset.NUM_CLASSES // 2)]


def input_frames(model, frames):
    """Frames a model reads per clip of `frames` frames, e.g. `"1 rgb, 10 flow"`.

    `Snapshots` layers (two-stream 2D models) read only their snapshots'
    frames; other inputs read the whole clip.

    Example:

    >>> from i3d_keras.models.baselines import build_architecture
    >>> input_frames(build_architecture("two_stream_2d", 10, 16, 32), 16)
    '1 rgb, 10 flow'
    """
    from i3d_keras.models import layers as i3d_layers  # noqa: PLC0415

    used = {}
    for layer in model.layers:
        if isinstance(layer, i3d_layers.Snapshots):
            stream = layer.name.split("_")[0]
            starts = i3d_layers.snapshot_starts(frames, layer.num_snapshots, layer.span)
            offset = (layer.span - layer.length) // 2
            used[stream] = len({s + offset + i for s in starts for i in range(layer.length)})
    parts = []
    for tensor in model.inputs:
        stream = tensor.name.split(":")[0]
        stream = stream if stream in ("rgb", "flow") else ("rgb" if tensor.shape[-1] == 3 else "flow")
        parts.append(f"{used.get(stream, frames)} {stream}")
    order = {"rgb": 0, "flow": 1}
    return ", ".join(sorted(parts, key=lambda p: order.get(p.split()[1], 2)))


def _format_duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _chance_interval(clips):
    """Half-width of the 95% interval of a fair coin's accuracy on `clips` clips."""
    return 1.96 * math.sqrt(0.25 / clips) if clips else float("nan")


def _cost_model_and_row(name, num_classes, frames, image_size, stream, weights, momentum):
    from i3d_keras.models import baselines  # noqa: PLC0415
    from i3d_keras.models.receptive_field import receptive_fields  # noqa: PLC0415

    model = baselines.classifier(baselines.build_architecture(
        name, num_classes, frames, image_size, stream=stream, weights=weights,
        batch_norm_momentum=momentum))
    rows = receptive_fields(model)
    modality = baselines.input_modality(name, stream)
    # I3D alone: one stream of the paper's 25M Two-Stream I3D.
    paper = "12M" if name == "i3d" else baselines.PAPER_TABLE_1.get(name, {}).get("params", "")
    row = ComparisonRow(
        name=name,
        inputs="rgb+flow" if modality == "both" else modality,
        params=int(model.count_params()),
        input_frames=input_frames(model, frames),
        macs=int(sum(r.macs for r in rows)),
        paper_params=paper,
    )
    return model, row


# Architectures that train faster with XLA on a CPU. Measured on the project's
# 2-core CPU, one training step of 8 clips of 8x32x32 (median of 4 after
# warm-up): 3d_fused 1.33 s with XLA vs 4.10 s without; c3d 1.96 vs 0.74 s;
# i3d 0.42 vs 0.23 s.
_XLA_ON_CPU = frozenset({"3d_fused"})


def run_comparison(
    output_dir,
    architectures=DEFAULT_ARCHITECTURES,
    *,
    num_train=1000,
    num_val=200,
    frames=8,
    image_size=32,
    epochs=5,
    batch_size=8,
    learning_rate=1e-3,
    batch_norm_momentum=0.9,
    stream="rgb",
    weights=None,
    seed=0,
    make_datasets=None,
    num_classes=None,
    class_pairs=None,
    train=True,
    run_eagerly=False,
    xla=None,
    log=print,
):
    """Trains and evaluates each architecture briefly; writes a table and a chart.

    Reference: Carreira & Zisserman, CVPR 2017, Tables 1 and 2.

    Each architecture is built with `build_architecture`, trained with Adam
    (learning rate decayed to zero on a cosine) on sparse softmax
    cross-entropy for `epochs` epochs, and evaluated on the
    validation split (top-1 and within-pair accuracy). Two-stream models are
    trained end to end on the sum of their streams' logits (the paper trains
    Two-Stream I3D's streams separately; for the 2D two-stream and 3D-fused
    models it trains end to end). Progress, with an ETA extrapolated from the
    measured time per multiply-add, goes to `log`.

    Args:
        output_dir: where `comparison.md`, `comparison.png` and
            `comparison.json` are written (created if needed).
        architectures: names from `ARCHITECTURES`.
        num_train, num_val: clips of the built-in motion dataset.
        frames, image_size: clip size. The defaults (and `num_train`,
            `epochs`, `batch_size`) are the main job's motion recipe
            (`training.MOTION_RECIPE`), with which I3D RGB from scratch reaches
            over 90% in 5 epochs.
        epochs: training epochs per architecture.
        batch_size: clips per batch.
        learning_rate: Adam's learning rate.
        batch_norm_momentum: every BatchNorm's momentum (0.9: the moving
            statistics settle within a short run; the paper's 0.999 would
            not).
        stream: the stream of one-stream architectures.
        weights: passed to `build_architecture` (None: from scratch).
        seed: data and initialisation seed.
        make_datasets: optional `f(modality) -> (train, val)` tf.data datasets
            of `(inputs, sparse label)` batches, for your own data; default
            the motion dataset.
        num_classes: class count of `make_datasets`' data (default 10).
        class_pairs: `(a, b)` pairs of classes that differ only in time
            (default: the motion dataset's pairs with the default data, none
            with `make_datasets`).
        train: False only measures parameters, frames and multiply-adds.
        run_eagerly: train and predict eagerly (no graph tracing: faster for
            a handful of steps, e.g. tests; much slower for real runs).
        xla: compile training and prediction with XLA; None (default): with
            a GPU, and on CPUs for the architectures in `_XLA_ON_CPU` only
            (the others' 2D formulation of their 3D convolutions trains faster
            without it: docs/design/conv3d-as-2d.md). An architecture whose XLA compilation
            fails is retrained without it.
        log: progress callback taking a string.

    Returns:
        The list of `ComparisonRow`s (also written to the output files).

    Example:

    >>> rows = run_comparison("/tmp/cmp", ["convnet_pooling", "i3d"],
    ...                       num_train=40, num_val=20, epochs=1)  # doctest: +SKIP
    """
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    from i3d_keras.data import motion_dataset  # noqa: PLC0415
    from i3d_keras.models import baselines  # noqa: PLC0415

    unknown = [a for a in architectures if a not in baselines.ARCHITECTURES]
    if unknown or not architectures:
        raise ValueError(
            f"Expected architectures among {sorted(baselines.ARCHITECTURES)}. "
            f"Received: {list(architectures) if architectures else architectures}"
        )
    for key, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{key}` must be a positive int. Received: {key}={value}")
    custom_data = make_datasets is not None
    if not custom_data:
        num_classes = motion_dataset.NUM_CLASSES
        class_pairs = motion_class_pairs() if class_pairs is None else class_pairs

        def make_datasets(modality):
            return motion_dataset.motion_datasets(
                num_train=num_train, num_val=num_val, num_frames=frames, size=image_size,
                batch_size=batch_size, modality=modality, seed=seed)
    num_classes = num_classes or motion_dataset.NUM_CLASSES
    class_pairs = class_pairs or []

    start = time.time()

    def report():
        config = dict(
            dataset="custom" if custom_data else "motion (built-in)",
            num_train=num_train, num_val=num_val, frames=frames, image_size=image_size,
            epochs=epochs if train else 0, batch_size=batch_size, learning_rate=learning_rate,
            batch_norm_momentum=batch_norm_momentum, stream=stream, weights=weights, seed=seed,
            num_classes=num_classes, total_seconds=round(time.time() - start, 1),
        )
        write_report(rows, output_dir, config)

    # Costs first (cheap), so that the ETA can weigh what is left by its MACs;
    # the models are kept for training.
    rows, models = [], {}
    for name in architectures:
        keras.utils.set_random_seed(seed)
        models[name], row = _cost_model_and_row(name, num_classes, frames, image_size, stream,
                                                weights, batch_norm_momentum)
        if not train:
            del models[name]
        rows.append(row)
        log(f"[{len(rows)}/{len(architectures)}] {name}: {row.params:,} params, "
            f"{row.macs / 1e9:.3f} GMACs/clip, frames: {row.input_frames}")
    datasets = {}
    if train:
        done_macs, train_time = 0.0, 0.0
        total_macs = float(sum(r.macs for r in rows))
        for index, row in enumerate(rows):
            keras.utils.set_random_seed(seed)
            modality = baselines.input_modality(row.name, stream)
            if modality not in datasets:
                datasets[modality] = make_datasets(modality)
            train_ds, val_ds = datasets[modality]
            model = models.pop(row.name)
            steps = int(train_ds.cardinality().numpy())
            schedule = learning_rate
            if steps > 0:
                # Cosine decay to zero over the run: settles within few epochs.
                schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps * epochs)
            arch_start = time.time()
            progress = _progress_callback(
                log, row.name, index, len(rows), epochs, start,
                lambda fraction, r=row: _eta(train_time, done_macs, total_macs, r.macs,
                                             fraction, time.time() - arch_start))
            use_xla = xla
            if xla is None:
                use_xla = bool(tf.config.list_physical_devices("GPU")) or row.name in _XLA_ON_CPU
            row.xla = fit_with_xla_fallback(
                model, train_ds, epochs=epochs, xla=use_xla and not run_eagerly,
                optimizer=lambda: keras.optimizers.Adam(schedule),
                run_eagerly=run_eagerly, callbacks=[progress],
                log=lambda text, i=index, r=row: log(f"[{i + 1}/{len(rows)}] {r.name}: {text}"))
            logits = model.predict(val_ds, verbose=0)
            labels = np.concatenate([np.asarray(y) for _, y in val_ds])
            row.train_seconds = time.time() - arch_start
            row.accuracy = float(np.mean(np.argmax(logits, -1) == labels))
            row.within_pair_accuracy, row.pair_clips = within_pair_accuracy(
                logits, labels, class_pairs)
            train_time += row.train_seconds
            done_macs += row.macs
            pair_text = ("" if row.within_pair_accuracy is None
                         else f", within-pair {row.within_pair_accuracy:.1%}")
            log(f"[{index + 1}/{len(rows)}] {row.name}: accuracy {row.accuracy:.1%}{pair_text} "
                f"({_format_duration(row.train_seconds)}; elapsed "
                f"{_format_duration(time.time() - start)}, ETA "
                f"{_format_duration(_eta(train_time, done_macs, total_macs, 0, 0, 0))})")
            del model
            report()  # results so far, in case a long run is stopped
    report()
    return rows


def fit_with_xla_fallback(model, train_ds, *, epochs, xla, optimizer, run_eagerly=False,
                          callbacks=(), log=print):
    """Compiles and fits a classifier, with XLA if asked, retrying without it.

    XLA cannot compile every graph (e.g. ops without an XLA kernel such as
    `tf.numpy_function`, or some dynamic shapes); the error surfaces at the
    first training step. Then the weights are restored to their initial
    values, the model is recompiled without XLA (a fresh optimizer) and
    trained from the start, so one architecture never stops a comparison.

    Args:
        model: a Keras model returning logits.
        train_ds: dataset of `(inputs, sparse label)` batches.
        epochs: training epochs.
        xla: try `jit_compile=True` first.
        optimizer: a function returning a new optimizer (called per attempt).
        run_eagerly: passed to `compile`.
        callbacks: Keras callbacks for `fit`.
        log: receives a line when XLA fails.

    Returns:
        True if the model was trained with XLA, False otherwise.

    Example:

    >>> fit_with_xla_fallback(model, ds, epochs=1, xla=True,
    ...                       optimizer=lambda: keras.optimizers.Adam(1e-3))  # doctest: +SKIP
    True
    """
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    initial_weights = model.get_weights()
    for jit in (True, False) if xla else (False,):
        model.compile(
            optimizer=optimizer(),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            run_eagerly=run_eagerly,
            jit_compile=jit,
        )
        try:
            model.fit(train_ds, epochs=epochs, verbose=0, callbacks=list(callbacks),
                      shuffle=False)
            return jit
        except (tf.errors.OpError, NotImplementedError, ValueError) as error:
            if not jit:
                raise
            first_line = (str(error).strip().splitlines() or [""])[0][:200]
            log(f"XLA failed ({type(error).__name__}: {first_line}); training without XLA")
            model.set_weights(initial_weights)
    return False


def _eta(train_time, done_macs, total_macs, current_macs, fraction, current_elapsed):
    """Seconds left: the work left, at the seconds per MAC measured so far.

    Training time is taken as proportional to multiply-adds; the
    architecture in progress extrapolates from its own pace once it has some.
    """
    left_after_current = total_macs - done_macs - current_macs
    if fraction > 0 and current_elapsed > 0:
        current_rate = current_elapsed / fraction
        rate = (train_time + current_rate) / max(done_macs + current_macs, 1.0)
        return current_rate * (1 - fraction) + left_after_current * rate
    if done_macs <= 0:
        return float("nan")
    return (total_macs - done_macs) * train_time / done_macs


def _progress_callback(log, name, index, count, epochs, start, eta):
    """A Keras callback logging each epoch with the overall ETA."""
    import keras  # noqa: PLC0415

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            left = eta((epoch + 1) / epochs)
            eta_text = "?" if math.isnan(left) else _format_duration(left)
            log(f"[{index + 1}/{count}] {name} epoch {epoch + 1}/{epochs}: "
                f"loss {logs.get('loss', float('nan')):.3f}, "
                f"train accuracy {logs.get('accuracy', float('nan')):.1%} "
                f"(elapsed {_format_duration(time.time() - start)}, ETA {eta_text})")

    return Progress()


def _train_time_text(row):
    if row.accuracy is None:
        return "–"
    return _format_duration(row.train_seconds) + (" (XLA)" if row.xla else "")


def _percent(value):
    return "–" if value is None else f"{value:.1%}"


def format_markdown(rows, config):
    """The comparison as a Markdown document (config, table, reading guide).

    Args:
        rows: `ComparisonRow`s.
        config: dict of run settings (printed; `num_classes` sets the chance
            level).

    Returns:
        The Markdown text.

    Example:

    >>> print(format_markdown([ComparisonRow("i3d", "rgb", 12_000_000, "16 rgb", 10**9)],
    ...                       {"num_classes": 10}))
    # Architecture comparison (Carreira & Zisserman, CVPR 2017, Tables 1-2)
    <BLANKLINE>
    Settings: num_classes=10
    ...
    | i3d | rgb | 12,000,000 | 16 rgb | 1.000 | – | – | – | – |
    <BLANKLINE>
    Chance: accuracy 10%, within-pair accuracy 50%.
    ...
    """
    num_classes = config.get("num_classes") or 0
    lines = [
        "# Architecture comparison (Carreira & Zisserman, CVPR 2017, Tables 1-2)",
        "",
        "Settings: " + ", ".join(f"{k}={v}" for k, v in config.items()),
        "",
        "| architecture | inputs | params | input frames | GMACs / clip | accuracy "
        "| within-pair accuracy | train time | paper params (Table 1) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.name} | {r.inputs} | {r.params:,} | {r.input_frames} | {r.macs / 1e9:.3f} "
            f"| {_percent(r.accuracy)} | {_percent(r.within_pair_accuracy)} "
            f"| {_train_time_text(r)} "
            f"| {r.paper_params or '–'} |"
        )
    lines.append("")
    if num_classes:
        lines.append(f"Chance: accuracy {1 / num_classes:.0%}, within-pair accuracy 50%.")
    pair_clips = max((r.pair_clips for r in rows), default=0)
    if pair_clips:
        half = _chance_interval(pair_clips)
        lines.append(
            f"Within-pair accuracy: for each of the {pair_clips} validation clips of a "
            "time-reversed class pair, is its class scored above the other class of its "
            f"pair? A model blind to frame order is at 50% (95% interval for a coin on "
            f"{pair_clips} clips: {0.5 - half:.1%}-{0.5 + half:.1%})."
        )
        measured = [r for r in rows if r.within_pair_accuracy is not None]
        above = [r.name for r in measured if r.within_pair_accuracy > 0.5 + half]
        at = [r.name for r in measured if 0.5 - half <= r.within_pair_accuracy <= 0.5 + half]
        below = [r.name for r in measured if r.within_pair_accuracy < 0.5 - half]
        for label, names in (("Above chance within pairs", above),
                             ("At chance within pairs", at), ("Below chance", below)):
            if names:
                lines.append(f"{label}: {', '.join(names)}.")
    lines.append(
        "Parameters and multiply-adds are for this run's configuration (classes, clip "
        "size); the paper's counts are for Kinetics (400 classes, 224x224). "
        "Multiply-adds per clip are counted by `i3d_keras.receptive_fields`."
    )
    return "\n".join(lines) + "\n"


def plot_comparison(rows, path, num_classes=None):
    """A PNG bar chart of accuracy and within-pair accuracy per architecture."""
    plt = plotting.pyplot()

    names = [r.name for r in rows]
    x = np.arange(len(rows))
    accuracy = [r.accuracy if r.accuracy is not None else 0.0 for r in rows]
    within = [r.within_pair_accuracy if r.within_pair_accuracy is not None else 0.0
              for r in rows]
    fig, (ax, cost) = plt.subplots(
        1, 2, figsize=(max(10.0, 2.0 * len(rows) + 3), 4.8),
        gridspec_kw={"width_ratios": [3, 2]})
    ax.bar(x - 0.2, accuracy, 0.4, label="accuracy")
    ax.bar(x + 0.2, within, 0.4, label="within-pair accuracy")
    ax.axhline(0.5, color="grey", linestyle="--", linewidth=1, label="within-pair chance (50%)")
    if num_classes:
        ax.axhline(1 / num_classes, color="grey", linestyle=":", linewidth=1,
                   label=f"chance ({1 / num_classes:.0%})")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=25, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("validation accuracy")
    ax.set_title("Accuracy (Quo Vadis, Table 2 analogue)")
    ax.legend(fontsize=8, loc="upper left")
    bars = cost.bar(x, [r.macs / 1e9 for r in rows], 0.6, color="tab:green")
    for bar, r in zip(bars, rows):
        cost.annotate(f"{r.params / 1e6:.1f}M", (bar.get_x() + bar.get_width() / 2,
                                                   bar.get_height()),
                      ha="center", va="bottom", fontsize=8)
    cost.set_xticks(x)
    cost.set_xticklabels(names, rotation=25, ha="right")
    cost.set_ylabel("GMACs per clip (labels: parameters)")
    cost.set_title("Cost (Quo Vadis, Table 1 analogue)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(rows, output_dir, config):
    """Writes `comparison.md`, `comparison.png` and `comparison.json`.

    Args:
        rows: `ComparisonRow`s.
        output_dir: directory (created if needed).
        config: run settings (see `format_markdown`).

    Returns:
        Dict `{"markdown", "png", "json"}` of written paths.

    Example:

    >>> write_report(rows, "/tmp/cmp", {"num_classes": 10})  # doctest: +SKIP
    """
    paths = report_paths(output_dir)
    with outputs.atomic_open(paths["markdown"]) as f:
        f.write(format_markdown(rows, config))
    with outputs.atomic_path(paths["png"]) as tmp:
        plot_comparison(rows, tmp, config.get("num_classes"))
    outputs.write_json(paths["json"], {"config": config,
                                       "rows": [dataclasses.asdict(r) for r in rows]})
    return paths


def report_paths(output_dir):
    """`{"markdown", "png", "json"}`: the files `write_report` writes in `output_dir`."""
    return {kind: os.path.join(output_dir, f"comparison.{suffix}")
            for kind, suffix in (("markdown", "md"), ("png", "png"), ("json", "json"))}
