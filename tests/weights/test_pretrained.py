"""Tests of `InceptionI3D(weights=...)` (i3d_keras.weights.pretrained), without downloads.

`keras.utils.get_file` is replaced by a fake that serves synthetic files
(the real names and shapes of DeepMind's checkpoints, random values), so the
download code runs with its real URLs and nothing leaves the machine.
"""

from pathlib import Path

import numpy as np
import pytest

import i3d_keras
import keras
import tensorflow as tf

from i3d_keras.models import inception_v1
from i3d_keras.weights import deepmind, pretrained
from _checkpoints import write_checkpoint

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CHECKPOINTS = SHARED / "deepmind_i3d" / "checkpoints"
SIZE = 32


def synthetic_deepmind(root, name, seed=0):
    index = CHECKPOINTS / name / "model.ckpt.index"
    if not index.exists():
        pytest.skip(f"shared data absent: {index} (DeepMind's index files in ../shared/data)")
    rng = np.random.default_rng(seed)
    values = {
        var: rng.standard_normal(shape).astype("float32")
        for var, shape in tf.train.list_variables(str(index)[: -len(".index")])
    }
    prefix = Path(root) / "served" / name / "model.ckpt"
    write_checkpoint(prefix, values)
    return prefix, values


@pytest.fixture
def fake_downloads(monkeypatch, tmp_path):
    """Serves synthetic DeepMind checkpoints; records the requested URLs."""
    requests = []

    def fake_get_file(fname, origin, file_hash=None, cache_subdir="datasets", cache_dir=None, **kwargs):
        requests.append(origin)
        name = cache_subdir.split("/")[-1]
        served = tmp_path / "served" / name
        if not served.exists():
            synthetic_deepmind(tmp_path, name)
        assert fname in ("model.ckpt.index", "model.ckpt.data-00000-of-00001")
        return str(served / fname)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    return requests


def test_kinetics_weights_download_and_convert(fake_downloads, tmp_path):
    model = i3d_keras.InceptionI3D(400, "flow", image_size=SIZE, weights="kinetics")
    assert fake_downloads == [
        "https://github.com/deepmind/kinetics-i3d/raw/master/data/checkpoints/flow_imagenet/model.ckpt.index",
        "https://github.com/deepmind/kinetics-i3d/raw/master/data/checkpoints/flow_imagenet/model.ckpt.data-00000-of-00001",
    ]
    reader = tf.train.load_checkpoint(str(tmp_path / "served" / "flow_imagenet" / "model.ckpt"))
    np.testing.assert_array_equal(
        model.get_layer("Logits_Conv3d_0c_1x1_conv_3d").kernel.numpy(),
        reader.get_tensor("Flow/inception_i3d/Logits/Conv3d_0c_1x1/conv_3d/w"),
    )


def test_kinetics_scratch_and_600(fake_downloads):
    i3d_keras.InceptionI3D(400, "rgb", image_size=SIZE, weights="kinetics_scratch")
    model = i3d_keras.InceptionI3D(600, "rgb", image_size=SIZE, weights="kinetics600")
    assert fake_downloads[0].endswith("rgb_scratch/model.ckpt.index")
    assert fake_downloads[2].endswith("rgb_scratch_kin600/model.ckpt.index")
    assert model.output.shape == (None, 600)
    with pytest.raises(ValueError, match="RGB stream only. Received: stream='flow'"):
        i3d_keras.InceptionI3D(600, "flow", image_size=SIZE, weights="kinetics600")
    with pytest.raises(ValueError, match="not for the flow stream"):
        i3d_keras.InceptionI3D(400, "flow", image_size=SIZE, weights="rgb_imagenet")


def test_other_class_count_reinitialises_logits_with_a_warning(fake_downloads, tmp_path):
    with pytest.warns(UserWarning, match="400 classes, the model 51"):
        model = i3d_keras.InceptionI3D(51, "rgb", image_size=SIZE, weights="kinetics")
    reader = tf.train.load_checkpoint(str(tmp_path / "served" / "rgb_imagenet" / "model.ckpt"))
    np.testing.assert_array_equal(
        model.get_layer("Mixed_5c_Branch_0_Conv3d_0a_1x1_conv_3d").kernel.numpy(),
        reader.get_tensor("RGB/inception_i3d/Mixed_5c/Branch_0/Conv3d_0a_1x1/conv_3d/w"),
    )
    assert model.output.shape == (None, 51)


def synthetic_slim(prefix):
    rng = np.random.default_rng(5)
    model = inception_v1.InceptionV1(image_size=None)
    values = {
        name: rng.normal(0, 0.1, layer.weights[i].shape).astype("float32")
        for name, (layer, i) in inception_v1.slim_variable_names(model).items()
    }
    values = {k: (np.abs(v) + 0.5 if k.endswith("moving_variance") else v) for k, v in values.items()}
    write_checkpoint(prefix, values)
    return values


