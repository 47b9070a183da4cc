"""Tests for i3d_keras.benchmarks.diagnostics: float64 checks in crash-proof child processes."""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from i3d_keras.benchmarks import diagnostics
from i3d_keras.models import convolution

ROOT = Path(__file__).resolve().parents[2]


def test_i3d_configurations_are_every_distinct_conv_and_pool():
    configs = [(c["op"], c["window"], c["strides"], c["padding"], c["adaptive"], c["channels"])
               for c in diagnostics.i3d_configurations("rgb")]
    assert configs == [
        ("conv", (7, 7, 7), (2, 2, 2), "same", False, 3),        # Conv3d_1a_7x7
        ("max", (1, 3, 3), (1, 2, 2), "same", False, 64),        # MaxPool3d_2a_3x3
        ("conv", (1, 1, 1), (1, 1, 1), "same", False, 64),       # Conv3d_2b_1x1
        ("conv", (3, 3, 3), (1, 1, 1), "same", False, 64),       # Conv3d_2c_3x3
        ("max", (3, 3, 3), (1, 1, 1), "same", False, 192),       # Mixed_3b Branch_3
        ("max", (3, 3, 3), (2, 2, 2), "same", False, 480),       # MaxPool3d_4a_3x3
        ("max", (2, 2, 2), (2, 2, 2), "same", False, 832),       # MaxPool3d_5a_2x2
        ("avg", (2, 7, 7), (1, 1, 1), "valid", True, 1024),      # the logits head
    ]
    flow = diagnostics.i3d_configurations("flow")
    assert flow[0]["channels"] == 2


def test_model_cases_cover_both_stems_at_every_length():
    cases = diagnostics.model_cases(clip_lengths=(1, 7), dtypes=("float32", "bfloat16"))
    # The end-to-end checks come first (the longest ones start early).
    assert [c.op for c in cases[:2]] == ["two_stream"] * 2
    layer_cases = cases[2:]
    assert len(layer_cases) == 2 * 2 * 9  # lengths x dtypes x (8 configs + the flow stem)
    stems = [c for c in layer_cases if c.window == (7, 7, 7)]
    assert sorted({(c.input_shape[1], c.input_shape[-1], c.dtype) for c in stems}) == [
        (1, 2, "bfloat16"), (1, 2, "float32"), (1, 3, "bfloat16"), (1, 3, "float32"),
        (7, 2, "bfloat16"), (7, 2, "float32"), (7, 3, "bfloat16"), (7, 3, "float32")]
    assert all(c.input_shape[2:4] == (32, 32) for c in stems)
    assert all(max(c.input_shape[-1], c.filters) <= 32 for c in layer_cases)


@pytest.mark.parametrize("op,window,strides,padding,adaptive", [
    ("max", (3, 3, 3), (2, 2, 2), "same", False),
    ("max", (1, 3, 3), (1, 2, 2), "same", False),
    ("max", (2, 2, 2), (2, 2, 2), "valid", False),
    ("avg", (3, 3, 3), (1, 2, 2), "same", False),
    ("avg", (2, 7, 7), (1, 1, 1), "valid", True),
])
def test_reference_pool_equals_tensorflow(rng, op, window, strides, padding, adaptive):
    # The NumPy reference against TensorFlow's own 3D pooling (float32).
    x = rng.standard_normal((2, 5, 9, 6, 3))
    case = diagnostics.Case(op, x.shape, window, strides, padding, adaptive=adaptive)
    effective = [min(k, n) for k, n in zip(window, x.shape[1:4])] if adaptive else window
    pool = tf.nn.max_pool3d if op == "max" else tf.nn.avg_pool3d
    x32 = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x32)
        y = pool(x32, [1, *effective, 1], [1, *strides, 1], padding.upper())
    dy = np.cos(np.arange(y.shape.num_elements())).reshape(y.shape)
    dx = tape.gradient(y, x32, output_gradients=tf.constant(dy, tf.float32))
    expected_y, expected_dx = diagnostics._reference_pool(x, lambda shape: dy, case)
    np.testing.assert_allclose(expected_y, y.numpy(), atol=1e-6)
    np.testing.assert_allclose(expected_dx, dx.numpy(), atol=1e-5)


def test_check_case_passes_and_catches_wrong_values(monkeypatch):
    case = diagnostics.Case("conv", (2, 5, 8, 8, 3), (3, 3, 3), (2, 2, 2), "same", 4)
    result = diagnostics.check_case(case)
    assert result.ok and set(result.errors) == {"output", "input gradient", "kernel gradient"}
    assert max(result.errors.values()) < 1e-5
    real = convolution.conv3d
    monkeypatch.setattr(convolution, "conv3d", lambda *a, **k: real(*a, **k) * 1.001)
    wrong = diagnostics.check_case(case)
    assert wrong.status == "wrong" and "largest error 1.0e-03" in wrong.summary()
    monkeypatch.setattr(convolution, "conv3d", lambda *a, **k: real(*a, **k) * np.nan)
    assert diagnostics.check_case(case).status == "nan"

    def broken_kernel(*args, **kwargs):
        raise tf.errors.InternalError(None, None, "oneDNN primitive creation failed\nmore")

    monkeypatch.setattr(convolution, "conv3d", broken_kernel)
    error = diagnostics.check_case(case)
    assert error.status == "error"
    assert error.detail == "InternalError: oneDNN primitive creation failed"


