"""Tests for i3d_keras.tasks.training: tiny real runs, resuming, strategies, precision."""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from i3d_keras.tasks import training

TINY = dict(frames=8, image_size=32, batch_size=4, num_train=8, num_val=4, epochs=2, xla=False,
            learning_rate=1e-3, verbose=0)


class _Interrupt(keras.callbacks.Callback):
    """Stops the process-like run after `epoch` finishes, as a kill would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated kill")


def test_killed_run_resumes_and_writes_models_logs_and_curves(tmp_path):
    # Resuming and the run artefacts do not depend on the architecture: C3D
    # (8 convolutions) traces and steps several times faster than I3D on CPU.
    config = training.TrainConfig(stream="rgb", arch="c3d", output_dir=str(tmp_path), **TINY)
    with pytest.raises(KeyboardInterrupt):
        training.train(config, callbacks=[_Interrupt(epoch=0)])
    assert len(training.read_history(tmp_path / "history.csv")["loss"]) == 1
    assert not (tmp_path / "done.json").exists()
    summary = training.train(config)
    history = training.read_history(tmp_path / "history.csv")
    assert history["epoch"] == [0.0, 1.0]  # only epoch 2 was run again
    assert summary["epochs_run"] == 2
    for name in ("best.keras", "last.keras", "history.csv", "training_curves.png", "done.json",
                 "classes.txt", "config.json"):
        assert (tmp_path / name).exists(), name
    assert 0.0 <= summary["best_val_accuracy"] <= 1.0
    assert summary["best_val_accuracy"] == max(history["val_accuracy"])
    assert os.listdir(tmp_path / "tensorboard")
    model = keras.models.load_model(tmp_path / "best.keras")
    assert model.output.shape == (None, 10) and "c3d" in model.name
    # A finished run is not silently retrained.
    again = training.train(config)
    assert again["already_done"]


def test_bad_arguments_are_reported(tmp_path):
    with pytest.raises(training.TrainingError, match="no such folder"):
        training.train(training.TrainConfig(dataset=str(tmp_path / "missing")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(training.TrainingError, match="no \\*.tfrecord files"):
        training.train(training.TrainConfig(dataset=str(tmp_path / "empty")))
    with pytest.raises(training.TrainingError, match="strategy"):
        training.train(training.TrainConfig(strategy="horovod", output_dir=str(tmp_path / "x")))
    with pytest.raises(training.TrainingError, match="freeze_until"):
        training.train(training.TrainConfig(freeze_until="Mixed_9z", output_dir=str(tmp_path / "y"),
                                            **TINY))


def test_freeze_and_schedules():
    import i3d_keras

    model = i3d_keras.InceptionI3D(3, frames=8, image_size=32)
    training.freeze_until(model, "Mixed_4f")
    assert not model.get_layer("Mixed_4f_Branch_0_Conv3d_0a_1x1_conv_3d").trainable
    assert model.get_layer("Mixed_5b_Branch_0_Conv3d_0a_1x1_conv_3d").trainable
    step = training.learning_rate_schedule("step", 0.1, 100)
    np.testing.assert_allclose([float(step(s)) for s in (0, 60, 90)], [0.1, 0.01, 0.001], rtol=1e-6)


def test_prepared_shards_train(tmp_path):
    from i3d_keras.data import motion_dataset

    motion_dataset.write_motion_dataset(tmp_path / "data", num_train=8, num_val=4, num_frames=6,
                                        size=32, seed=1)
    summary = training.train(training.TrainConfig(
        stream="rgb", arch="c3d", dataset=str(tmp_path / "data"), output_dir=str(tmp_path / "run"),
        epochs=1, batch_size=4, frames=8, image_size=32, xla=False, verbose=0))
    assert summary["epochs_run"] == 1
    assert (tmp_path / "run" / "classes.txt").read_text().split() == list(motion_dataset.CLASSES)


def test_corrupt_shard_is_named(tmp_path):
    from i3d_keras.data import motion_dataset

    motion_dataset.write_motion_dataset(tmp_path / "data", num_train=8, num_val=4, num_frames=6,
                                        size=32, seed=1)
    (shard,) = (tmp_path / "data").glob("motion_train-*.tfrecord")
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2:len(raw) // 2 + 64] = bytes(64)  # breaks a record's CRC
    shard.write_bytes(bytes(raw))
    with pytest.raises(training.TrainingError, match=shard.name):
        training.train(training.TrainConfig(
            stream="rgb", arch="c3d", dataset=str(tmp_path / "data"),
            output_dir=str(tmp_path / "run"), epochs=1, batch_size=4, frames=8, image_size=32,
            xla=False, verbose=0))


# Trains 2 SGD steps in a fresh process (logical devices must be set before TF starts)
# and prints the trained weights' checksum.
_STEP_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import i3d_keras, keras, tensorflow as tf
    from i3d_keras.tasks import training
    strategy = training.make_strategy(sys.argv[1], num_cpu_devices=2)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (8, 4, 32, 32, 2)).astype("float32")
    y = rng.integers(0, 3, 8).astype("int32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = ds.with_options(options)
    with strategy.scope():
        # I3D up to Mixed_3c (its stem, pools and two Inception blocks, with
        # synchronised BatchNorm) and a classifier: the whole network only
        # adds tracing time here.
        features = i3d_keras.InceptionI3D(
            3, "flow", frames=4, image_size=32, final_endpoint="Mixed_3c",
            synchronized_batch_norm=strategy.num_replicas_in_sync > 1)
        pooled = keras.layers.GlobalAveragePooling3D(name="pool")(features.output)
        logits = keras.layers.Dense(3, name="classifier")(pooled)
        model = keras.Model(features.input, logits)
        keras.utils.set_random_seed(1)
        model.set_weights([np.random.default_rng(i).normal(0, 0.05, w.shape).astype("float32")
                           if w.ndim > 1 else w for i, w in enumerate(model.get_weights())])
        model.compile(keras.optimizers.SGD(0.01),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    first_before = model.get_layer("Conv3d_1a_7x7_conv_3d").kernel.numpy()
    history = model.fit(ds, epochs=1, verbose=0)
    kernel = model.get_layer("classifier").kernel.numpy()
    first = model.get_layer("Conv3d_1a_7x7_conv_3d").kernel.numpy() - first_before
    if os.environ.get("TF_CONFIG") is None or json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 0:
        print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                          "loss": history.history["loss"][-1],
                          "logits_kernel": kernel.ravel()[:50].tolist(),
                          "first_kernel_update": first.ravel().tolist()}))
""")


