"""Tests for i3d_keras.runtime.precision: what `auto` picks where, and I3D's numerics in bfloat16.

The decisions are tested with CPUs and GPUs described in the tests (never this
machine's). The numerics run on any CPU: without AVX512-BF16 or AMX,
TensorFlow emulates bfloat16 (slow, correct), so the models are tiny.

Tolerance: bfloat16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%);
through I3D's 57 layers the rounding of activations adds up, most where a
BatchNorm divides by a small moving deviation. The tests allow, relative to
the largest |float32 logit|: a mean |difference| of `MEAN_TOLERANCE` (3%)
and a largest one of `MAX_TOLERANCE` (20%), and the same top-1 class on at
least `TOP1_AGREEMENT` (80%) of the clips. Measured on this project's AMD
EPYC with the tiny motion model trained for 20 steps (top two logits often
close): mean 1.3%, max 10%, top-1 agreement 89% of 64 clips; the issue's
author measured a largest difference of 0.11 on logits up to 17.6 (0.6%) and
the same top-1 class with DeepMind's Kinetics weights on a Xeon.
"""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import i3d_keras
from i3d_keras.runtime import hardware, precision, tuning
from i3d_keras.tasks import inference, training
from i3d_keras.weights import deepmind
from _checkpoints import write_checkpoint

ROOT = Path(__file__).resolve().parents[2]
MEAN_TOLERANCE, MAX_TOLERANCE, TOP1_AGREEMENT = 0.03, 0.20, 0.8  # see the docstring

AMD_EPYC = hardware.parse_cpuinfo(  # AVX2 only: the project's first machine
    "vendor_id : AuthenticAMD\ncpu family : 25\nmodel name : AMD EPYC 7B13\n"
    "flags : fpu sse2 avx avx2 fma bmi2\n")
XEON_AMX = hardware.parse_cpuinfo(
    "vendor_id : GenuineIntel\ncpu family : 6\nmodel name : Intel(R) Xeon(R) Platinum 8481C\n"
    "flags : avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8\n")
XEON_BF16 = hardware.parse_cpuinfo(  # the Xeon: AVX512-BF16 and FP16, AMX hidden
    "vendor_id : GenuineIntel\ncpu family : 6\nmodel name : Intel(R) Xeon(R) Processor\n"
    "flags : avx2 fma avx512f avx512_vnni avx512_bf16 avx512_fp16\n")
ZEN4 = hardware.parse_cpuinfo(  # AVX512-BF16, no AMX
    "vendor_id : AuthenticAMD\ncpu family : 25\nmodel name : AMD EPYC 9R14\n"
    "flags : avx2 avx512f avx512_bf16\n")
ZEN5 = hardware.parse_cpuinfo(
    "vendor_id : AuthenticAMD\ncpu family : 26\nmodel name : AMD EPYC\n"
    "flags : avx2 avx512f avx512_bf16 avx_vnni avx512_vp2intersect\n")
GRAVITON3 = hardware.parse_cpuinfo(  # Arm with BF16
    "processor : 0\nFeatures : fp asimd sve bf16 i8mm\nCPU implementer : 0x41\n")
SKYLAKE = hardware.parse_cpuinfo(  # AVX-512 without bfloat16
    "vendor_id : GenuineIntel\ncpu family : 6\nmodel name : Intel(R) Xeon(R) Gold 6148\n"
    "flags : avx2 fma avx512f avx512_vnni\n")


def timings(float32=(1.0, 3.0), bfloat16=(0.5, 1.5)):
    """Fake `tuning.measure_precisions` results: (forward, train_step) seconds."""
    return {"float32": dict(zip(("forward", "train_step"), float32)),
            "bfloat16": dict(zip(("forward", "train_step"), bfloat16))}


def measured(result):
    """A fake measurement that returns `result` and counts its calls."""
    def measure():
        measure.calls += 1
        if isinstance(result, Exception):
            raise result
        return result

    measure.calls = 0
    return measure


