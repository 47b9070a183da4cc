"""Tests for i3d_keras.models.convolution: the 2D formulation equals the float64
convolution, and the gradients avoid oneDNN's AVX-512 defect (issue 17).

References are TensorFlow's float64 `tf.nn.conv3d` and its gradients, which
run on TensorFlow's Eigen kernels (oneDNN has no float64 kernels), never its
float32 kernels: those are what may be defective.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from i3d_keras.benchmarks import diagnostics
from i3d_keras.models import convolution

# (input shape, kernel shape, strides, padding): I3D's layers (stem 7x7x7 with
# stride 2 on even and odd lengths, 3x3x3, 1x1x1) and the other cases the
# formulation handles (temporal-only and spatial-only kernels, even kernels,
# VALID padding, temporal stride with a 3x3x3 kernel, strided 1x1x1, unequal
# spatial sizes and strides).
CASES = [
    ((2, 8, 16, 16, 3), (7, 7, 7, 3, 8), (2, 2, 2), "same"),
    ((2, 7, 15, 13, 3), (7, 7, 7, 3, 8), (2, 2, 2), "same"),
    ((2, 6, 12, 12, 5), (3, 3, 3, 5, 7), (1, 1, 1), "same"),
    ((1, 5, 9, 9, 6), (1, 1, 1, 6, 4), (1, 1, 1), "same"),
    ((1, 5, 9, 9, 6), (1, 1, 1, 6, 4), (2, 2, 2), "same"),
    ((2, 6, 12, 12, 4), (1, 3, 3, 4, 6), (1, 2, 2), "same"),
    ((2, 6, 12, 12, 4), (3, 1, 1, 4, 6), (1, 1, 1), "same"),
    ((2, 8, 10, 10, 4), (2, 2, 2, 4, 6), (2, 2, 2), "valid"),
    ((2, 9, 11, 10, 4), (3, 3, 3, 4, 6), (1, 1, 1), "valid"),
    ((1, 9, 10, 10, 4), (3, 3, 3, 4, 6), (2, 1, 1), "same"),
    ((1, 6, 10, 10, 4), (2, 2, 2, 4, 3), (1, 1, 1), "same"),
    ((1, 9, 8, 8, 3), (3, 3, 3, 3, 4), (2, 2, 2), "valid"),
    ((1, 7, 8, 8, 3), (1, 3, 3, 3, 4), (2, 1, 1), "same"),
    ((1, 8, 8, 8, 3), (5, 1, 1, 3, 4), (3, 1, 1), "same"),
    ((1, 4, 9, 13, 3), (1, 3, 5, 3, 4), (1, 2, 3), "same"),
    ((1, 4, 9, 13, 3), (1, 3, 5, 3, 4), (1, 2, 3), "valid"),
    ((1, 5, 7, 11, 3), (3, 3, 5, 3, 4), (1, 1, 1), "same"),
]


def _relative_error(got, expected):
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(got - expected)) / np.max(np.abs(expected)))


def _in_defect_region(x_shape, kernel_shape, strides):
    # Where oneDNN's AVX-512 gradients crashed or were wrong (issue 17): such
    # cases run in child processes (test_defect_shapes_in_child_processes).
    return strides[0] > 1 and x_shape[1] <= kernel_shape[0]


def _float64_reference(x, kernel, strides, padding):
    """Output and gradients of TensorFlow's float64 convolution (Eigen)."""
    return _outputs_and_gradients(
        lambda a, k: tf.nn.conv3d(a, k, [1, *strides, 1], padding.upper()),
        tf.cast(x, tf.float64), tf.cast(kernel, tf.float64))


def _outputs_and_gradients(fn, x, kernel):
    with tf.GradientTape() as tape:
        tape.watch([x, kernel])
        y = fn(x, kernel)
        # An output gradient that varies per element and does not depend on
        # y's rounding (a loss like sum(y * sin(y)) amplifies that 30-fold
        # for the stem's outputs of size ~30).
        index = tf.reshape(tf.range(tf.size(y)), tf.shape(y))
        loss = tf.reduce_sum(y * tf.sin(tf.cast(index, y.dtype)))
    dx, dkernel = tape.gradient(loss, [x, kernel])
    return y, dx, dkernel


@pytest.mark.parametrize("x_shape,kernel_shape,strides,padding",
                         [c for c in CASES if not _in_defect_region(*c[:3])])
