"""Tests of the DeepMind Kinetics checkpoint converter.

The synthetic checkpoints have exactly the names and shapes listed by the
real index files of DeepMind's five checkpoints (../shared/data), filled with
random values and written as TF1 name-based checkpoints (SaveV2), as
DeepMind's were.
"""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import i3d_keras
import keras
import tensorflow as tf

from i3d_keras.weights import deepmind
from _checkpoints import write_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
CHECKPOINTS = SHARED / "deepmind_i3d" / "checkpoints"
TOOL = ROOT / "tools" / "convert_checkpoint.py"
EXPECTED = {
    "rgb_imagenet": ("rgb", 400, 230, "RGB/inception_i3d/"),
    "rgb_scratch": ("rgb", 400, 230, "RGB/inception_i3d/"),
    "flow_imagenet": ("flow", 400, 230, "Flow/inception_i3d/"),
    "flow_scratch": ("flow", 400, 230, "Flow/inception_i3d/"),
    "rgb_scratch_kin600": ("rgb", 600, 346, ""),
}


def real_variables(name):
    index = CHECKPOINTS / name / "model.ckpt.index"
    if not index.exists():
        pytest.skip(
            f"shared data absent: {index} (DeepMind's index files live in ../shared/data "
            "beside the project checkout)"
        )
    return tf.train.list_variables(str(index)[: -len(".index")])


_SYNTHETIC = {}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """name -> (prefix, values): random values with the real names and shapes."""
    root = tmp_path_factory.mktemp("deepmind")

    def make(name):
        if name not in _SYNTHETIC:
            rng = np.random.default_rng(abs(hash(name)) % 1000)
            values = {
                var: rng.standard_normal(shape).astype("float32")
                for var, shape in real_variables(name)
            }
            for var in values:
                if var.endswith("moving_variance"):
                    values[var] = np.abs(values[var]) + 0.5
            prefix = root / name / "model.ckpt"
            write_checkpoint(prefix, values)
            _SYNTHETIC[name] = (prefix, values)
        return _SYNTHETIC[name]

    return make


@pytest.mark.parametrize("name", list(EXPECTED))
def test_real_index_counts(name):
    variables = dict(real_variables(name))
    stream, classes, count, prefix = EXPECTED[name]
    assert len(variables) == count
    info = deepmind.describe_checkpoint(variables)
    assert info == {"prefix": prefix, "stream": stream, "num_classes": classes, "model_variables": 230}
    assert variables[prefix + "Mixed_5b/Branch_2/Conv3d_0a_3x3/conv_3d/w"] == [3, 3, 3, 32, 128]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_convert_synthetic_checkpoint(name, synthetic):
    prefix, values = synthetic(name)
    stream, classes, count, scope = EXPECTED[name]
    start = time.perf_counter()
    model = deepmind.from_deepmind_checkpoint(prefix, image_size=None)
    print(f"{name}: converted in {time.perf_counter() - start:.2f} s")
    assert model.name == f"inception_i3d_{stream}"
    assert model.output.shape == (None, classes)
    assert model.inputs[0].shape[-1] == (3 if stream == "rgb" else 2)
    mapping = deepmind.deepmind_variable_names(model, scope)
    model_weights = [w for layer in model.layers for w in layer.weights]
    assert len(mapping) == len(model_weights) == 230
    non_slots = [v for v in values if not v.endswith("/Momentum")]
    assert sorted(mapping) == sorted(non_slots)
    assert len(values) - len(non_slots) == count - 230
    for var, (layer, index) in mapping.items():
        weight = layer.weights[index].numpy()
        np.testing.assert_array_equal(weight, values[var].reshape(weight.shape), err_msg=var)
    # Spot checks that a value landed in the layer of that name.
    kernel = model.get_layer("Mixed_4e_Branch_1_Conv3d_0b_3x3_conv_3d").kernel.numpy()
    np.testing.assert_array_equal(kernel, values[scope + "Mixed_4e/Branch_1/Conv3d_0b_3x3/conv_3d/w"])
    mean = model.get_layer("Conv3d_2c_3x3_batch_norm").moving_mean.numpy()
    np.testing.assert_array_equal(mean, values[scope + "Conv3d_2c_3x3/batch_norm/moving_mean"].ravel())


def test_missing_and_unused_variables_are_listed(synthetic, tmp_path):
    _, values = synthetic("rgb_imagenet")
    broken = dict(values)
    del broken["RGB/inception_i3d/Mixed_4d/Branch_0/Conv3d_0a_1x1/batch_norm/beta"]
    broken["RGB/inception_i3d/Mixed_6a/Branch_0/Conv3d_0a_1x1/conv_3d/w"] = np.zeros([1], "float32")
    write_checkpoint(tmp_path / "model.ckpt", broken)
    with pytest.raises(ValueError) as error:
        deepmind.from_deepmind_checkpoint(tmp_path / "model.ckpt")
    message = str(error.value)
    assert "missing from the checkpoint: ['RGB/inception_i3d/Mixed_4d/Branch_0/Conv3d_0a_1x1/batch_norm/beta']" in message
    assert "left unused: ['RGB/inception_i3d/Mixed_6a/Branch_0/Conv3d_0a_1x1/conv_3d/w']" in message