def test_imagenet_weights_inflate_slim_inception_v1(monkeypatch, tmp_path):
    prefix = tmp_path / "slim" / "inception_v1.ckpt"
    values = synthetic_slim(prefix)
    monkeypatch.setattr(inception_v1, "download_slim_checkpoint", lambda cache_dir=None: str(prefix))
    model = i3d_keras.InceptionI3D(400, "flow", image_size=SIZE, weights="imagenet")
    kernel = model.get_layer("Conv3d_1a_7x7_conv_3d").kernel.numpy()
    rgb = values["InceptionV1/Conv2d_1a_7x7/weights"]
    np.testing.assert_allclose(kernel.sum(axis=(0, 3)), rgb.sum(axis=2), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        model.get_layer("Mixed_4b_Branch_1_Conv3d_0b_3x3_conv_3d").kernel.numpy()[1],
        values["InceptionV1/Mixed_4b/Branch_1/Conv2d_0b_3x3/weights"] / 3, rtol=1e-6,
    )
    np.testing.assert_array_equal(
        model.get_layer("Mixed_5c_Branch_0_Conv3d_0a_1x1_batch_norm").moving_mean.numpy(),
        values["InceptionV1/Mixed_5c/Branch_0/Conv2d_0a_1x1/BatchNorm/moving_mean"],
    )
    # A local slim checkpoint path works too.
    local = i3d_keras.InceptionI3D(400, "rgb", image_size=SIZE, weights=str(prefix))
    assert local.get_layer("Conv3d_1a_7x7_conv_3d").kernel.shape == (7, 7, 7, 3, 64)


def test_local_paths(tmp_path):
    prefix, values = synthetic_deepmind(tmp_path, "rgb_imagenet")
    # A model up to Mixed_3b takes the checkpoint variables it has layers for.
    model = i3d_keras.InceptionI3D(image_size=SIZE, final_endpoint="Mixed_3b", weights=str(prefix))
    np.testing.assert_array_equal(
        model.get_layer("Conv3d_2c_3x3_batch_norm").beta.numpy(),
        values["RGB/inception_i3d/Conv3d_2c_3x3/batch_norm/beta"],
    )
    h5 = tmp_path / "i3d.weights.h5"
    model.save_weights(h5)
    keras_file = tmp_path / "i3d.keras"
    model.save(keras_file)
    for path in (h5, keras_file):
        copy = i3d_keras.InceptionI3D(image_size=SIZE, final_endpoint="Mixed_3b", weights=str(path))
        for layer in model.layers:
            for a, b in zip(layer.weights, copy.get_layer(layer.name).weights):
                np.testing.assert_array_equal(a.numpy(), b.numpy())
    bigger = dict(image_size=SIZE, final_endpoint="Mixed_3c")
    with pytest.raises(ValueError, match="Cannot load .*i3d.weights.h5"):
        i3d_keras.InceptionI3D(**bigger, weights=str(h5))
    with pytest.raises(ValueError, match=r"i3d.keras.*layers missing from the file: .*Mixed_3c_Branch_0_Conv3d_0a_1x1_conv_3d"):
        i3d_keras.InceptionI3D(**bigger, weights=str(keras_file))


def test_bad_weights_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="Received: weights="):
        i3d_keras.InceptionI3D(image_size=SIZE, weights=str(tmp_path / "missing.weights.h5"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        i3d_keras.InceptionI3D(image_size=SIZE, weights=str(tmp_path / "missing" / "model.ckpt"))
    with pytest.raises(ValueError, match="Received: weights='kinetic'"):
        i3d_keras.InceptionI3D(image_size=SIZE, weights="kinetic")
    with pytest.raises(ValueError, match="Received: weights=3"):
        pretrained.load_pretrained(i3d_keras.InceptionI3D(image_size=SIZE), 3)
    assert deepmind.CHECKPOINT_NAMES[-1] == "rgb_scratch_kin600"


def test_a_checkpoint_path_without_its_data_is_a_missing_file(tmp_path):
    prefix, _ = synthetic_deepmind(tmp_path, "rgb_imagenet")
    (data,) = prefix.parent.glob("model.ckpt.data-*")
    data.unlink()
    with pytest.raises(FileNotFoundError, match=data.name):
        i3d_keras.InceptionI3D(400, "rgb", image_size=SIZE, weights=str(prefix))


def test_a_failed_download_says_how_to_go_on_offline_in_any_tool(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")  # noqa: TRY002

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(OSError, match="could not download DeepMind's rgb_imagenet") as caught:
        i3d_keras.InceptionI3D(400, "rgb", image_size=SIZE, weights="kinetics")
    # train takes the weights as --init, predict as --model: the message names both.
    assert "--init" in str(caught.value) and "--model" in str(caught.value)
