"""Tests of i3d_keras.tasks.inference: model loading, video prediction, feature extraction."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import i3d_keras
from i3d_keras.data import flow, video
from i3d_keras.export import exporters
from i3d_keras.tasks import inference
from i3d_keras.weights import deepmind

CLASSES, FRAMES, SIZE = 5, 8, 32
NAMES = ["archery", "bowling", "cooking", "dancing", "eating"]


@pytest.fixture(scope="module")
def streams():
    rng = np.random.default_rng(0)
    models = {}
    for stream in ("rgb", "flow"):
        model = i3d_keras.InceptionI3D(CLASSES, stream, frames=FRAMES, image_size=SIZE)
        bias = model.get_layer("Logits_Conv3d_0c_1x1_conv_3d").bias
        bias.assign(rng.normal(size=bias.shape))
        models[stream] = model
    return models


@pytest.fixture(scope="module")
def two_stream(streams):
    fused = i3d_keras.TwoStreamI3D(streams["rgb"], streams["flow"], stream_weights=(1.0, 2.0))
    return inference.Predictor.from_keras(fused, class_names=NAMES)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two good videos (moving square, mp4 and avi), a corrupt one, a missing one."""
    root = tmp_path_factory.mktemp("videos")
    t, h, w = 20, 40, 56
    frames = np.full((t, h, w, 3), 40, np.uint8)
    for i in range(t):
        frames[i, 10:22, 5 + i:17 + i] = (250, 200, 10)
    good = [video.write_video(root / "a.mp4", frames),
            video.write_video(root / "b.avi", frames[::-1].copy())]
    bad = root / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    return {"good": good, "bad": bad, "missing": root / "missing.mp4", "root": root}


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


# ----------------------------------------------------------------------------
# Class names
# ----------------------------------------------------------------------------

def test_class_names_files(tmp_path, shared_data, monkeypatch):
    label_map = shared_data / "deepmind_i3d" / "label_map.txt"
    names = inference.kinetics_class_names(400, labels=label_map)
    assert len(names) == 400 and names[0] == "abseiling"
    # Without a file, DeepMind's label map is fetched with keras.utils.get_file.
    calls = []

    def fake_get_file(fname, origin, **kwargs):
        calls.append((fname, origin))
        return str(shared_data / "deepmind_i3d" / fname)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    assert inference.kinetics_class_names(600)[:1] == \
        inference.read_class_names(shared_data / "deepmind_i3d" / "label_map_600.txt")[:1]
    assert calls == [("label_map_600.txt", inference.KINETICS_LABEL_URLS[600])]
    assert "raw.githubusercontent.com/deepmind/kinetics-i3d" in calls[0][1]
    with pytest.raises(ValueError, match="Expected 600 class names. Received: 400"):
        inference.kinetics_class_names(600, labels=label_map)
    with pytest.raises(ValueError, match="400 or 600"):
        inference.kinetics_class_names(700)
    ucf = inference.read_class_names(shared_data / "labels" / "ucf101.txt")
    assert len(ucf) == 101
    with pytest.raises(FileNotFoundError, match="no such file"):
        inference.read_class_names(tmp_path / "nope.txt")


def test_class_names_that_cannot_name_classes(tmp_path):
    """Two classes of one name printed as two `a`s; a binary or a folder was
    read as names or called missing."""
    (tmp_path / "dup.txt").write_text("a\na\nb\n")
    with pytest.raises(ValueError, match="Expected distinct class names .* Received: 'a' "
                                         "more than once"):
        inference.read_class_names(tmp_path / "dup.txt")
    (tmp_path / "blob.txt").write_bytes(bytes(range(256)))
    with pytest.raises(ValueError, match="holds binary data"):
        inference.read_class_names(tmp_path / "blob.txt")
    with pytest.raises(FileNotFoundError, match=r"\(a folder\)"):
        inference.read_class_names(tmp_path)
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="invalid JSON"):
        inference.read_class_names(tmp_path / "bad.json")
    (tmp_path / "bom.txt").write_bytes("\ufeffa\nb\n".encode("utf-8"))
    assert inference.read_class_names(tmp_path / "bom.txt") == ["a", "b"]


# ----------------------------------------------------------------------------
# Predictors
# ----------------------------------------------------------------------------