def test_stream_and_class_mismatches(synthetic):
    flow_prefix, _ = synthetic("flow_imagenet")
    with pytest.raises(ValueError, match="flow stream .*Received: a model with 3 input channels"):
        deepmind.load_deepmind_checkpoint(i3d_keras.InceptionI3D(400, "rgb", image_size=None),
                                          flow_prefix)
    prefix, values = synthetic("rgb_scratch_kin600")
    model = i3d_keras.InceptionI3D(10, "rgb", image_size=None)
    with pytest.raises(ValueError, match="600 classes. Received: a model with num_classes=10"):
        deepmind.load_deepmind_checkpoint(model, prefix)
    before = model.get_layer("Logits_Conv3d_0c_1x1_conv_3d").kernel.numpy()
    with pytest.warns(UserWarning, match="600 classes, the model 10"):
        report = deepmind.load_deepmind_checkpoint(model, prefix, on_logits_mismatch="reinitialize")
    assert report["logits_reinitialized"] and report["assigned"] == 228 and report["ignored_slots"] == 116
    np.testing.assert_array_equal(model.get_layer("Logits_Conv3d_0c_1x1_conv_3d").kernel.numpy(), before)
    np.testing.assert_array_equal(
        model.get_layer("Conv3d_1a_7x7_conv_3d").kernel.numpy(), values["Conv3d_1a_7x7/conv_3d/w"]
    )


def test_truncated_model_takes_what_it_has(synthetic):
    prefix, values = synthetic("rgb_imagenet")
    model = deepmind.from_deepmind_checkpoint(prefix, final_endpoint="Mixed_4b", image_size=None)
    np.testing.assert_array_equal(
        model.get_layer("Mixed_4b_Branch_3_Conv3d_0b_1x1_conv_3d").kernel.numpy(),
        values["RGB/inception_i3d/Mixed_4b/Branch_3/Conv3d_0b_1x1/conv_3d/w"],
    )


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        deepmind.from_deepmind_checkpoint(tmp_path / "nowhere" / "model.ckpt")
    with pytest.raises(FileNotFoundError, match="no checkpoint found"):
        deepmind.from_deepmind_checkpoint(tmp_path)
    (tmp_path / "model.ckpt.index").write_text("not a checkpoint")
    with pytest.raises(FileNotFoundError, match="readable TensorFlow checkpoint"):
        deepmind.from_deepmind_checkpoint(tmp_path / "model.ckpt")
    write_checkpoint(tmp_path / "other" / "model.ckpt", {"InceptionV1/Conv2d_1a_7x7/weights": np.zeros([7, 7, 3, 64], "float32")})
    with pytest.raises(ValueError, match="Expected a DeepMind I3D checkpoint"):
        deepmind.from_deepmind_checkpoint(tmp_path / "other")


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("convert_checkpoint_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_writes_a_loadable_keras_file(tool, synthetic, tmp_path):
    prefix, values = synthetic("rgb_scratch_kin600")
    output = tmp_path / "out" / "kin600.keras"
    from absl import flags  # noqa: PLC0415 (the tool defines its flags on absl's FLAGS)

    flags.FLAGS(["convert_checkpoint", f"--checkpoint={prefix}", f"--output={output}",
                 "--frames=16"])
    try:
        tool.main(["convert_checkpoint"])
    finally:
        flags.FLAGS.unparse_flags()
    loaded = keras.models.load_model(output, safe_mode=True)
    assert loaded.inputs[0].shape == (None, 16, 224, 224, 3)
    assert loaded.output.shape == (None, 600)
    np.testing.assert_array_equal(
        loaded.get_layer("Logits_Conv3d_0c_1x1_conv_3d").bias.numpy(), values["Logits/Conv3d_0c_1x1/conv_3d/b"]
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--checkpoint=/nonexistent/model.ckpt", "--output={tmp}/x.keras"], "does not exist"),
        (["--checkpoint=/nonexistent/model.ckpt", "--output={tmp}/x.h5"], "must end in '.keras'"),
        (["--output={tmp}/x.keras"], "both --checkpoint and --output are required"),
    ],
)
def test_cli_user_mistakes_exit_cleanly(args, message, tmp_path):
    args = [a.format(tmp=tmp_path) for a in args]
    result = subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2  # a usage error, in every tool (README, "Tools")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------
# DeepMind's published outputs on the cricket clip (needs the real files).

REAL_DATA_ENV = "I3D_KINETICS_I3D_DATA"