def test_conv2d_formulation_equals_conv3d(rng, x_shape, kernel_shape, strides, padding):
    x = tf.constant(rng.normal(size=x_shape).astype("float32"))
    kernel = tf.constant(rng.normal(size=kernel_shape).astype("float32"))
    expected = _float64_reference(x, kernel, strides, padding)
    got = _outputs_and_gradients(
        lambda a, k: convolution.conv3d(a, k, strides, padding, "conv2d"), x, kernel)
    for name, g, e in zip(("output", "input gradient", "kernel gradient"), got, expected):
        assert g.shape == e.shape, name
        # Float rounding only (another summation order): the 1e-5.
        assert _relative_error(g.numpy(), e.numpy()) < 1e-5, (name, _relative_error(g, e))


@pytest.mark.parametrize("x_shape,kernel_shape,strides,padding",
                         [CASES[1], CASES[2], CASES[8], CASES[11], CASES[13]])
def test_unknown_dimensions_in_graph(rng, x_shape, kernel_shape, strides, padding):
    # Serving signatures leave batch, time and space unknown.
    kernel = tf.constant(rng.normal(size=kernel_shape).astype("float32"))
    fn = tf.function(
        lambda a: convolution.conv3d(a, kernel, strides, padding, "conv2d"),
        input_signature=[tf.TensorSpec([None, None, None, None, x_shape[-1]])])
    x = rng.normal(size=x_shape).astype("float32")
    expected = tf.nn.conv3d(x.astype("float64"), tf.cast(kernel, tf.float64), [1, *strides, 1],
                            padding.upper()).numpy()
    got = fn(x).numpy()
    assert got.shape == expected.shape
    assert _relative_error(got, expected) < 1e-5
    static = convolution.output_shape(tf.TensorShape([None] * 4 + [x_shape[-1]]), kernel_shape,
                                      strides, padding)
    assert static.as_list() == [None, None, None, None, kernel_shape[-1]]


@pytest.mark.parametrize("case", [0, 11, 15])
def test_gradients_with_unknown_dimensions_in_graph(rng, case):
    # Spatially strided kernels take their kernel gradient from a dilated
    # convolution whose padding is computed at run time here.
    x_shape, kernel_shape, strides, padding = CASES[case]
    x = tf.constant(rng.normal(size=x_shape).astype("float32"))
    kernel = tf.constant(rng.normal(size=kernel_shape).astype("float32"))
    fn = tf.function(
        lambda a, k: _outputs_and_gradients(
            lambda b, w: convolution.conv3d(b, w, strides, padding, "conv2d"), a, k),
        input_signature=[tf.TensorSpec([None] * 4 + [x_shape[-1]]),
                         tf.TensorSpec(kernel_shape)])
    got = fn(x, kernel)
    expected = _float64_reference(x, kernel, strides, padding)
    for name, g, e in zip(("output", "input gradient", "kernel gradient"), got, expected):
        assert g.shape == e.shape, name
        assert _relative_error(g.numpy(), e.numpy()) < 1e-5, name


@pytest.mark.parametrize("onednn_gradients", [False, True], ids=["eigen_paths", "onednn_paths"])
@pytest.mark.parametrize("case", [0, 2, 6, 8, 14, 16])
@pytest.mark.parametrize("unknown_dims", [False, True], ids=["static", "unknown"])
def test_gradients_of_both_paths(rng, monkeypatch, case, onednn_gradients, unknown_dims):
    # The gradients are computed differently with oneDNN (3D gradient kernels,
    # kernel gradients as matrix products) than without: both paths are
    # checked, whichever kernels this process runs.
    monkeypatch.setattr(convolution, "onednn_enabled", lambda: onednn_gradients)
    x_shape, kernel_shape, strides, padding = CASES[case]
    x = tf.constant(rng.normal(size=x_shape).astype("float32"))
    kernel = tf.constant(rng.normal(size=kernel_shape).astype("float32"))

    def conv2d_formulation(a, k):
        return _outputs_and_gradients(
            lambda b, w: convolution.conv3d(b, w, strides, padding, "conv2d"), a, k)

    shape = [None] * 4 + [x_shape[-1]] if unknown_dims else x_shape
    got = tf.function(conv2d_formulation, input_signature=[
        tf.TensorSpec(shape), tf.TensorSpec(kernel_shape)])(x, kernel)
    expected = _float64_reference(x, kernel, strides, padding)
    for name, g, e in zip(("output", "input gradient", "kernel gradient"), got, expected):
        assert g.shape == e.shape, name
        assert _relative_error(g.numpy(), e.numpy()) < 1e-5, name


def test_onednn_enabled_follows_the_package_default():
    # conftest imports i3d_keras before TensorFlow, like the tools: oneDNN is on
    # unless the environment said otherwise.
    expected = os.environ["TF_ENABLE_ONEDNN_OPTS"].lower() in ("1", "true")
    assert convolution.onednn_enabled() is expected