def test_with_dynamic_frames(streams):
    model = streams["rgb"]
    dynamic = inference.with_dynamic_frames(model)
    assert dynamic.input.shape == (None, None, SIZE, SIZE, 3)
    x = np.random.default_rng(1).uniform(-1, 1, (2, FRAMES, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_allclose(dynamic(x), model(x), rtol=1e-5, atol=1e-5)
    assert dynamic(np.concatenate([x, x], axis=1)).shape == (2, CLASSES)
    assert inference.with_dynamic_frames(dynamic) is dynamic


def test_two_stream_predictor_fuses_logits(streams, two_stream):
    assert two_stream.streams == ("rgb", "flow")
    assert two_stream.stream_weights == {"rgb": 1.0, "flow": 2.0}  # from the TwoStreamI3D
    assert two_stream.native_frames == FRAMES and two_stream.frames is None
    rng = np.random.default_rng(2)
    x = {"rgb": rng.uniform(-1, 1, (1, 12, SIZE, SIZE, 3)).astype("float32"),
         "flow": rng.uniform(-1, 1, (1, 12, SIZE, SIZE, 2)).astype("float32")}
    fused, parts = two_stream.logits(x)
    np.testing.assert_allclose(fused, parts["rgb"] + 2 * parts["flow"], rtol=1e-6)
    with pytest.raises(inference.ModelLoadError, match="Expected 5 class names"):
        inference.Predictor.from_keras(streams["rgb"], class_names=["a"], dynamic_frames=False)


def test_load_keras_file_and_saved_model(streams, tmp_path):
    path = tmp_path / "rgb.keras"
    streams["rgb"].save(path)
    names_file = tmp_path / "names.txt"
    names_file.write_text("\n".join(NAMES) + "\n")
    from_file = inference.load_predictor(str(path), labels=names_file, dynamic_frames=False)
    assert from_file.class_names == NAMES and from_file.frames == FRAMES
    x = np.random.default_rng(3).uniform(-1, 1, (1, FRAMES, SIZE, SIZE, 3)).astype("float32")
    expected = streams["rgb"](x).numpy()
    np.testing.assert_allclose(from_file.logits({"rgb": x})[0], expected, rtol=1e-5, atol=1e-5)

    saved = exporters.export_saved_model(streams["rgb"], tmp_path, "i3d", class_names=NAMES,
                                         image_size=SIZE)
    predictor = inference.load_predictor(str(saved))
    assert predictor.class_names == NAMES  # from the export
    # Exports compute as exported: the tools do not claim Keras' policy for them.
    assert [inference.exported_kind(s) for s in (saved, path, "kinetics", "x.tflite")] == [
        "SavedModel", None, None, "LiteRT file"]
    # The export takes clips of any length: a whole video at once, as a Keras model does.
    assert predictor.frames is None and predictor.image_size == (SIZE, SIZE)
    assert predictor.native_frames == FRAMES  # evaluation's default clip, as the .keras's
    np.testing.assert_allclose(predictor.logits({"rgb": x})[0], expected, rtol=1e-5, atol=1e-5)
    longer = np.concatenate([x, x[:, ::-1]], axis=1)
    np.testing.assert_allclose(predictor.logits({"rgb": longer})[0],
                               exporters._for_clips(streams["rgb"], 2 * FRAMES, SIZE, SIZE)(
                                   longer).numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(inference.ModelLoadError, match="SavedModel or LiteRT file gives logits"):
        predictor.feature_models()

    with pytest.raises(FileNotFoundError, match="no such file"):
        inference.load_predictor(str(tmp_path / "missing.keras"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        inference.load_predictor(str(tmp_path / "missing_checkpoint"))
    three = _write(tmp_path / "three.txt", "a\nb\nc\n")
    with pytest.raises(inference.ModelLoadError, match="5 class names.*Received: 3 names"):
        inference.load_predictor(str(path), labels=three)


def test_load_litert_files(streams, videos, tmp_path):
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    files = {s: exporters.export_tflite(streams[s], tmp_path / f"{s}.tflite") for s in streams}
    names = _write(tmp_path / "names.txt", "\n".join(NAMES) + "\n")
    predictor = inference.load_predictor(files["rgb"], files["flow"], labels=names,
                                         stream_weights={"flow": 2.0})
    assert predictor.streams == ("rgb", "flow") and predictor.class_names == NAMES
    # Names the export kept in the file; --labels wins over them.
    named = exporters.export_tflite(streams["rgb"], tmp_path / "named.tflite",
                                    class_names=[n.upper() for n in NAMES])
    assert inference.load_predictor(named).class_names == [n.upper() for n in NAMES]
    assert inference.load_predictor(named, labels=names).class_names == NAMES
    assert inference.load_predictor(files["rgb"]).class_names is None
    assert predictor.frames == FRAMES and predictor.image_size == (SIZE, SIZE)
    rng = np.random.default_rng(4)
    clips = {"rgb": rng.uniform(-1, 1, (3, FRAMES, SIZE, SIZE, 3)).astype("float32"),
             "flow": rng.uniform(-1, 1, (3, FRAMES, SIZE, SIZE, 2)).astype("float32")}
    fused, per_part = predictor.logits(clips)  # a batch of 3: the files hold batch-1 clips
    expected = {s: streams[s](clips[s]).numpy() for s in streams}
    for s in streams:
        np.testing.assert_allclose(per_part[s], expected[s], atol=1e-4)
    np.testing.assert_allclose(fused, expected["rgb"] + 2 * expected["flow"], atol=2e-4)
    # A video through the same path as a Keras model: decoded, centre-cropped
    # to the file's frame size, one clip of its length.
    (result,) = inference.predict_videos([videos["good"][0]], predictor, top_k=2,
                                         flow_method="dis", progress=False)
    assert result["ok"] and result["top_k"][0]["class"] in NAMES
    with pytest.raises(inference.ModelLoadError, match="gives logits only"):
        predictor.feature_models()

    keras_file = tmp_path / "rgb.keras"
    streams["rgb"].save(keras_file)
    with pytest.raises(inference.ModelLoadError, match="only be combined with another LiteRT"):
        inference.load_predictor(files["rgb"], keras_file)
    with pytest.raises(inference.ModelLoadError, match="an RGB and a flow file"):
        inference.load_predictor(files["rgb"], files["rgb"])
    fused = exporters.export_tflite(i3d_keras.TwoStreamI3D(streams["rgb"], streams["flow"]),
                                    tmp_path / "fused.tflite")
    assert inference.load_predictor(fused).streams == ("rgb", "flow")
    with pytest.raises(inference.ModelLoadError, match="files of rgb\\+flow and rgb"):
        inference.load_predictor(fused, files["rgb"])  # RGB would be counted twice
    with pytest.raises(FileNotFoundError, match="no such file"):
        inference.load_predictor(tmp_path / "missing.tflite")
    junk = _write(tmp_path / "junk.tflite", "not a flatbuffer")
    with pytest.raises(inference.ModelLoadError, match="Cannot load .*junk.tflite. as a LiteRT"):
        inference.load_predictor(junk)


def _write(path, text):
    path.write_text(text)
    return path


def _deepmind_checkpoint(tmp_path, stream="rgb"):
    """A checkpoint with DeepMind's variable names from a random Kinetics-sized model."""
    model = i3d_keras.InceptionI3D(400, stream, image_size=224)
    scope = "RGB/inception_i3d/" if stream == "rgb" else "Flow/inception_i3d/"
    values = {name: layer.weights[index].numpy()
              for name, (layer, index) in deepmind.deepmind_variable_names(model,
                                                                           scope).items()}
    prefix = tmp_path / f"{stream}_imagenet" / "model.ckpt"
    prefix.parent.mkdir(parents=True)
    tf.raw_ops.SaveV2(prefix=str(prefix), tensor_names=list(values),
                      shape_and_slices=[""] * len(values),
                      tensors=[tf.constant(v) for v in values.values()])
    return model, prefix


def test_deepmind_checkpoint_and_kinetics_keyword(tmp_path, shared_data, monkeypatch):
    model, prefix = _deepmind_checkpoint(tmp_path)
    label_map = shared_data / "deepmind_i3d" / "label_map.txt"
    predictor = inference.load_predictor(str(prefix), labels=label_map)
    assert predictor.num_classes == 400 and predictor.class_names[6] == "arm wrestling"
    clip = shared_data / "videos" / "arm_wrestling.mp4"
    result, = inference.predict_videos([clip], predictor, top_k=3, num_frames=9,
                                       progress=False)
    assert result["ok"] and result["num_frames"] == 9
    inputs = inference.load_video_inputs(clip, ("rgb",), num_frames=9)
    probs = _softmax(model(inputs["rgb"][None], training=False).numpy()[0].astype(np.float64))
    top = np.argsort(-probs)[:3]
    assert [r["index"] for r in result["top_k"]] == list(top)
    assert [r["class"] for r in result["top_k"]] == [predictor.class_names[i] for i in top]
    np.testing.assert_allclose([r["probability"] for r in result["top_k"]], probs[top],
                               rtol=1e-4)

    # "kinetics": DeepMind's checkpoint and label map through their download functions.
    from i3d_keras.weights import pretrained

    monkeypatch.setattr(pretrained, "download_deepmind_checkpoint", lambda name: str(prefix))
    monkeypatch.setattr(keras.utils, "get_file",
                        lambda fname, origin, **kw: str(shared_data / "deepmind_i3d" / fname))
    kinetics = inference.load_predictor("kinetics")
    assert kinetics.class_names == predictor.class_names
    assert kinetics.feature_models()["rgb"].output.shape == (None, 1024)


# ----------------------------------------------------------------------------
# Prediction on video files
# ----------------------------------------------------------------------------

def test_load_video_inputs(videos):
    path = videos["good"][0]
    frames = video.read_video(path)
    out = inference.load_video_inputs(path, ("rgb", "flow"), image_size=64, flow_method="dis")
    t, h, w = frames.shape[:3]
    top, left = (h - 64) // 2, (w - 64) // 2
    np.testing.assert_allclose(out["rgb"], frames[:, top:top + 64, left:left + 64] * (2 / 255)
                               - 1, atol=1e-6)
    expected_flow = flow.compute_flow(frames, "dis")[:, top:top + 64, left:left + 64]
    np.testing.assert_allclose(out["flow"], expected_flow, atol=1e-6)
    # A centre clip longer than the video loops it (the paper loops short videos).
    clip = inference.load_video_inputs(path, ("rgb",), image_size=64, num_frames=t + 5)
    np.testing.assert_array_equal(clip["rgb"][:t], out["rgb"])
    np.testing.assert_array_equal(clip["rgb"][t:], out["rgb"][:5])
    assert list(inference.center_clip_indices(10, 4)) == [3, 4, 5, 6]


def test_predict_videos_bad_items_go_on(two_stream, videos, streams):
    paths = [videos["good"][0], videos["bad"], videos["missing"], videos["good"][1]]
    results = inference.predict_videos(paths, two_stream, top_k=3, flow_method="dis",
                                       progress=False)
    assert [r["video"] for r in results] == [str(p) for p in paths]
    assert [r["ok"] for r in results] == [True, False, False, True]
    assert "Cannot decode video" in results[1]["error"]
    assert "does not exist" in results[2]["error"]
    for r in (results[0], results[3]):
        probs = [t["probability"] for t in r["top_k"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True)
        assert all(t["class"] in NAMES for t in r["top_k"])
        assert set(r["seconds"]) >= {"decode", "flow", "model", "total"}
    # Hand computation: softmax of rgb + 2 * flow logits on the whole video.
    inputs = inference.load_video_inputs(paths[0], ("rgb", "flow"), image_size=SIZE,
                                         flow_method="dis")
    logits = sum(w * inference.with_dynamic_frames(streams[s])(inputs[s][None]).numpy()[0]
                 for s, w in (("rgb", 1.0), ("flow", 2.0)))
    probs = _softmax(logits.astype(np.float64))
    assert results[0]["top_k"][0]["index"] == int(np.argmax(probs))
    assert results[0]["top_k"][0]["probability"] == pytest.approx(probs.max(), rel=1e-4)


def test_predict_shared_videos(two_stream, shared_data):
    files = [shared_data / "videos" / "cleaning_pool.mp4",
             shared_data / "videos" / "v_CricketShot_g04_c01_rgb.gif"]
    results = inference.predict_videos(files, two_stream, num_frames=16, flow_method="dis",
                                       progress=False)
    assert all(r["ok"] for r in results), results
    assert [r["num_frames"] for r in results] == [16, 16]


# ----------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------

def test_window_starts():
    assert inference.window_starts(100, 64, 16) == [0, 16, 32]
    assert inference.window_starts(30, 64, 16) == [0]
    assert inference.window_starts(30, None) == [0]
    assert inference.window_starts(128, 64) == [0, 64]


def test_extract_features(two_stream, streams, videos, tmp_path):
    out_dir = tmp_path / "features"
    paths = [videos["good"][0], videos["bad"], videos["good"][1]]
    report = inference.extract_features(paths, out_dir, two_stream, window=8, stride=4,
                                        flow_method="dis", progress=False)
    assert report["feature_dim"] == 2048 and report["streams"] == ["rgb", "flow"]
    assert len(report["written"]) == 2 and len(report["failed"]) == 1
    assert report["failed"][0][0] == str(videos["bad"])
    features = np.load(out_dir / "a.npy")
    assert features.shape == (len(inference.window_starts(20, 8, 4)), 2048)  # 4 windows
    # Hand computation of window 1 (frames 4..11): pooled Mixed_5c of each stream.
    inputs = inference.load_video_inputs(videos["good"][0], ("rgb", "flow"), image_size=SIZE,
                                         flow_method="dis")
    for stream, cols in (("rgb", slice(0, 1024)), ("flow", slice(1024, 2048))):
        extractor = i3d_keras.endpoint_model(streams[stream], "Mixed_5c", pooled=True)
        expected = extractor(inputs[stream][None, 4:12]).numpy()[0]
        np.testing.assert_allclose(features[1, cols], expected, rtol=1e-4, atol=1e-5)

    # Resumable: existing outputs are skipped; the failed video is retried.
    mtime = os.stat(out_dir / "a.npy").st_mtime_ns
    again = inference.extract_features(paths, out_dir, two_stream, window=8, stride=4,
                                       flow_method="dis", progress=False)
    assert len(again["skipped"]) == 2 and not again["written"] and len(again["failed"]) == 1
    assert os.stat(out_dir / "a.npy").st_mtime_ns == mtime

    # RGB only, whole video as one clip: [1, 1024]; folders kept relative to root.
    rgb = inference.extract_features([videos["good"][1]], tmp_path / "rgb", two_stream,
                                     streams=["rgb"], root=videos["root"], progress=False)
    assert rgb["feature_dim"] == 1024
    assert np.load(tmp_path / "rgb" / "b.npy").shape == (1, 1024)
    with pytest.raises(ValueError, match="window"):
        inference.extract_features(paths, out_dir, two_stream, window=0, progress=False)


def test_find_videos(videos, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("a.mp4\n\n/abs/b.avi\n")
    found, root = inference.find_videos([str(videos["root"])])
    assert root == videos["root"]
    assert {p.name for p in found} == {"a.mp4", "b.avi", "corrupt.mp4"}
    found, root = inference.find_videos([str(listing), "x.gif"])
    assert found == [tmp_path / "a.mp4", inference.Path("/abs/b.avi"), inference.Path("x.gif")]
    assert root is None


# ----------------------------------------------------------------------------
# Windows over long videos and live streams
# ----------------------------------------------------------------------------

def _long_clip(path, frames, fps=25):
    rng = np.random.default_rng(3)
    clip = rng.integers(0, 90, (frames, 40, 56, 3), dtype=np.uint8)
    for t in range(frames):
        clip[t, 10:22, (2 * t) % 40:(2 * t) % 40 + 12] = (250, 200, 10)
    return video.write_video(path, clip, fps=fps)


def test_predict_windows_times_and_logits(two_stream, tmp_path):
    clip = _long_clip(tmp_path / "long.avi", 40)
    seen = []
    result = inference.predict_windows(clip, two_stream, window=16, stride=8, top_k=2,
                                       batch_size=2, flow_method="dis", on_window=seen.append,
                                       progress=False)
    assert result["ok"] and result["num_frames"] == 40 and result["broken"] is None
    windows = result["windows"]
    assert [w["start_frame"] for w in windows] == inference.window_starts(40, 16, 8)
    assert seen == windows
    first = windows[1]
    assert first["start"] == pytest.approx(8 / 25) and first["end"] == pytest.approx(24 / 25)
    assert len(first["top_k"]) == 2 and first["top_k"][0]["class"] in NAMES
    # A window's logits are the predictor's on that window's frames.
    inputs = inference.load_video_inputs(clip, ("rgb", "flow"), image_size=SIZE,
                                         flow_method="dis")
    logits, _ = two_stream.logits({k: v[None, 8:24] for k, v in inputs.items()})
    np.testing.assert_allclose(first["probabilities"], _softmax(logits[0]), atol=1e-4)
    # Gaps (a stride above the window) and a video shorter than a window.
    gaps = inference.predict_windows(clip, two_stream, window=8, stride=20, flow_method="dis",
                                     progress=False)
    assert [w["start_frame"] for w in gaps["windows"]] == [0, 20]
    short = inference.predict_windows(clip, two_stream, window=64, flow_method="dis",
                                      progress=False)
    # It is looped into the window, which ends where the video does (not at
    # 64 frames: a 12-frame clip in a 100,000-frame window read "0:00-1:06:40").
    assert len(short["windows"]) == 1 and short["windows"][0]["end_frame"] == 40
    assert short["windows"][0]["end"] == pytest.approx(40 / 25)


def test_whole_video_answer_is_one_pass_up_to_the_limit_then_averaged_chunks(
        two_stream, tmp_path, monkeypatch):
    clip = _long_clip(tmp_path / "clip.avi", 30)
    one_pass, = inference.predict_videos([clip], two_stream, top_k=5, flow_method="dis",
                                         progress=False)
    streamed = inference.predict_windows(clip, two_stream, top_k=5, flow_method="dis",
                                         progress=False)
    assert streamed["windows"] == [] and streamed["num_frames"] == 30
    for a, b in zip(one_pass["top_k"], streamed["top_k"]):
        assert a["class"] == b["class"] and a["probability"] == pytest.approx(
            b["probability"], abs=1e-4)
    # Longer than the limit: chunks of 12, 12 and 6 frames, averaged by length.
    monkeypatch.setattr(inference, "WHOLE_VIDEO_FRAMES", 12)
    chunked = inference.predict_windows(clip, two_stream, top_k=5, flow_method="dis",
                                        progress=False)
    inputs = inference.load_video_inputs(clip, ("rgb", "flow"), image_size=SIZE,
                                         flow_method="dis")
    parts = [two_stream.logits({k: v[None, a:b] for k, v in inputs.items()})[0][0]
             for a, b in ((0, 12), (12, 24), (24, 30))]
    expected = _softmax((12 * parts[0] + 12 * parts[1] + 6 * parts[2]) / 30)
    got = {i["index"]: i["probability"] for i in chunked["top_k"]}
    for index, probability in got.items():
        assert probability == pytest.approx(expected[index], abs=1e-4)


def test_predict_windows_keeps_the_windows_before_a_break(two_stream, tmp_path):
    whole = _long_clip(tmp_path / "whole.avi", 80)
    broken = tmp_path / "broken.avi"
    data = whole.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    result = inference.predict_windows(broken, two_stream, window=8, flow_method="dis",
                                       progress=False)
    assert result["ok"] and 3 <= len(result["windows"]) < 10
    assert "the video broke at" in result["broken"]
    failed = inference.predict_windows(tmp_path / "missing.avi", two_stream, window=8,
                                       progress=False)
    assert not failed["ok"] and "does not exist" in failed["error"]


def test_predict_windows_reads_a_live_stream_over_http(two_stream, tmp_path):
    import functools
    import http.server
    import threading

    _long_clip(tmp_path / "cam.avi", 24)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cam.avi"
        result = inference.predict_windows(url, two_stream, window=8, flow_method="dis",
                                           progress=False)
    finally:
        server.shutdown()
        server.server_close()
    assert result["live"] and result["ok"], result["error"]
    assert [w["start_frame"] for w in result["windows"]] == [0, 8, 16]
    nowhere = inference.predict_windows("http://127.0.0.1:9/none.avi", two_stream, window=8,
                                        progress=False)
    assert not nowhere["ok"] and "cannot open the stream" in nowhere["error"]