@pytest.fixture(autouse=True)
def _restore_policy(monkeypatch):
    """Other tests assume Keras' float32 default: restore it after each test.
    Also: no I3D_KERAS_TUNE from the environment in these tests."""
    monkeypatch.delenv(tuning.TUNE_ENV, raising=False)
    previous = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("cpu, gpus, expected", [
    (AMD_EPYC, [], "float32"),
    (SKYLAKE, [], "float32"),
    (XEON_AMX, [], "mixed_bfloat16"),
    (XEON_BF16, [], "float32"),
    # Measured where no rule knows (a described CPU is not measured: float32).
    (ZEN4, [], "float32"),
    (ZEN5, [], "float32"),
    (GRAVITON3, [], "float32"),
    # A GPU decides, whatever the CPU.
    (XEON_AMX, [("A100", (8, 0))], "mixed_bfloat16"),
    (AMD_EPYC, [("H100", (9, 0))], "mixed_bfloat16"),
    (XEON_AMX, [("T4", (7, 5))], "mixed_float16"),
    (AMD_EPYC, [("V100", (7, 0))], "mixed_float16"),
    (XEON_AMX, [("P100", (6, 0))], "float32"),
    (AMD_EPYC, [("?", None)], "float32"),
    # Every GPU must support the precision: the lowest capability decides.
    (AMD_EPYC, [("A100", (8, 0)), ("T4", (7, 5))], "mixed_float16"),
])
def test_auto_picks_by_hardware(cpu, gpus, expected):
    policy, reason = precision.choose_precision("auto", cpu=cpu, gpus=gpus)
    assert policy == expected
    assert reason.startswith("auto: ")


@pytest.mark.parametrize("cpu, policy, reason", [
    (AMD_EPYC, "float32", "CPU without bfloat16 instructions"),
    (SKYLAKE, "float32", "CPU without bfloat16 instructions"),
    (XEON_AMX, "mixed_bfloat16", "CPU with AMX-BF16"),
    (XEON_BF16, "float32", "Intel CPU with AVX512-BF16 but no AMX"),
    (ZEN4, precision.MEASURE, "CPU with bfloat16 instructions but no AMX"),
    (ZEN5, precision.MEASURE, "CPU with bfloat16 instructions but no AMX"),
    (GRAVITON3, precision.MEASURE, "CPU with bfloat16 instructions but no AMX"),
])
def test_the_cpu_rule_of_each_kind(cpu, policy, reason):
    rule = precision.cpu_rule(cpu)
    assert (rule.policy, rule.reason.split(" (")[0]) == (policy, reason)
    assert rule.machine


def test_measured_where_no_rule_knows(tmp_path):
    faster = measured(timings((1.0, 3.0), (0.5, 2.0)))
    policy, reason = precision.choose_precision("auto", cpu=ZEN4, gpus=[], measure=faster,
                                                cache_dir=tmp_path)
    assert (policy, faster.calls) == ("mixed_bfloat16", 1)
    assert reason == ("auto: bfloat16 measured 1.50x the speed of float32 on this CPU: "
                      "forward 2.00x, training step 1.50x")
    assert (tmp_path / tuning.CACHE_FILE).exists()
    # Later runs read the answer: nothing measured again.
    again = measured(RuntimeError("must not be called"))
    policy, reason = precision.choose_precision("auto", cpu=ZEN4, gpus=[], measure=again,
                                                cache_dir=tmp_path)
    assert (policy, again.calls) == ("mixed_bfloat16", 0)
    assert reason.endswith("training step 1.50x; cached")
    # Another machine (here Zen 5) has no measurement yet.
    slower = measured(timings((1.0, 3.0), (1.4, 3.3)))
    policy, reason = precision.choose_precision("auto", cpu=ZEN5, gpus=[], measure=slower,
                                                cache_dir=tmp_path)
    assert (policy, slower.calls) == ("float32", 1)
    assert reason == ("auto: bfloat16 measured 0.71x the speed of float32 on this CPU: "
                      "forward 0.71x, training step 0.91x")
    # Both machines stay in the cache.
    assert precision.choose_precision("auto", cpu=ZEN4, gpus=[], cache_dir=tmp_path)[0] == \
        "mixed_bfloat16"


