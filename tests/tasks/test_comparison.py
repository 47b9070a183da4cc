"""Tests of the architecture comparison (i3d_keras.tasks.comparison, tools/compare.py)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from i3d_keras.tasks import comparison
from i3d_keras.tasks.comparison import ComparisonRow, within_pair_accuracy

ROOT = Path(__file__).resolve().parents[2]


def test_within_pair_accuracy():
    labels = np.array([0, 1, 2, 3, 4])
    logits = np.array([
        [5.0, 1.0, 9.0, 0.0, 0.0],  # class 0 beats 1 (9 for class 2 is irrelevant): right
        [5.0, 1.0, 0.0, 0.0, 0.0],  # class 1 loses to 0: wrong
        [0.0, 0.0, 1.0, 1.0, 0.0],  # tie: wrong
        [0.0, 0.0, 0.0, 2.0, 0.0],  # right
        [0.0, 0.0, 0.0, 0.0, 1.0],  # class 4 is in no pair: ignored
    ])
    assert within_pair_accuracy(logits, labels, [(0, 1), (2, 3)]) == (0.5, 4)
    assert within_pair_accuracy(logits, labels, []) == (None, 0)
    with pytest.raises(ValueError, match="Received: logits of shape"):
        within_pair_accuracy(logits[:2], labels, [(0, 1)])
    assert comparison.motion_class_pairs() == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]


def test_report_files(tmp_path):
    rows = [
        ComparisonRow("convnet_pooling", "rgb", 5_617_434, "16 rgb", 489_000_000, 0.5, 0.49,
                      100, 12.0),
        ComparisonRow("i3d", "rgb", 12_304_794, "16 rgb", 567_000_000, 0.9, 0.95, 100, 30.0,
                      "12M"),
    ]
    paths = comparison.write_report(rows, tmp_path, {"num_classes": 10, "epochs": 1})
    text = Path(paths["markdown"]).read_text()
    assert "| convnet_pooling | rgb | 5,617,434 | 16 rgb | 0.489 | 50.0% | 49.0% |" in text
    assert "| i3d | rgb | 12,304,794 | 16 rgb | 0.567 | 90.0% | 95.0% | 30s | 12M |" in text
    assert "40.2%-59.8%" in text  # a coin's 95% interval on 100 pair clips
    assert "Above chance within pairs: i3d." in text
    assert "At chance within pairs: convnet_pooling." in text
    png = Path(paths["png"]).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    assert json.loads(Path(paths["json"]).read_text())["rows"][1]["name"] == "i3d"


def test_tiny_run_two_architectures(tmp_path):
    logs = []
    rows = comparison.run_comparison(
        tmp_path, ["convnet_pooling", "two_stream_2d"], num_train=16, num_val=10, frames=10,
        image_size=32, epochs=1, batch_size=8, run_eagerly=True, log=logs.append,
    )
    assert [r.name for r in rows] == ["convnet_pooling", "two_stream_2d"]
    assert rows[0].input_frames == "10 rgb"
    assert rows[1].input_frames == "1 rgb, 10 flow"
    assert rows[1].inputs == "rgb+flow"
    for row in rows:
        assert 0.0 <= row.accuracy <= 1.0 and 0.0 <= row.within_pair_accuracy <= 1.0
        assert row.pair_clips == 10 and row.params > 0 and row.macs > 0
    assert any("ETA" in line for line in logs)
    assert (tmp_path / "comparison.png").stat().st_size > 1000
    text = (tmp_path / "comparison.md").read_text()
    assert text.count("\n| ") == 3  # header + 2 rows


def _dense_classifier(host_op):
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    class HostIdentity(keras.layers.Layer):
        """Identity through a NumPy call: an op XLA has no kernel for."""

        def call(self, x):
            y = tf.numpy_function(lambda a: a, [x], tf.float32, stateful=False)
            return tf.ensure_shape(y, x.shape)

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,), name="features")
    x = HostIdentity(name="host")(inputs) if host_op else inputs
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))


def test_fit_falls_back_without_xla_when_xla_cannot_compile():
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415

    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensor_slices(
        (rng.normal(size=(16, 4)).astype("float32"), np.arange(16) % 3)).batch(8)

    def sgd():
        return keras.optimizers.SGD(0.1)

    logs = []
    model = _dense_classifier(host_op=True)
    initial = model.get_weights()
    assert comparison.fit_with_xla_fallback(
        model, data, epochs=2, xla=True, optimizer=sgd, log=logs.append) is False
    assert len(logs) == 1 and "XLA failed" in logs[0] and "training without XLA" in logs[0]
    # Retrained from the initial weights: the same as training without XLA at once.
    reference = _dense_classifier(host_op=True)
    reference.set_weights(initial)
    assert comparison.fit_with_xla_fallback(
        reference, data, epochs=2, xla=False, optimizer=sgd, log=logs.append) is False
    for got, expected in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert not np.allclose(model.get_weights()[0], initial[0])

    # A graph XLA compiles keeps XLA; an error without XLA is the user's to see.
    assert comparison.fit_with_xla_fallback(
        _dense_classifier(host_op=False), data, epochs=1, xla=True, optimizer=sgd,
        log=logs.append) is True
    assert len(logs) == 1
    bad_labels = tf.data.Dataset.from_tensor_slices(
        (np.zeros((8, 4), "float32"), np.full(8, 7))).batch(8)
    with pytest.raises(Exception, match="[Rr]eceived a label value of 7|out of"):
        comparison.fit_with_xla_fallback(
            _dense_classifier(host_op=False), bad_labels, epochs=1, xla=False,
            optimizer=sgd, log=logs.append)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="Received: \\['resnet'\\]"):
        comparison.run_comparison(tmp_path, ["resnet"])
    with pytest.raises(ValueError, match="Received: epochs=0"):
        comparison.run_comparison(tmp_path, ["i3d"], epochs=0)


def test_cli_costs_only(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "compare.py"), f"--output_dir={tmp_path}",
         "--arch=convnet_lstm,c3d", "--frames=8", "--image_size=32", "--notrain"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| c3d | rgb |" in result.stdout
    assert (tmp_path / "comparison.md").exists() and (tmp_path / "comparison.png").exists()
    bad = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "compare.py"), f"--output_dir={tmp_path}",
         "--arch=resnet", "--notrain"],
        capture_output=True, text=True, timeout=600,
    )
    assert bad.returncode != 0 and "resnet" in bad.stderr