def test_bad_cases_are_refused():
    with pytest.raises(ValueError, match="Received: padding='causal'"):
        diagnostics.Case("conv", (1, 4, 8, 8, 3), (3, 3, 3), padding="causal", filters=2)
    with pytest.raises(ValueError, match="Received: dtype='float8'"):
        diagnostics.Case("max", (1, 4, 8, 8, 3), dtype="float8")
    with pytest.raises(ValueError, match="Received: filters=0"):
        diagnostics.Case("conv", (1, 4, 8, 8, 3), (3, 3, 3))
    with pytest.raises(ValueError, match=r"Received: input_shape=\(4, 8, 8, 3\)"):
        diagnostics.Case("max", (4, 8, 8, 3))


def test_pool_and_two_stream_cases():
    pool = diagnostics.check_case(diagnostics.Case("max", (2, 5, 8, 8, 4), (3, 3, 3)))
    assert pool.ok and set(pool.errors) == {"output", "input gradient"}
    model = diagnostics.check_case(diagnostics.Case("two_stream", (1, 5, 16, 16, 3)))
    assert model.ok, model.summary()
    assert sorted(k.split(" (")[0] for k in model.errors) == [
        "input gradients", "logits", "weight gradients"]


def _env_with_sitecustomize(tmp_path, code):
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(code))
    path = os.pathsep.join([str(tmp_path), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, PYTHONPATH=path)


def test_a_crash_or_hang_is_a_result_and_the_check_goes_on(tmp_path):
    # A real SIGABRT and a real hang in the child, injected at its start-up.
    env = _env_with_sitecustomize(tmp_path, """
        import os, time
        from i3d_keras.benchmarks import diagnostics
        _check = diagnostics.check_case
        def check_case(case, seed=0):
            if case.name == "abort":
                print("corrupted size vs. prev_size", flush=True, file=__import__("sys").stderr)
                os.abort()
            if case.name == "hang":
                time.sleep(600)
            return _check(case, seed)
        diagnostics.check_case = check_case
    """)
    fine = diagnostics.Case("conv", (1, 4, 8, 8, 2), (3, 3, 3), filters=2, name="fine")
    crash = diagnostics.Case("conv", (2, 5, 32, 32, 3), (7, 7, 7), (2, 2, 2), filters=8,
                             name="abort")
    seen = []
    results = diagnostics.run_isolated([crash, fine], workers=1, env=env, on_result=seen.append)
    assert [r.status for r in results] == ["crashed", "ok"] and seen == results
    assert "killed by SIGABRT" in results[0].detail
    assert "corrupted size vs. prev_size" in results[0].detail
    assert "abort: conv 7x7x7 stride 2x2x2 same, input 2x5x32x32x3" in results[0].summary()
    hang = diagnostics.Case("conv", (1, 4, 8, 8, 2), (3, 3, 3), filters=2, name="hang")
    (result,) = diagnostics.run_isolated([hang], timeout=5, env=env)
    assert result.status == "timeout" and "no result within 5 s" in result.detail


def test_a_child_that_cannot_start_fails_every_case_once(tmp_path):
    env = _env_with_sitecustomize(tmp_path, """
        import os, sys
        if "diagnostics._worker_main" in " ".join(sys.argv) or sys.argv == ["-c"]:
            print("ImportError: libtensorflow_framework.so.2: cannot open", file=sys.stderr)
            os._exit(3)
    """)
    cases = [diagnostics.Case("conv", (1, 4, 8, 8, 2), (3, 3, 3), filters=2)] * 3
    results = diagnostics.run_isolated(cases, workers=2, env=env)
    assert [r.status for r in results] == ["error"] * 3
    assert all("exited with status 3" in r.detail and "before its first case" in r.detail
               for r in results)


def test_machine_report_names_this_machine():
    report = diagnostics.machine_report()
    assert report["tensorflow"] == tf.__version__
    assert report["onednn"]["enabled"] is convolution.onednn_enabled()
    # What oneDNN's verbose log gives differs by machine: checked where given.
    if "version" in report["onednn"]:
        assert report["onednn"]["version"].startswith("v")
    if "isa" in report["onednn"]:
        assert report["onednn"]["isa"]
    assert report["paths"]["convolution"] == convolution.resolve_implementation("auto")
    assert report["paths"]["precision (auto)"].split()[0] in (
        "float32", "mixed_bfloat16", "mixed_float16")
    assert report["paths"]["oneDNN defect routing"].startswith(
        "on" if convolution.onednn_defect_possible() else "off")


# oneDNN 3.7's verbose log on a Xeon with AVX512-FP16 (an instruction set with a
# comma), and oneDNN 2's format (no "v1") on a Xeon with AMX.
ONEDNN_V3_LOG = """onednn_verbose,v1,info,oneDNN v3.7.3 (commit N/A)
onednn_verbose,v1,info,cpu,runtime:threadpool,nthr:2
onednn_verbose,v1,info,cpu,isa:Intel AVX-512 with float16, Intel DL Boost and bfloat16 support
onednn_verbose,v1,primitive,info,template:operation,engine,primitive,implementation,prop_kind
onednn_verbose,v1,primitive,exec,cpu,convolution,brgconv_strided:avx512_core,backward_data,src:f32
onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx512_core,backward_weights,src:f32
"""
ONEDNN_V2_LOG = """onednn_verbose,info,oneDNN v2.6.0 (commit N/A)
onednn_verbose,info,cpu,isa:Intel AVX-512 with Intel DL Boost and bfloat16 support and Intel AMX \
with bfloat16 and 8-bit integer support
onednn_verbose,exec,cpu,convolution,jit:avx512_core_amx_bf16,forward_training,src_bf16
"""


def test_onednn_verbose_log_is_read_in_both_formats():
    assert diagnostics.parse_onednn_verbose(ONEDNN_V3_LOG) == {
        "version": "v3.7.3",
        "isa": "Intel AVX-512 with float16, Intel DL Boost and bfloat16 support",
        "kernels": {"backward_data": "brgconv_strided:avx512_core",
                    "backward_weights": "jit:avx512_core"}}
    assert diagnostics.parse_onednn_verbose(ONEDNN_V2_LOG) == {
        "version": "v2.6.0", "isa": "Intel AVX-512 with Intel DL Boost and bfloat16 support "
        "and Intel AMX with bfloat16 and 8-bit integer support"}
    assert diagnostics.parse_onednn_verbose("no log\n") == {}


def _timings(bfloat16):
    return {"float32": {"forward": 1.0, "train_step": 3.0},
            "bfloat16": {"forward": bfloat16[0], "train_step": bfloat16[1]}}


@pytest.mark.parametrize("auto, bfloat16, faster", [
    ("mixed_bfloat16", (0.5, 1.5), True),
    ("mixed_bfloat16", (1.4, 4.0), False),
    ("float32", (1.4, 4.0), True),
    ("float32", (0.5, 1.5), False),
    ("float32", (0.95, 2.9), None),  # bfloat16 less than 15% faster: neither clearly
])
def test_precision_timing_says_whether_auto_picks_the_faster(auto, bfloat16, faster):
    timing = diagnostics.precision_timing(auto, gpus=[], measure=lambda: _timings(bfloat16))
    assert timing["auto"] == auto and timing["auto_is_faster"] is faster
    assert timing["summary"].startswith("bfloat16 measured ")
    assert f"auto's choice, {auto}, is " in timing["summary"]
    assert json.loads(json.dumps(timing)) == timing


def test_precision_timing_skips_gpus_and_reports_a_failure():
    def broken():
        raise RuntimeError("no bfloat16 kernel\nmore")

    assert "skipped" in diagnostics.precision_timing("mixed_bfloat16", gpus=[("A100", (8, 0))],
                                                     measure=broken)
    assert diagnostics.precision_timing("float32", gpus=[], measure=broken) == {
        "error": "RuntimeError: no bfloat16 kernel"}


def test_doctor_tool(tmp_path):
    out = tmp_path / "doctor.json"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("I3D_KERAS_TUNE", None)
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "doctor.py"), "--clip_lengths",
                          "7", "--tune", "--json", str(out)], capture_output=True, text=True,
                         timeout=600, env=env)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    lines = run.stdout.splitlines()
    # float32 and the precision auto picks here (one or two precisions): the
    # count the doctor announced.
    announced = re.search(r"Checking (\d+) cases against float64", run.stderr)
    assert announced, run.stderr[-3000:]
    cases = int(announced.group(1))
    assert lines[0].startswith("CPU ") and lines[-1].startswith(
        f"OK: all {cases} cases match float64")
    for noise in ("I0000", "E0000", "W0000", "WARNING: All log messages"):
        assert noise not in run.stdout + run.stderr
    data = json.loads(out.read_text())
    assert len(data["results"]) == cases and data["machine"]["cpu"]["cores"] >= 1
    auto = data["machine"]["paths"]["precision (auto)"].split()[0]
    dtypes = {r["case"]["dtype"] for r in data["results"]}
    assert dtypes == {"float32", {"mixed_bfloat16": "bfloat16",
                                  "mixed_float16": "float16"}.get(auto, "float32")}
    timing = data["machine"]["precision timing"]
    if data["machine"]["gpus"]:
        assert "skipped" in timing
    else:
        # Timed, said, and cached (--tune): auto now follows the timing.
        assert "auto's choice" in run.stdout and timing["auto"] == auto
        assert timing["bfloat16_speed"] > 0
        assert timing["cached"] == str(tmp_path / "cache" / "i3d_keras" / "precision.json")
        assert auto == ("mixed_bfloat16" if timing["bfloat16_speed"] >= 1.15 else "float32")
        assert "measured" in data["machine"]["paths"]["precision (auto)"]
    bad = subprocess.run([sys.executable, str(ROOT / "tools" / "doctor.py"), "--precisions",
                          "float8"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Received: ['float8']" in bad.stderr
