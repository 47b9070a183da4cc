"""Tests of i3d_keras.tasks.evaluation: metrics, crops, protocols, two-stream fusion, bad input."""

import json

import numpy as np
import pytest
import tensorflow as tf

import i3d_keras
from i3d_keras.data import input_pipeline, motion_dataset, records
from i3d_keras.tasks import evaluation, inference

CLASSES = motion_dataset.NUM_CLASSES
FRAMES, SIZE = 8, 32


# ----------------------------------------------------------------------------
# Metrics against hand computations
# ----------------------------------------------------------------------------

def test_metrics_hand_computed():
    # 6 classes, 5 videos. Argmax: [0, 1, 1, 2, 0]; labels [0, 0, 1, 2, 2].
    logits = np.array([
        [5, 1, 0, 0, 0, 0],   # label 0, rank of 0: 1
        [3, 4, 0, 0, 0, 2],   # label 0, rank 2
        [0, 9, 1, 0, 0, 0],   # label 1, rank 1
        [0, 0, 7, 1, 0, 0],   # label 2, rank 1
        [9, 8, 0, 7, 6, 5],   # label 2, rank 6 (last)
    ], np.float32)
    labels = np.array([0, 0, 1, 2, 2])
    m = evaluation.compute_metrics(logits, labels)
    assert m["num_videos"] == 5
    assert m["top1"] == pytest.approx(3 / 5)
    assert m["top5"] == pytest.approx(4 / 5)  # only video 5 has its label outside the top 5
    assert evaluation.top_k_accuracy(logits, labels, 2) == pytest.approx(4 / 5)
    # Per-class recall: class 0: 1/2, class 1: 1/1, class 2: 1/2; classes 3-5 have no videos.
    accuracies = [c["accuracy"] for c in m["per_class"]]
    assert accuracies[:3] == pytest.approx([0.5, 1.0, 0.5])
    assert accuracies[3:] == [None, None, None]
    assert m["mean_class_accuracy"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    expected = np.zeros((6, 6), int)
    for t, p in [(0, 0), (0, 1), (1, 1), (2, 2), (2, 0)]:
        expected[t, p] += 1
    np.testing.assert_array_equal(m["confusion_matrix"], expected)
    assert {(c["true"], c["predicted"]) for c in m["most_confused"]} == {("0", "1"), ("2", "0")}
    # Probabilities rank the same as logits: same metrics.
    probs = tf.nn.softmax(logits).numpy()
    assert evaluation.compute_metrics(probs, labels)["top1"] == m["top1"]


def test_metrics_bad_input():
    with pytest.raises(evaluation.EvaluationError, match=r"labels in \[0, 3\).*label 3"):
        evaluation.compute_metrics(np.zeros((2, 3)), [0, 3])
    with pytest.raises(evaluation.EvaluationError, match="Received: scores"):
        evaluation.compute_metrics(np.zeros((2, 3)), [0, 1, 2])


def test_crop_views_three_crops_along_long_side():
    h, w = 4, 8
    pixels = np.arange(h * w, dtype=np.float32).reshape(1, h, w, 1)
    clip = np.repeat(pixels, 2, axis=0)  # [T=2, H, W, 1]
    views = evaluation.crop_views(clip, (2, 4), num_crops=3).numpy()
    assert views.shape == (3, 2, 2, 4, 1)
    top = (h - 2) // 2
    for view, left in zip(views, (0, 2, 4)):  # left, centre, right
        np.testing.assert_array_equal(view[0, ..., 0], pixels[0, top:top + 2, left:left + 4, 0])
    portrait = np.transpose(clip, (0, 2, 1, 3))  # [2, 8, 4, 1]
    views = evaluation.crop_views(portrait, (4, 2), num_crops=3).numpy()
    for view, t in zip(views, (0, 2, 4)):  # top, centre, bottom
        np.testing.assert_array_equal(view[0], portrait[0, t:t + 4, 1:3])
    # K clips: clip-major views.
    clips = np.stack([clip, clip + 100])
    views = evaluation.crop_views(clips, 2, num_crops=1).numpy()
    assert views.shape == (2, 2, 2, 2, 1)
    assert views[1].min() >= 100
    with pytest.raises(tf.errors.InvalidArgumentError, match="smaller than the crop"):
        evaluation.crop_views(clip, 5)


@pytest.mark.parametrize("num_classes", [10, 120])
def test_confusion_png(tmp_path, num_classes):
    import matplotlib.image

    rng = np.random.default_rng(0)
    cm = rng.integers(0, 3, (num_classes, num_classes))
    np.fill_diagonal(cm, 10)
    names = [f"a rather long class name {i}" for i in range(num_classes)]
    path = evaluation.plot_confusion_matrix(cm, names, tmp_path / "cm.png")
    image = matplotlib.image.imread(path)
    # The figure grows with the class count, so every row keeps >= 8 pixels.
    assert image.shape[0] >= 8 * num_classes and image.shape[0] == image.shape[1]


# ----------------------------------------------------------------------------
# Evaluation on the motion dataset
# ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def motion(tmp_path_factory):
    root = tmp_path_factory.mktemp("motion")
    motion_dataset.write_motion_dataset(root, num_train=0, num_val=12, num_frames=12,
                                        size=SIZE, seed=3)
    return root


@pytest.fixture(scope="module")
def streams():
    rng = np.random.default_rng(0)
    models = {}
    for stream in ("rgb", "flow"):
        model = i3d_keras.InceptionI3D(CLASSES, stream, frames=FRAMES, image_size=SIZE)
        bias = model.get_layer("Logits_Conv3d_0c_1x1_conv_3d").bias
        bias.assign(rng.normal(size=bias.shape) * 0.5)  # distinct predictions per stream
        models[stream] = model
    return models


@pytest.fixture(scope="module")
def two_stream(streams):
    return inference.Predictor.from_keras(streams)


def _direct_logits(model, files, stream):
    ds = input_pipeline.build_dataset(files, training=False, modality=stream,
                                      num_frames=FRAMES, crop_size=SIZE, batch_size=4)
    logits, labels = [], []
    for x, y in ds:
        logits.append(model(x, training=False).numpy())
        labels.append(y.numpy())
    return np.concatenate(logits), np.concatenate(labels)


def test_center_protocol_matches_direct_computation(motion, streams, two_stream, tmp_path):
    report = evaluation.evaluate(two_stream, motion, output_dir=tmp_path, progress=False)
    assert report["split"] == "val" and report["num_videos"] == 12
    assert report["protocol"]["num_frames"] == FRAMES  # the models' clip length
    files = evaluation.dataset_info(motion)["files"]
    rgb, labels = _direct_logits(streams["rgb"], files, "rgb")
    flow, _ = _direct_logits(streams["flow"], files, "flow")
    names = list(motion_dataset.CLASSES)
    for key, logits in (("rgb", rgb), ("flow", flow)):
        expected = evaluation.compute_metrics(logits, labels, CLASSES, names)
        assert report["per_stream_metrics"][key]["top1"] == pytest.approx(expected["top1"])
    fused = evaluation.compute_metrics(rgb + flow, labels, CLASSES, names)
    assert report["metrics"]["top1"] == pytest.approx(fused["top1"])
    assert report["confusion_matrix"] == fused["confusion_matrix"].tolist()
    saved = json.loads((tmp_path / evaluation.REPORT_NAME).read_text())
    assert saved["metrics"]["mean_class_accuracy"] == pytest.approx(
        fused["mean_class_accuracy"])
    assert [c["class"] for c in saved["per_class"]] == names
    assert (tmp_path / evaluation.CONFUSION_NAME).stat().st_size > 1000


def test_stream_weights(motion, two_stream):
    assert two_stream.stream_weights == {"rgb": 1.0, "flow": 1.0}  # the paper's sum
    report = evaluation.evaluate(two_stream, motion, stream_weights={"flow": 0.0},
                                 progress=False)
    assert report["stream_weights"] == {"rgb": 1.0, "flow": 0.0}
    assert two_stream.stream_weights == {"rgb": 1.0, "flow": 1.0}  # left unchanged
    assert report["metrics"] == report["per_stream_metrics"]["rgb"]


@pytest.mark.parametrize("protocol,kwargs,views", [
    ("clips", dict(num_clips=3, num_crops=3), 9),
    ("whole", dict(), 1),
    ("whole", dict(num_crops=3), 3),
])
def test_multi_view_protocols(motion, two_stream, protocol, kwargs, views):
    report = evaluation.evaluate(two_stream, motion, "val", protocol=protocol,
                                 batch_size=4, progress=False, **kwargs)
    assert report["protocol"]["views_per_video"] == views
    assert report["num_videos"] == 12
    m = report["metrics"]
    assert 0 <= m["top1"] <= m["top5"] <= 1
    assert sum(map(sum, report["confusion_matrix"])) == 12


def test_multi_clip_average_is_mean_of_view_logits(motion, streams):
    """K=2 clips x 1 crop of a 12-frame video at 8 frames: starts 0 and 4."""
    predictor = inference.Predictor.from_keras(streams["rgb"])
    files = evaluation.dataset_info(motion)["files"]
    ds = evaluation._views_dataset(files, ("rgb",), "clips", FRAMES, 2, 1, (SIZE, SIZE))
    out = evaluation.collect_logits(predictor, ds.take(3), batch_size=3, progress=False)
    example = records.read_examples(files)[:3]
    for i, ex in enumerate(example):
        frames = ex["rgb"].astype(np.float32) * (2 / 255) - 1
        clips = np.stack([frames[0:8], frames[4:12]])
        expected = streams["rgb"](clips, training=False).numpy().mean(axis=0)
        np.testing.assert_allclose(out["logits"][i], expected, rtol=1e-4, atol=1e-4)
        assert out["labels"][i] == ex["label"]


def test_bad_input(motion, streams, two_stream, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(evaluation.EvaluationError, match="0 shards"):
        evaluation.evaluate(two_stream, empty, progress=False)
    with pytest.raises(evaluation.EvaluationError, match="no such folder"):
        evaluation.evaluate(two_stream, tmp_path / "missing", progress=False)
    with pytest.raises(evaluation.EvaluationError, match="a file: pass the folder"):
        evaluation.evaluate(two_stream, next(motion.glob("*.metadata.json")), progress=False)
    # Metadata without its shards.
    no_shards = tmp_path / "no_shards"
    no_shards.mkdir()
    meta = next(motion.glob("*.metadata.json"))
    (no_shards / meta.name).write_text(meta.read_text())
    with pytest.raises(evaluation.EvaluationError, match="Expected TFRecord shards"):
        evaluation.evaluate(two_stream, no_shards, progress=False)
    with pytest.raises(evaluation.EvaluationError, match=r"split among \['val'\]"):
        evaluation.evaluate(two_stream, motion, "test", progress=False)
    wrong = inference.Predictor.from_keras(
        i3d_keras.InceptionI3D(5, frames=FRAMES, image_size=SIZE), dynamic_frames=False)
    with pytest.raises(evaluation.EvaluationError, match="predicts 5 classes but the dataset "
                                                         "has 10"):
        evaluation.evaluate(wrong, motion, progress=False)
    renamed = inference.Predictor.from_keras(streams["rgb"], class_names=[
        f"c{i}" for i in range(CLASSES)], dynamic_frames=False)
    with pytest.raises(evaluation.EvaluationError, match="class 0: model 'c0', dataset "
                                                         "'move_left'"):
        evaluation.evaluate(renamed, motion, progress=False)
    with pytest.raises(evaluation.EvaluationError, match="protocol"):
        evaluation.evaluate(two_stream, motion, protocol="ten_crop", progress=False)
    big = inference.Predictor.from_keras(
        i3d_keras.InceptionI3D(CLASSES, frames=FRAMES, image_size=48), dynamic_frames=False)
    with pytest.raises(evaluation.EvaluationError, match="smaller than the crop size 48x48"):
        evaluation.evaluate(big, motion, progress=False)
    # A corrupt shard is named (TF's own read error is not).
    import shutil

    corrupt = tmp_path / "corrupt"
    shutil.copytree(motion, corrupt)
    (shard,) = corrupt.glob("*_val-*.tfrecord")
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2:len(raw) // 2 + 64] = bytes(64)
    shard.write_bytes(bytes(raw))
    with pytest.raises(evaluation.EvaluationError, match=shard.name):
        evaluation.evaluate(inference.Predictor.from_keras(streams["rgb"], dynamic_frames=False),
                            corrupt, progress=False)


def test_flow_model_on_rgb_only_dataset(tmp_path, two_stream):
    motion_dataset.write_motion_dataset(tmp_path, num_train=0, num_val=2, num_frames=8,
                                        size=SIZE, with_flow=False)
    with pytest.raises(evaluation.EvaluationError, match="needs flow"):
        evaluation.evaluate(two_stream, tmp_path, progress=False)


def test_fixed_length_model_refuses_whole_video(motion, streams):
    fixed = inference.Predictor.from_keras(streams["rgb"], dynamic_frames=False)
    assert fixed.frames == FRAMES
    with pytest.raises(evaluation.EvaluationError, match="fixed to 8 frames"):
        evaluation.evaluate(fixed, motion, protocol="whole", progress=False)
    with pytest.raises(evaluation.EvaluationError, match="exactly 8 frames. Received: "
                                                         "num_frames=12"):
        evaluation.evaluate(fixed, motion, num_frames=12, progress=False)


def test_litert_files_and_their_agreement_with_the_keras_model(motion, streams, tmp_path):
    """A LiteRT file evaluates like its Keras model; agreement compares the two."""
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    from i3d_keras.export import calibration, exporters  # noqa: PLC0415

    keras_report = evaluation.evaluate(inference.Predictor.from_keras(streams["rgb"]), motion,
                                       progress=False)
    assert len(keras_report["predictions"]) == len(keras_report["labels"]) == 12
    float_file = exporters.export_tflite(streams["rgb"], tmp_path / "rgb.tflite")
    # (The fixture has a validation split only: calibrated on it here.)
    clips = calibration.dataset_clips(motion, {"rgb": (FRAMES, SIZE, SIZE, 3)}, split="val")
    int8_file = exporters.export_tflite(streams["rgb"], tmp_path / "rgb_int8.tflite",
                                        quantization="int8", representative_dataset=clips)
    float_report = evaluation.evaluate(inference.load_predictor(float_file), motion,
                                       progress=False)
    assert float_report["labels"] == keras_report["labels"]
    same = evaluation.agreement(float_report, json.loads(json.dumps(keras_report)))
    assert same == {"reference": keras_report["model"], "videos": 12, "same": 12,
                    "top1_agreement": 1.0, "changed": []}
    int8_report = evaluation.evaluate(inference.load_predictor(int8_file), motion,
                                      progress=False)
    same = evaluation.agreement(int8_report, keras_report)
    assert same["videos"] == 12 and same["same"] == 12 - len(same["changed"])
    assert same["changed"] == [i for i, (a, b) in enumerate(zip(
        int8_report["predictions"], keras_report["predictions"])) if a != b]
    # Reports of other videos or without predictions are refused.
    fewer = evaluation.evaluate(inference.Predictor.from_keras(streams["rgb"]), motion,
                                max_videos=6, progress=False)
    with pytest.raises(evaluation.EvaluationError, match="Received: another videos"):
        evaluation.agreement(fewer, keras_report)
    with pytest.raises(evaluation.EvaluationError, match="per-video predictions"):
        evaluation.agreement(keras_report, {"model": "old", "metrics": {}})
    # Checked before evaluating (tools/evaluate.py --agreement_with): the
    # dataset, split and number of videos the reference was made on.
    info = evaluation.dataset_info(motion)
    evaluation.check_reference(keras_report, info)
    evaluation.check_reference(fewer, info, max_videos=6)
    with pytest.raises(evaluation.EvaluationError, match="videos 6 there, 12 here"):
        evaluation.check_reference(fewer, info)
    with pytest.raises(evaluation.EvaluationError, match="split 'train' there, 'val' here"):
        evaluation.check_reference(dict(keras_report, split="train"), info)