def _run(args, env=None):
    return subprocess.Popen([sys.executable, "-c", _STEP_SCRIPT, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})


def _result(process, timeout=600):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def strategy_runs():
    """The same 2 SGD steps on one device, on 2 mirrored CPU devices and on 2
    local workers, all started at once (tracing is mostly single-threaded, so
    this halves the wait on 2 cores)."""
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    processes = {
        "default": _run(["default"]),
        "mirrored": _run(["mirrored"]),
        **{f"worker_{i}": _run(["multi_worker"], env={"TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": i}})}) for i in range(2)},
    }
    try:
        return {name: _result(process) if name != "worker_1" else process.communicate(timeout=600)
                for name, process in processes.items()}
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()


def _assert_same_training(result, reference, replicas):
    assert result["replicas"] == replicas
    # Training-mode gradients of this tiny randomly initialised network are
    # chaotic: on one device, scaling the input by (1 + 1e-6) changes the
    # logits' weight gradients by up to 5% and the first kernel's by 0.3%
    # (measured), through max-pool argmax flips and BatchNorm over few
    # positions. The reduction order of 2 replicas (and of the synchronised
    # BatchNorm statistics) is such a perturbation, so the mean loss of the 2
    # steps differs by about 1% and single first-kernel elements by up to 15%
    # of their update. What must hold: the same loss within 2%, the same
    # classifier, and the same first-layer update (direction and size).
    np.testing.assert_allclose(result["loss"], reference["loss"], rtol=2e-2)
    np.testing.assert_allclose(result["logits_kernel"], reference["logits_kernel"], atol=2e-2)
    update = np.asarray(result["first_kernel_update"])
    expected = np.asarray(reference["first_kernel_update"])
    cosine = update @ expected / np.linalg.norm(update) / np.linalg.norm(expected)
    assert cosine > 0.98, cosine
    assert abs(np.linalg.norm(update) / np.linalg.norm(expected) - 1) < 0.03


def test_mirrored_on_two_cpu_devices_matches_single_device(strategy_runs):
    _assert_same_training(strategy_runs["mirrored"], strategy_runs["default"], replicas=2)


def test_multi_worker_on_localhost_matches_single_device(strategy_runs):
    # Keras 3.15's fit needs `training.install_multi_worker_fixes` here (called by
    # make_strategy("multi_worker")); without it this run fails.
    _assert_same_training(strategy_runs["worker_0"], strategy_runs["default"], replicas=2)


def test_mixed_precision_policies():
    assert training.resolve_precision("bfloat16") == "mixed_bfloat16"
    assert training.resolve_precision("float16") == "mixed_float16"
    assert training.resolve_precision("float32") == "float32"
    # What auto picks where: tests/runtime/test_precision.py (described machines).
    assert training.resolve_precision("auto") in ("float32", "mixed_float16", "mixed_bfloat16")