def test_warning_when_tensorflow_was_imported_first_with_onednn_off():
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    script = ("import tensorflow\nimport i3d_keras\n"
              "print(i3d_keras.models.convolution.onednn_enabled())")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    onednn = out.stdout.strip().splitlines()[-1] == "True"
    # TensorFlow's default: off on AVX2 CPUs like the project's, on with AVX-512.
    assert ("Import i3d_keras first" in out.stderr) is not onednn, out.stderr[-2000:]
    env["TF_ENABLE_ONEDNN_OPTS"] = "0"  # a choice: no warning
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "False"
    assert "Import i3d_keras first" not in out.stderr


def _square_loss_gradient(conv, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = conv(x)
        loss = tf.reduce_sum(y * y)
    return y, tape.gradient(loss, x)


def test_under_xla_with_unknown_batch(rng):
    kernel = tf.constant(rng.normal(size=(3, 3, 3, 4, 6)).astype("float32"))
    fn = tf.function(
        lambda a: _square_loss_gradient(
            lambda b: convolution.conv3d(b, kernel, (1, 1, 1), "same", "conv2d"), a),
        jit_compile=True, input_signature=[tf.TensorSpec([None, 6, 10, 10, 4])])
    x = tf.constant(rng.normal(size=(3, 6, 10, 10, 4)).astype("float32"))
    y, dx = fn(x)
    expected_y, expected_dx = _square_loss_gradient(
        lambda b: tf.nn.conv3d(b, tf.cast(kernel, tf.float64), [1] * 5, "SAME"),
        tf.cast(x, tf.float64))
    assert _relative_error(y.numpy(), expected_y.numpy()) < 1e-5
    assert _relative_error(dx.numpy(), expected_dx.numpy()) < 1e-5


def test_bfloat16_inputs(rng):
    x = rng.normal(size=(1, 6, 12, 12, 4)).astype("float32")
    kernel = rng.normal(size=(3, 3, 3, 4, 8)).astype("float32")
    expected = tf.nn.conv3d(x.astype("float64"), kernel.astype("float64"), [1] * 5,
                            "SAME").numpy()
    got = convolution.conv3d(tf.cast(x, tf.bfloat16), tf.cast(kernel, tf.bfloat16),
                             implementation="conv2d")
    assert got.dtype == tf.bfloat16
    assert _relative_error(tf.cast(got, tf.float32).numpy(), expected) < 2e-2


def test_implementation_choice_and_bad_arguments():
    # No GPU on the test machines: "auto" is the 2D formulation.
    expected = "conv3d" if tf.config.list_logical_devices("GPU") else "conv2d"
    assert convolution.resolve_implementation("auto") == expected
    assert convolution.resolve_implementation("conv3d") == "conv3d"
    with pytest.raises(ValueError, match="Received: implementation='cudnn'"):
        convolution.resolve_implementation("cudnn")
    x, kernel = tf.zeros([1, 4, 8, 8, 2]), tf.zeros([3, 3, 3, 2, 4])
    with pytest.raises(ValueError, match="Received: padding='causal'"):
        convolution.conv3d(x, kernel, padding="causal")
    # The native path is tf.nn.conv3d itself.
    np.testing.assert_array_equal(
        convolution.conv3d(x + 1, kernel + 1, implementation="conv3d"),
        tf.nn.conv3d(x + 1, kernel + 1, [1] * 5, "SAME"))


# Issue 17, measured on a 2-core Xeon with AVX-512 and AMX (TF 2.21, oneDNN
# 3.7): TensorFlow's own float32 Conv3D gradients, 7x7x7 kernel, stride 2,
# "same", against float64, by clip length. The routing must send every length
# seen failing, and the untested ones around them, away from oneDNN's 3D
# gradient kernels, and keep the lengths seen right on the fast kernels.
XEON_FAILED = [5, 7]              # 5: the process died; 7: NaN / errors up to 1e32
XEON_RIGHT = [8, 9, 12, 16]       # 4 too, but it lies inside the routed region
ROUTED_UNTESTED = [1, 2, 3, 4, 6]


@pytest.mark.parametrize("time_length", XEON_FAILED + ROUTED_UNTESTED)
def test_defect_region_routes_the_lengths_that_failed(monkeypatch, time_length):
    monkeypatch.setattr(convolution, "onednn_defect_possible", lambda: True)
    assert convolution.onednn_backward_defect(time_length, (7, 7, 7), (2, 2, 2)) is True


@pytest.mark.parametrize("time_length", XEON_RIGHT + [32, 64, 250])
def test_defect_region_keeps_the_fast_kernels_elsewhere(monkeypatch, time_length):
    monkeypatch.setattr(convolution, "onednn_defect_possible", lambda: True)
    assert convolution.onednn_backward_defect(time_length, (7, 7, 7), (2, 2, 2)) is False
    # Stride-1 kernels of any size were right at every length.
    for kernel in (1, 3, 7):
        assert convolution.onednn_backward_defect(5, (kernel,) * 3, (1, 1, 1)) is False


def test_defect_region_needs_the_avx512_kernels(monkeypatch):
    monkeypatch.setattr(convolution, "onednn_defect_possible", lambda: False)
    assert convolution.onednn_backward_defect(7, (7, 7, 7), (2, 2, 2)) is False


@pytest.mark.parametrize("setting,expected", [("on", True), ("off", False), ("ON ", True)])
def test_workaround_setting(monkeypatch, setting, expected):
    monkeypatch.setenv(convolution.WORKAROUND_ENV, setting)
    assert convolution.onednn_defect_possible() is expected


def test_workaround_setting_auto_follows_the_cpu(monkeypatch):
    from i3d_keras.runtime import hardware

    monkeypatch.delenv(convolution.WORKAROUND_ENV, raising=False)
    expected = convolution.onednn_enabled() and "avx512f" in hardware.cpu_info().flags
    assert convolution.onednn_defect_possible() is expected
    monkeypatch.setenv(convolution.WORKAROUND_ENV, "sometimes")
    with pytest.raises(ValueError, match="Received: I3D_KERAS_ONEDNN_WORKAROUND='sometimes'"):
        convolution.onednn_defect_possible()


def _gradient_op_types(x_shape, implementation):
    kernel = tf.zeros([7, 7, 7, 3, 4])

    @tf.function(input_signature=[tf.TensorSpec(x_shape)])
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = convolution.conv3d(x, kernel, (2, 2, 2), "same", implementation)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, [x, kernel])

    return {op.type for op in step.get_concrete_function().graph.get_operations()}