@pytest.mark.parametrize("result, reason", [
    # A tie, or faster by less than tuning.SPEEDUP_NEEDED: float32.
    (timings((1.0, 3.0), (1.0, 3.0)), "1.00x the speed of float32 on this CPU: forward 1.00x, "
     "training step 1.00x; below the 1.15x that pays"),
    (timings((1.0, 3.0), (0.9, 2.7)), "1.11x the speed of float32 on this CPU: forward 1.11x, "
     "training step 1.11x; below the 1.15x that pays"),
    # Much faster in the forward pass, slower in training: float32.
    (timings((1.0, 3.0), (0.4, 3.2)), "0.94x the speed of float32"),
])
def test_bfloat16_must_be_clearly_faster_in_both(tmp_path, result, reason):
    policy, text = precision.choose_precision("auto", cpu=ZEN4, gpus=[],
                                              measure=measured(result), cache_dir=tmp_path)
    assert policy == "float32"
    assert text.startswith("auto: bfloat16 measured " + reason)


@pytest.mark.parametrize("result, detail", [
    (RuntimeError("oneDNN primitive creation failed\nmore"),
     "RuntimeError: oneDNN primitive creation failed"),
    ({"float32": {"forward": 1.0}}, "ValueError: no timings in its form"),
    (timings((1.0, 3.0), (0.0, 1.0)), "ValueError: no timings in its form"),
])
def test_a_failed_measurement_means_float32_and_is_not_cached(tmp_path, result, detail):
    policy, reason = precision.choose_precision("auto", cpu=ZEN4, gpus=[],
                                                measure=measured(result), cache_dir=tmp_path)
    assert policy == "float32"
    assert reason.startswith("auto: CPU with bfloat16 instructions but no AMX; measuring "
                             f"bfloat16 failed ({detail}")
    assert reason.endswith("): float32")
    assert not (tmp_path / tuning.CACHE_FILE).exists()


@pytest.mark.parametrize("content", [
    "{not json", "", "[1, 2]", '{"format": 1, "machines": []}',
    '{"format": 1, "machines": {"x": {"machine": 1, "timings": 2}}}',
])
def test_a_broken_cache_is_ignored_and_replaced(tmp_path, content):
    (tmp_path / tuning.CACHE_FILE).write_text(content)
    measure = measured(timings())
    assert precision.choose_precision("auto", cpu=ZEN4, gpus=[], measure=measure,
                                      cache_dir=tmp_path)[0] == "mixed_bfloat16"
    assert measure.calls == 1
    assert tuning.read_measurement(ZEN4, tmp_path) == timings()


def test_a_cached_measurement_of_another_setup_is_ignored(tmp_path, monkeypatch):
    tuning.write_measurement(ZEN4, timings(), tmp_path)
    entry = json.loads((tmp_path / tuning.CACHE_FILE).read_text())["machines"]
    (value,) = entry.values()
    # The same machine's key with the wrong content (edited by hand) is not it either.
    value["machine"]["cores"] = 64
    (tmp_path / tuning.CACHE_FILE).write_text(json.dumps({"format": 1, "machines": entry}))
    assert tuning.read_measurement(ZEN4, tmp_path) is None
    tuning.write_measurement(ZEN4, timings(), tmp_path)
    for patch in ((tf, "__version__", "2.99.0"), (hardware, "onednn_enabled", lambda: False),
                  (tuning, "PIECE_VERSION", tuning.PIECE_VERSION + 1)):
        with monkeypatch.context() as m:
            m.setattr(*patch)
            measure = measured(timings((1.0, 3.0), (2.0, 6.0)))
            policy, _ = precision.choose_precision("auto", cpu=ZEN4, gpus=[], measure=measure,
                                                   cache_dir=tmp_path)
            assert (policy, measure.calls) == ("float32", 1), patch[1]
    assert tuning.read_measurement(ZEN4, tmp_path) == timings()  # still there
    other = hardware.CpuInfo(ZEN4.model, ZEN4.vendor, ZEN4.flags, cores=ZEN4.cores + 2,
                             family=ZEN4.family)
    assert tuning.read_measurement(other, tmp_path) is None