def test_bfloat16_step_runs(tmp_path, rng):
    import i3d_keras

    from i3d_keras.runtime import precision

    # The run machinery under a mixed policy (C3D: fast on CPU) ...
    summary = training.train(training.TrainConfig(
        stream="flow", arch="c3d", output_dir=str(tmp_path), mixed_precision="bfloat16",
        **{**TINY, "epochs": 1, "num_train": 4, "num_val": 4}))
    trained = keras.models.load_model(tmp_path / "last.keras")
    assert "bfloat16" in {layer.compute_dtype for layer in trained.layers}
    assert keras.config.dtype_policy().name == "float32"  # the caller's, restored
    # ... and I3D's own layers (builtin-op pooling, adaptive head) in bfloat16.
    with precision.policy_scope("mixed_bfloat16"):
        model = i3d_keras.InceptionI3D(3, "flow", frames=4, image_size=32)
        logits = model(rng.uniform(-1, 1, (1, 4, 32, 32, 2)).astype("float32"), training=True)
    assert np.isfinite(summary["history"]["loss"][0])
    assert model.get_layer("Conv3d_1a_7x7_conv_3d").compute_dtype == "bfloat16"
    assert logits.dtype == "float32" and np.all(np.isfinite(logits))


def test_progress_lines_and_integer_epoch_ticks(tmp_path, monkeypatch):
    """Issue 21: the epoch line is a line of its own on stderr, no escape codes
    into a file or pipe; a one-epoch plot has the tick 1, not 0.96 ... 1.04."""
    import io

    from i3d_keras.utils import plotting

    stream = io.StringIO()  # not a terminal
    progress = training.ProgressETA(1, stream=stream, steps=2)
    progress.on_epoch_begin(0)
    progress.on_train_batch_end(0, {"loss": 1.0})
    progress.on_epoch_end(0, {"accuracy": 0.125, "loss": 2.0})
    assert stream.getvalue().startswith("[epoch 1/1] accuracy=0.1250 loss=2.0000 | elapsed")
    assert stream.getvalue().count("\n") == 1 and "\x1b" not in stream.getvalue()

    plt = plotting.pyplot()
    close, figures = plt.close, []
    monkeypatch.setattr(plt, "close", figures.append)
    training.plot_history({"epoch": [0.0], "loss": [1.2], "accuracy": [0.3]},
                          tmp_path / "curves.png")
    for ax in figures[0].axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks == [1.0]
    close(figures[0])