@pytest.mark.parametrize("implementation", ["conv2d", "conv3d"])
def test_routed_gradients_use_no_onednn_3d_gradient_kernel(monkeypatch, implementation):
    monkeypatch.setattr(convolution, "onednn_defect_possible", lambda: True)
    for time_length in (5, 7):
        ops = _gradient_op_types([2, time_length, 16, 16, 3], implementation)
        assert not {"Conv3DBackpropInputV2", "Conv3DBackpropFilterV2"} & ops, time_length
        assert {"Conv2DBackpropInput", "Conv2DBackpropFilter"} <= ops, time_length
    # A 16-frame clip keeps oneDNN's fast 3D gradient kernels.
    ops = _gradient_op_types([2, 16, 16, 16, 3], implementation)
    assert "Conv3DBackpropInputV2" in ops and "Conv3DBackpropFilterV2" in ops
    # An unknown length is decided at run time.
    ops = _gradient_op_types([2, None, 16, 16, 3], implementation)
    assert ops & {"If", "StatelessIf"}


def test_defect_shapes_in_child_processes():
    # The shapes of issue 17 and lengths around them, in both implementations
    # and every precision, traced with static and with unknown dimensions: in
    # child processes, since on a CPU where oneDNN's defect is not routed
    # around they kill the process. With the workaround forced on, this also
    # checks the routed gradients (and the run-time choice) on CPUs without
    # AVX-512; with the default, the kernels this machine really runs.
    cases = []
    for shape in [(2, 5, 32, 32, 3), (2, 7, 32, 32, 3), (2, 7, 15, 13, 3), (2, 5, 13, 16, 2),
                  (2, 1, 16, 16, 3), (2, 8, 16, 16, 3)]:
        for implementation in ("conv2d", "conv3d"):
            cases.append(diagnostics.Case("conv", shape, (7, 7, 7), (2, 2, 2), "same", 8,
                                          implementation, name="stem"))
    for dtype in ("bfloat16", "float16"):
        cases.append(diagnostics.Case("conv", (2, 7, 16, 16, 3), (7, 7, 7), (2, 2, 2), "same", 8,
                                      "conv2d", dtype, name="stem"))
    for time_length in (5, 16):
        cases.append(diagnostics.Case("conv", (2, time_length, 16, 16, 3), (7, 7, 7), (2, 2, 2),
                                      "same", 8, "conv2d", unknown_dims=True, name="stem"))
    failures = []
    for setting in ("auto", "on"):
        env = dict(os.environ, **{convolution.WORKAROUND_ENV: setting})
        results = diagnostics.run_isolated(cases, workers=1, env=env)
        failures += [f"{setting}: {r.summary()}" for r in results if not r.ok]
    assert not failures, "\n".join(failures)