def test_tuning_on_request_and_off(tmp_path, monkeypatch):
    # I3D_KERAS_TUNE=1 (or tune=True): measured even where a rule knows.
    faster = measured(timings())
    monkeypatch.setenv(tuning.TUNE_ENV, "1")
    policy, reason = precision.choose_precision("auto", cpu=XEON_BF16, gpus=[], measure=faster,
                                                cache_dir=tmp_path)
    assert (policy, faster.calls) == ("mixed_bfloat16", 1) and "measured 2.00x" in reason
    # A measurement cached: it decides before the rule, without I3D_KERAS_TUNE too.
    monkeypatch.delenv(tuning.TUNE_ENV)
    assert precision.choose_precision("auto", cpu=XEON_BF16, gpus=[],
                                      cache_dir=tmp_path)[0] == "mixed_bfloat16"
    # I3D_KERAS_TUNE=0 (or tune=False): the rules alone, nothing measured or read.
    monkeypatch.setenv(tuning.TUNE_ENV, "0")
    never = measured(RuntimeError("must not be called"))
    assert precision.choose_precision("auto", cpu=XEON_BF16, gpus=[], measure=never,
                                      cache_dir=tmp_path)[0] == "float32"
    policy, reason = precision.choose_precision("auto", cpu=ZEN4, gpus=[], measure=never,
                                                cache_dir=tmp_path)
    assert (policy, never.calls) == ("float32", 0)
    assert reason == ("auto: CPU with bfloat16 instructions but no AMX; bfloat16 not measured "
                      "(I3D_KERAS_TUNE=0): float32")
    assert precision.choose_precision("auto", cpu=ZEN4, gpus=[], tune=True,
                                      measure=measured(timings()))[0] == "mixed_bfloat16"
    monkeypatch.setenv(tuning.TUNE_ENV, "maybe")
    with pytest.raises(ValueError, match=r"Received: I3D_KERAS_TUNE='maybe'"):
        precision.choose_precision("auto", cpu=ZEN4, gpus=[])


def test_nothing_is_measured_when_the_user_gives_a_precision_or_a_gpu_decides(tmp_path,
                                                                               monkeypatch):
    never = measured(RuntimeError("must not be called"))
    monkeypatch.setattr(tuning, "measure_precisions", never)
    for setting in ("float32", "bfloat16", "float16"):
        for tune in (None, True):
            precision.choose_precision(setting, cpu=ZEN4, gpus=[], tune=tune, measure=never,
                                       cache_dir=tmp_path)
            precision.choose_precision(setting, tune=tune)  # this machine
    assert precision.choose_precision("auto", cpu=ZEN4, gpus=[("A100", (8, 0))], tune=True,
                                      measure=never)[0] == "mixed_bfloat16"
    # A described CPU is not this machine: not measured without a `measure`.
    policy, reason = precision.choose_precision("auto", cpu=ZEN4, gpus=[], tune=True)
    assert policy == "float32" and reason.endswith("not measured (not this machine): float32")
    assert never.calls == 0 and not (tmp_path / tuning.CACHE_FILE).exists()


def test_this_machine_is_measured_once_into_the_users_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(hardware, "cpu_info", lambda: ZEN5)
    monkeypatch.setattr(hardware, "gpus", lambda: [])
    measure = measured(timings((1.0, 3.0), (1.5, 4.5)))
    monkeypatch.setattr(tuning, "measure_precisions", measure)
    messages = []
    for _ in range(3):
        assert precision.use_precision("auto", tool="train", log=messages.append) == "float32"
    assert measure.calls == 1
    assert messages[0] == ("train: precision float32 (auto: bfloat16 measured 0.67x the speed "
                           "of float32 on this CPU: forward 0.67x, training step 0.67x)")
    assert messages[1] == messages[0][:-1] + "; cached)"
    assert (tmp_path / "i3d_keras" / tuning.CACHE_FILE).exists()


@pytest.mark.parametrize("setting, expected", [
    ("float32", "float32"), ("bfloat16", "mixed_bfloat16"), ("float16", "mixed_float16")])
def test_an_explicit_precision_overrides_the_hardware(setting, expected):
    for cpu in (AMD_EPYC, XEON_AMX):
        for gpus in ([], [("A100", (8, 0))]):
            assert precision.resolve_precision(setting, cpu=cpu, gpus=gpus) == expected


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match=r"Received: mixed_precision='bf16'"):
        precision.resolve_precision("bf16")