def _published(kind):
    lines = (SHARED / "deepmind_i3d" / "out" / f"imagenet_{kind}.txt").read_text().splitlines()
    norm = float(lines[0].split(":")[1])
    top = []
    for line in lines[1:]:
        parts = line.split(maxsplit=2)
        if len(parts) == 3:
            try:
                top.append((float(parts[0]), float(parts[1]), parts[2]))
            except ValueError:
                continue
    return norm, top


def test_published_cricket_outputs():
    """Set I3D_KINETICS_I3D_DATA to kinetics-i3d's `data/` folder (checkpoints/
    rgb_imagenet, flow_imagenet and v_CricketShot_g04_c01_{rgb,flow}.npy)."""
    data = os.environ.get(REAL_DATA_ENV)
    if not data:
        pytest.skip(
            f"{REAL_DATA_ENV} is not set: point it at kinetics-i3d's data/ folder with the real "
            "checkpoints and v_CricketShot_g04_c01_{rgb,flow}.npy to compare with DeepMind's outputs"
        )
    if not (SHARED / "deepmind_i3d" / "out").exists():
        pytest.skip(f"shared data absent: {SHARED / 'deepmind_i3d' / 'out'}")
    data = Path(data)
    labels = (SHARED / "deepmind_i3d" / "label_map.txt").read_text().splitlines()
    logits = {}
    for stream in ("rgb", "flow"):
        model = deepmind.from_deepmind_checkpoint(
            data / "checkpoints" / f"{stream}_imagenet" / "model.ckpt")
        clip = np.load(data / f"v_CricketShot_g04_c01_{stream}.npy").astype("float32")
        logits[stream] = np.asarray(model(clip, training=False))[0]
    logits["joint"] = logits["rgb"] + logits["flow"]
    for kind, values in logits.items():
        norm, top = _published(kind)
        np.testing.assert_allclose(np.linalg.norm(values), norm, rtol=1e-3, err_msg=kind)
        order = np.argsort(-values)[: len(top)]
        assert [labels[i] for i in order] == [name for _, _, name in top], kind
        np.testing.assert_allclose(values[order], [logit for _, logit, _ in top], rtol=1e-3, atol=1e-3)


def test_an_index_without_its_data_shard_is_named_before_any_read(tmp_path):
    # A checkpoint copied without its .data-* file opens in TensorFlow (the
    # index lists the variables) and only the first read of a value failed.
    prefix = tmp_path / "rgb" / "model.ckpt"
    write_checkpoint(prefix, {"RGB/inception_i3d/Conv3d_1a_7x7/conv_3d/w":
                              np.zeros([7, 7, 7, 3, 64], "float32")})
    (data,) = prefix.parent.glob("model.ckpt.data-*")
    assert deepmind._index_num_shards(f"{prefix}.index") == 1  # read from the index itself
    assert deepmind.missing_data_files(prefix) == []
    data.unlink()
    assert deepmind.missing_data_files(prefix) == [str(data)]
    for path in (prefix, prefix.parent, str(prefix) + ".index"):
        with pytest.raises(FileNotFoundError, match=data.name) as caught:
            deepmind.from_deepmind_checkpoint(path)
        assert "index" in str(caught.value) and "Received" in str(caught.value)
    model = i3d_keras.InceptionI3D(400, "rgb", frames=8, image_size=32)
    with pytest.raises(FileNotFoundError, match=data.name):
        deepmind.load_deepmind_checkpoint(model, prefix)


def test_shared_index_files_alone_are_refused_as_checkpoints(tmp_path):
    real_variables("rgb_imagenet")  # skips without the shared data
    prefix = CHECKPOINTS / "rgb_imagenet" / "model.ckpt"
    if Path(str(prefix) + ".data-00000-of-00001").exists():
        pytest.skip("the shared folder holds the data shard too")
    with pytest.raises(FileNotFoundError, match=r"model\.ckpt\.data-00000-of-00001"):
        deepmind.open_checkpoint(prefix)
    result = subprocess.run(
        [sys.executable, str(TOOL), f"--checkpoint={prefix}", f"--output={tmp_path}/x.keras"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "model.ckpt.data-00000-of-00001" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x.keras").exists()


def test_a_sharded_checkpoint_names_each_missing_shard(tmp_path):
    import tensorflow as tf

    variables = {f"v{i}": tf.Variable(tf.zeros([1000])) for i in range(4)}
    options = tf.train.CheckpointOptions(experimental_sharding_callback=(
        tf.train.experimental.MaxShardSizePolicy(max_shard_size=4000)))
    prefix = tf.train.Checkpoint(**variables).write(str(tmp_path / "ckpt"), options=options)
    assert deepmind._index_num_shards(f"{prefix}.index") == 4
    assert deepmind.missing_data_files(prefix) == []
    gone = tmp_path / "ckpt.data-00002-of-00004"
    gone.unlink()
    assert deepmind.missing_data_files(prefix) == [str(gone)]
    with pytest.raises(FileNotFoundError, match="'ckpt.data-00002-of-00004'"):
        deepmind.check_data_files(prefix)
