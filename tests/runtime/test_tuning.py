"""Tests for i3d_keras.runtime.tuning: float32 against bfloat16 timed here, and the cache.

The decisions made from timings are tested with fake timings in
tests/runtime/test_precision.py; here the measurement itself (on a tiny piece,
any CPU: where bfloat16 is emulated it is slow, not wrong) and the cache file.
"""

import functools
import json
import os
import random
import time

import keras
import numpy as np
import pytest

from i3d_keras.runtime import hardware, tuning

CPU = hardware.parse_cpuinfo("vendor_id : AuthenticAMD\ncpu family : 25\n"
                             "model name : AMD EPYC 9R14\nflags : avx2 avx512f avx512_bf16\n",
                             cores=2)
TIMINGS = {"float32": {"forward": 1.0, "train_step": 3.0},
           "bfloat16": {"forward": 0.5, "train_step": 2.5}}


def test_the_measurement_times_both_precisions_and_leaves_no_trace():
    python_state, numpy_state = random.getstate(), np.random.get_state()
    policy = keras.config.dtype_policy().name
    result = tuning.measure_precisions(frames=2, image_size=4, repeats=1)
    assert tuning.valid_timings(result)
    assert set(result) == {"float32", "bfloat16"}
    # A seeded run builds the same weights after a measurement as without it.
    assert random.getstate() == python_state
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
    assert keras.config.dtype_policy().name == policy
    with pytest.raises(ValueError, match="Received: repeats=0"):
        tuning.measure_precisions(repeats=0)


def test_clearly_slower_bfloat16_ends_the_measurement_early(monkeypatch):
    calls = []

    def timed_functions(model, tf):  # emulated bfloat16: 10x float32's time
        pause = 0.02 if model.name.endswith("bfloat16") else 0.002

        def run(x, part):
            calls.append((model.name, part))
            time.sleep(pause)

        return {part: functools.partial(run, part=part) for part in tuning.PARTS}

    monkeypatch.setattr(tuning, "_timed_functions", timed_functions)
    result = tuning.measure_precisions(frames=1, image_size=4, repeats=5)
    assert tuning.bfloat16_speed(result) < 1 / tuning.CLEARLY_SLOWER
    assert calls.count(("tuning_bfloat16", "train_step")) == 2  # warm-up and one round


def test_speed_and_its_description():
    assert tuning.bfloat16_speed(TIMINGS) == pytest.approx(1.2)  # the smaller gain
    assert tuning.prefers_bfloat16(TIMINGS)  # 1.2 >= 1.15
    assert tuning.describe(TIMINGS) == ("bfloat16 measured 1.20x the speed of float32 on "
                                        "this CPU: forward 2.00x, training step 1.20x")
    slower = {"float32": TIMINGS["float32"], "bfloat16": {"forward": 1.1, "train_step": 3.0}}
    assert not tuning.prefers_bfloat16(slower)


def test_cache_path_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert tuning.cache_path() == str(tmp_path / "i3d_keras" / "precision.json")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tuning.cache_path() == str(tmp_path / "home" / ".cache" / "i3d_keras" /
                                      "precision.json")
    assert tuning.cache_path(tmp_path) == str(tmp_path / "precision.json")


def test_the_cache_is_written_whole_and_keeps_other_machines(tmp_path):
    folder = tmp_path / "new" / "folder"
    assert tuning.read_measurement(CPU, folder) is None
    assert tuning.write_measurement(CPU, TIMINGS, folder) == str(folder / "precision.json")
    assert tuning.read_measurement(CPU, folder) == TIMINGS
    other = hardware.CpuInfo("Intel(R) Xeon(R)", "GenuineIntel", frozenset({"avx512_bf16"}), 2, 6)
    tuning.write_measurement(other, TIMINGS, folder)
    assert tuning.read_measurement(CPU, folder) == TIMINGS
    assert sorted(os.listdir(folder)) == ["precision.json"]  # no temporary file left
    data = json.loads((folder / "precision.json").read_text())
    assert data["format"] == 1 and len(data["machines"]) == 2
    entry = next(e for e in data["machines"].values() if e["machine"]["cpu"] == "AMD EPYC 9R14")
    assert entry["machine"] == tuning.machine_key(CPU) and entry["measured"]
    assert set(entry["machine"]) == {"cpu", "vendor", "family", "flags", "cores", "tensorflow",
                                     "onednn", "piece"}
    with pytest.raises(ValueError, match="Received: timings="):
        tuning.write_measurement(CPU, {"float32": {}}, folder)


def test_a_cache_folder_that_cannot_be_written_is_no_error(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder would be")
    assert tuning.write_measurement(CPU, TIMINGS, blocked / "i3d_keras") is None
    assert tuning.read_measurement(CPU, blocked / "i3d_keras") is None


def test_the_machine_key_names_what_a_timing_depends_on():
    key = tuning.machine_key(CPU)
    assert (key["cpu"], key["vendor"], key["family"], key["cores"]) == (
        "AMD EPYC 9R14", "AuthenticAMD", 25, 2)
    assert key["onednn"] == ("on" if hardware.onednn_enabled() else "off")
    fewer_flags = hardware.CpuInfo(CPU.model, CPU.vendor, frozenset({"avx2"}), 2, 25)
    assert tuning.machine_key(fewer_flags)["flags"] != key["flags"]


@pytest.mark.parametrize("value, expected", [
    (None, None), ("", None), ("auto", None), ("1", True), ("yes", True), ("0", False),
    ("off", False)])
def test_tune_setting(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(tuning.TUNE_ENV, raising=False)
    else:
        monkeypatch.setenv(tuning.TUNE_ENV, value)
    assert tuning.tune_setting() is expected


def test_a_wrong_tune_setting_is_refused(monkeypatch):
    monkeypatch.setenv(tuning.TUNE_ENV, "2")
    with pytest.raises(ValueError, match=r"must be 1 \(measure\), 0 \(never measure\) or auto. "
                                         r"Received: I3D_KERAS_TUNE='2'"):
        tuning.tune_setting()