def test_every_caller_uses_the_one_decision(monkeypatch):
    # training.resolve_precision (train, fvd, diagnostics) and use_precision (the
    # other tools) read the machine through hardware.cpu_info / hardware.gpus.
    monkeypatch.setattr(hardware, "cpu_info", lambda: XEON_AMX)
    monkeypatch.setattr(hardware, "gpus", lambda: [])
    monkeypatch.setenv(tuning.TUNE_ENV, "0")  # the rule, whatever this machine cached
    assert training.resolve_precision("auto") == "mixed_bfloat16"
    messages = []
    assert precision.use_precision("auto", tool="predict", log=messages.append) == \
        "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert messages == ["predict: precision mixed_bfloat16 (auto: CPU with AMX-BF16 (bfloat16 "
                        "2.5x faster on a Xeon with AMX))"]
    monkeypatch.setattr(hardware, "cpu_info", lambda: AMD_EPYC)
    assert training.resolve_precision("auto") == "float32"
    assert precision.use_precision("bfloat16", log=messages.append) == "mixed_bfloat16"
    assert messages[-1] == "precision mixed_bfloat16 (--mixed_precision given)"


def test_policy_scope_restores_the_global_policy():
    with precision.policy_scope("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        with pytest.raises(RuntimeError):
            with precision.policy_scope("float32"):
                raise RuntimeError("inside")
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"


# ----------------------------------------------------------------------------
# Numerics
# ----------------------------------------------------------------------------

FRAMES, SIZE, CLASSES = 8, 32, 5


def _clips(rng, n=4, channels=3):
    return rng.uniform(-1, 1, (n, FRAMES, SIZE, SIZE, channels)).astype("float32")


def _assert_close_logits(float32_logits, other):
    """Checks `other` against `float32_logits` (see the module docstring)."""
    float32_logits, other = np.asarray(float32_logits), np.asarray(other)
    assert other.dtype == np.float32
    assert np.isfinite(other).all()
    scale = np.abs(float32_logits).max()
    difference = np.abs(other - float32_logits) / scale
    assert difference.mean() <= MEAN_TOLERANCE, difference.mean()
    assert difference.max() <= MAX_TOLERANCE, difference.max()
    agreement = (other.argmax(-1) == float32_logits.argmax(-1)).mean()
    assert agreement >= TOP1_AGREEMENT, agreement
    return difference.mean(), difference.max(), agreement


def test_bfloat16_model_keeps_the_delicate_parts_in_float32():
    with precision.policy_scope("mixed_bfloat16"):
        model = i3d_keras.InceptionI3D(CLASSES, frames=FRAMES, image_size=SIZE,
                                       final_endpoint="Predictions")
    compute = {layer.name: layer.compute_dtype for layer in model.layers}
    assert compute["Conv3d_1a_7x7_conv_3d"] == "bfloat16"
    assert compute["Mixed_5c_Branch_0_Conv3d_0a_1x1_conv_3d"] == "bfloat16"
    for name in ("Logits_AvgPool3d", "Logits_Dropout", "Logits_Conv3d_0c_1x1_conv_3d",
                 "Logits", "Predictions"):
        assert compute[name] == "float32", name
    assert all(w.dtype == "float32" for w in model.weights)  # variables stay float32
    # BatchNorm: statistics in float32 on both of its paths (fused and Keras').
    bn = model.get_layer("Conv3d_2b_1x1_batch_norm")
    x = tf.cast(tf.random.uniform([2, 4, 8, 8, 64]) * 300.0 + 1000.0, "bfloat16")
    bn(x, training=True)
    mean = bn.moving_mean.numpy()
    # bfloat16 moments of values ~1150 would be off by ~4; float32 ones by <0.1.
    expected = (1 - bn.momentum) * tf.reduce_mean(tf.cast(x, "float32"), axis=[0, 1, 2, 3]).numpy()
    np.testing.assert_allclose(mean, expected, rtol=1e-3)
    assert model.output.dtype == "float32"


def test_bfloat16_logits_and_gradients_on_random_weights(rng, tmp_path):
    reference = i3d_keras.InceptionI3D(CLASSES, frames=FRAMES, image_size=SIZE)
    with precision.policy_scope("mixed_bfloat16"):
        model = i3d_keras.InceptionI3D(CLASSES, frames=FRAMES, image_size=SIZE)
    model.set_weights(reference.get_weights())
    # Random initialisation gives logits near zero: a scaled classifier gives
    # them a range like a trained model's, so that the tolerance means something.
    for m in (reference, model):
        kernel = m.get_layer("Logits_Conv3d_0c_1x1_conv_3d").kernel
        kernel.assign(kernel * 1000.0)
    clips = _clips(rng, n=2)
    _assert_close_logits(reference(clips, training=False), model(clips, training=False))

    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        logits = model(clips, training=True)
        loss = loss_fn(np.arange(2), logits)
    grads = tape.gradient(loss, model.trainable_variables)
    assert logits.dtype == loss.dtype == "float32"
    assert len(grads) == len(model.trainable_variables)
    for grad, var in zip(grads, model.trainable_variables):
        assert grad is not None and grad.dtype == "float32", var.path
        assert np.isfinite(grad.numpy()).all(), var.path
    assert any(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)

    # Trained in bfloat16 (this step), evaluated in float32: a .keras file
    # loads for inference in the current (float32) policy, same weights.
    keras.optimizers.SGD(0.1).apply_gradients(zip(grads, model.trainable_variables))
    model.save(tmp_path / "bf16.keras")
    predictor = inference.load_predictor(tmp_path / "bf16.keras")
    assert precision.model_policy(predictor.parts[0].model) == "float32"
    logits, _ = predictor.logits({"rgb": clips})
    reference.set_weights(model.get_weights())
    np.testing.assert_allclose(logits, reference(clips, training=False).numpy(),
                               rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An I3D RGB model trained in float32 on the motion dataset (tiny run)."""
    out = tmp_path_factory.mktemp("run_f32")
    previous = keras.config.dtype_policy()
    try:
        summary = training.train(training.TrainConfig(
            stream="rgb", output_dir=str(out), epochs=1, num_train=80, num_val=16,
            mixed_precision="float32", verbose=0))
    finally:
        keras.config.set_dtype_policy(previous)
    model = keras.models.load_model(summary["last_model"], compile=False)
    from i3d_keras.data import motion_dataset  # noqa: PLC0415

    _, val = motion_dataset.motion_datasets(num_train=8, num_val=32, num_frames=FRAMES,
                                            size=SIZE, batch_size=32, modality="rgb", seed=1)
    clips, labels = next(iter(val))
    return summary["last_model"], model, clips.numpy(), labels.numpy()


def test_trained_model_in_bfloat16_agrees_with_float32(trained):
    path, model, clips, _ = trained
    assert precision.model_policy(model) == "float32"
    float32_logits = model(clips, training=False).numpy()
    assert np.abs(float32_logits).max() > 0.5  # trained: logits well away from zero
    as_bfloat16 = precision.with_precision(model, "bfloat16")
    assert precision.model_policy(as_bfloat16) == "mixed_bfloat16"
    assert as_bfloat16.get_layer("Logits").compute_dtype == "float32"
    mean, largest, agreement = _assert_close_logits(float32_logits,
                                                    as_bfloat16(clips, training=False))
    print(f"bfloat16 vs float32, trained motion model: |logit difference| mean {mean:.2%}, "
          f"max {largest:.2%} of the largest logit; top-1 agreement {agreement:.0%}")
    # The file itself, loaded for inference under a bfloat16 global policy.
    with precision.policy_scope("mixed_bfloat16"):
        predictor = inference.load_predictor(path)
    logits, _ = predictor.logits({"rgb": clips})
    _assert_close_logits(float32_logits, logits)


def test_save_and_load_across_precisions(tmp_path, trained):
    _, model, clips, _ = trained
    with precision.policy_scope("mixed_bfloat16"):
        bf16 = i3d_keras.InceptionI3D(model.output.shape[-1], frames=FRAMES, image_size=SIZE)
    bf16.set_weights(model.get_weights())
    bf16.save(tmp_path / "bf16.keras")
    loaded = keras.models.load_model(tmp_path / "bf16.keras", compile=False)
    for saved, restored in zip(bf16.weights, loaded.weights):
        assert restored.dtype == "float32"
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())
    back = precision.with_precision(loaded, "float32")
    np.testing.assert_allclose(back(clips, training=False).numpy(),
                               model(clips, training=False).numpy(), rtol=1e-5, atol=1e-5)
    back.save(tmp_path / "f32.keras")
    assert precision.model_policy(keras.models.load_model(tmp_path / "f32.keras")) == "float32"
    # A two-stream model: the nested streams are rebuilt too.
    fused = precision.with_precision(i3d_keras.TwoStreamI3D(bf16, None), "float32")
    assert precision.model_policy(fused) == "float32"
    assert fused.get_layer("Logits").compute_dtype == "float32"


def test_deepmind_checkpoint_into_a_bfloat16_model(tmp_path, trained):
    # A checkpoint with DeepMind's variable names (the trained model's values).
    _, model, clips, _ = trained
    scope = "RGB/inception_i3d/"
    values = {name: layer.weights[index].numpy()
              for name, (layer, index) in deepmind.deepmind_variable_names(model, scope).items()}
    values = {name: (v.reshape(1, 1, 1, 1, -1) if "batch_norm" in name else v)
              for name, v in values.items()}
    write_checkpoint(tmp_path / "model.ckpt", values)
    with precision.policy_scope("mixed_bfloat16"):
        converted = deepmind.from_deepmind_checkpoint(tmp_path / "model.ckpt", image_size=SIZE)
    assert precision.model_policy(converted) == "mixed_bfloat16"
    for a, b in zip(model.weights, converted.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    _assert_close_logits(model(clips, training=False).numpy(),
                         converted(clips, training=False))


def test_imagenet_inflation_in_bfloat16(rng):
    from i3d_keras.models import inception_v1  # noqa: PLC0415

    model_2d = inception_v1.InceptionV1(10, image_size=SIZE)
    reference = i3d_keras.InceptionI3D(10, frames=FRAMES, image_size=SIZE)
    inception_v1.inflate_into_i3d(model_2d, reference)
    with precision.policy_scope("mixed_bfloat16"):
        model = i3d_keras.InceptionI3D(10, frames=FRAMES, image_size=SIZE)
        inception_v1.inflate_into_i3d(model_2d, model)
    for a, b in zip(reference.weights, model.weights):
        assert b.dtype == "float32"
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_saved_model_of_a_bfloat16_model_has_float32_inputs_and_outputs(tmp_path, trained):
    from i3d_keras.export import exporters  # noqa: PLC0415

    _, model, clips, _ = trained
    bf16 = precision.with_precision(model, "bfloat16")
    path = exporters.export_saved_model(bf16, tmp_path, "i3d", image_size=SIZE)
    keras.config.set_dtype_policy("float32")
    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["preprocessed"]
    (spec,) = signature.structured_input_signature[1].values()
    assert spec.dtype == tf.float32
    out = signature(rgb=tf.constant(clips))
    assert out["logits"].dtype == tf.float32 and out["probabilities"].dtype == tf.float32
    _assert_close_logits(model(clips, training=False).numpy(), out["logits"].numpy())


def test_litert_file_of_a_bfloat16_model_computes_in_float32(tmp_path, trained):
    from i3d_keras.export import exporters  # noqa: PLC0415

    _, model, clips, _ = trained
    bf16 = precision.with_precision(model, "bfloat16")
    path = exporters.export_tflite(bf16, tmp_path / "bf16.tflite", frames=FRAMES, image_size=SIZE)
    keras.config.set_dtype_policy("float32")
    interpreter = exporters.litert_interpreter(path)
    (detail,) = interpreter.get_input_details()
    assert detail["dtype"] == np.float32
    assert interpreter.get_output_details()[0]["dtype"] == np.float32
    # The file holds the float32 computation with the model's weights: it agrees
    # with the float32 model as a float32 export does, not to bfloat16 rounding.
    report = exporters.verify_tflite(model, path, {"rgb": clips[:1]})
    scale = np.abs(model(clips[:1], training=False).numpy()).max()
    assert report["max_abs_logit_diff"] <= 1e-4 * max(scale, 1.0), report
    assert report["top1_agreement"] == 1.0
    # Verified against the bfloat16 model it was exported from (a .keras file
    # trained in mixed precision), the comparison is still in float32.
    assert exporters.verify_tflite(bf16, path, {"rgb": clips[:1]}) == report