def test_arch_and_stream_are_checked_before_any_work(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(training.TrainingError, match="`arch` must be one of .*'c3d'"):
        training.train(training.TrainConfig(arch="bogus", output_dir=str(out), **TINY))
    # "both" needs a model that takes RGB and flow: not a one-stream architecture.
    with pytest.raises(training.TrainingError, match="arch='c3d', stream='both'"):
        training.check_run(training.TrainConfig(arch="c3d", stream="both", output_dir=str(out)))
    assert not out.exists()
    assert training.check_run(training.TrainConfig(arch="two_stream_2d", stream="both",
                                                   output_dir=str(out))).stream == "both"


def test_stream_both_trains_the_two_stream_i3d_on_its_fused_logits(tmp_path):
    config = training.TrainConfig(stream="both", output_dir=str(tmp_path), **dict(
        TINY, num_train=4, num_val=4, epochs=1))
    summary = training.train(config)
    assert summary["epochs_run"] == 1
    model = keras.models.load_model(tmp_path / "best.keras")
    assert sorted(model.input) == ["flow", "rgb"] and model.output.shape == (None, 10)


def test_freeze_until_freezes_each_stream_of_a_two_stream_model():
    model = training.build_model(training.TrainConfig(
        stream="both", frames=8, image_size=32, dropout_rate=0.0, batch_norm_momentum=0.9,
        freeze_until="Mixed_4f"), 3)
    streams = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    frozen = [layer for s in streams for layer in s.layers
              if layer.name == "Mixed_4f_Branch_0_Conv3d_0a_1x1_conv_3d"]
    assert len(frozen) == 2 and not any(layer.trainable for layer in frozen)


def _tiny_shards(path, num_train, num_val=4):
    from i3d_keras.data import motion_dataset

    motion_dataset.write_motion_dataset(path, num_train=num_train, num_val=num_val,
                                        num_frames=8, size=32, seed=1)
    return str(path)


def test_fewer_training_clips_than_a_batch_are_refused_before_work(tmp_path):
    config = training.TrainConfig(stream="rgb", arch="c3d", dataset=_tiny_shards(
        tmp_path / "data", num_train=2), output_dir=str(tmp_path / "run"), batch_size=8,
        frames=8, image_size=32, xla=False, verbose=0)
    for call in (training.check_run, training.train):
        with pytest.raises(training.TrainingError,
                           match=r"at least --batch_size=8 training clips.*Received: 2 clips"):
            call(config)
    assert not (tmp_path / "run").exists()
    # With --steps_per_epoch the split repeats before batching: 2 clips do.
    training.check_run(dataclasses.replace(config, steps_per_epoch=1))


def test_a_failed_download_leaves_no_run_folder(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")  # noqa: TRY002

    monkeypatch.setattr(keras.utils, "get_file", offline)
    out = tmp_path / "run"
    config = training.TrainConfig(stream="rgb", init="kinetics", freeze_until="Mixed_4f",
                                  output_dir=str(out), **TINY)
    with pytest.raises(OSError, match="could not download DeepMind's rgb_imagenet.*--init"):
        training.train(config)
    assert not out.exists()


def test_a_checkpoint_init_without_its_data_is_refused_before_work(tmp_path):
    from _checkpoints import write_checkpoint

    prefix = tmp_path / "ckpt" / "model.ckpt"
    write_checkpoint(prefix, {"RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/w":
                              np.zeros([7, 7, 7, 3, 64], "float32")})
    (data,) = prefix.parent.glob("model.ckpt.data-*")
    data.unlink()
    out = tmp_path / "run"
    with pytest.raises(training.TrainingError, match=f"--init: .*{data.name}"):
        training.check_run(training.TrainConfig(init=str(prefix), output_dir=str(out)))
    assert not out.exists()


def test_epochs_never_run_out_of_data(tmp_path):
    # Keras warns "Your input ran out of data" when a dataset of unknown size
    # ends (the shards' validation split) or a non-repeated one is shorter
    # than --steps_per_epoch (the motion dataset).
    import warnings

    data = _tiny_shards(tmp_path / "data", num_train=4)
    runs = [training.TrainConfig(stream="rgb", arch="c3d", dataset=data, epochs=2, batch_size=2,
                                 output_dir=str(tmp_path / "shards"), frames=8, image_size=32,
                                 xla=False, verbose=0),
            training.TrainConfig(stream="rgb", arch="c3d", output_dir=str(tmp_path / "motion"),
                                 steps_per_epoch=3, **TINY)]
    for config in runs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = training.train(config)
        assert not [w for w in caught if "ran out of data" in str(w.message)], config
        assert summary["epochs_run"] == config.epochs


def test_the_callers_dtype_policy_is_restored_after_a_run_or_an_error(tmp_path, monkeypatch):
    keras.config.set_dtype_policy("float32")
    config = training.TrainConfig(stream="rgb", arch="c3d", mixed_precision="bfloat16",
                                  output_dir=str(tmp_path / "run"), **dict(TINY, epochs=1))
    assert training.train(config)["epochs_run"] == 1
    assert keras.config.dtype_policy().name == "float32"
    # A failed download of the --init weights: the run stops, the policy is still the caller's.
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: (_ for _ in ()).throw(
        Exception("URL fetch failure")))
    with pytest.raises(OSError):
        training.train(training.TrainConfig(stream="rgb", init="kinetics",
                                            mixed_precision="bfloat16",
                                            output_dir=str(tmp_path / "other"), **TINY))
    assert keras.config.dtype_policy().name == "float32"


def test_shards_that_hold_fewer_videos_than_their_metadata_are_a_clear_error(tmp_path):
    data = Path(_tiny_shards(tmp_path / "data", num_train=4))
    (meta,) = data.glob("*.metadata.json")
    info = json.loads(meta.read_text())
    info["splits"]["validation" if "validation" in info["splits"] else "val"]["num_videos"] = 40
    meta.write_text(json.dumps(info))
    config = training.TrainConfig(stream="rgb", arch="c3d", dataset=str(data), epochs=1,
                                  batch_size=2, output_dir=str(tmp_path / "run"), frames=8,
                                  image_size=32, xla=False, verbose=0)
    with pytest.raises(training.TrainingError, match=r"metadata counts.*expected to contain "
                                                     r"20 elements but contained only 2.*"
                                                     r"prepare_dataset\.py --overwrite"):
        training.train(config)


def test_a_two_stream_comparison_model_trains_on_stream_both(tmp_path):
    config = training.TrainConfig(arch="two_stream_2d", stream="both",
                                  output_dir=str(tmp_path / "run"),
                                  **dict(TINY, num_train=4, num_val=4, epochs=1))
    assert training.train(config)["epochs_run"] == 1
    model = keras.models.load_model(tmp_path / "run" / "best.keras")
    assert sorted(model.input) == ["flow", "rgb"]
