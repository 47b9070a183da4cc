"""The tools under bad input: nothing a user owns is lost, every mistake gets a
sentence (exit 2) and no traceback, checked before any work starts.

The issue's sweep as tests: each tool is run as a user runs it (a subprocess,
`python tools/NAME.py ...`) on real files in `tmp_path`; the inputs' bytes are
compared before and after.
"""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = sorted(p.stem for p in (ROOT / "tools").glob("*.py"))
#: Numeric flags that take any value (a seed); every other int or float flag is bounded.
UNBOUNDED = {"seed"}


def run_tool(tool, *args, cwd=None, timeout=600):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("I3D_KERAS_VERBOSE", None)
    return subprocess.run([sys.executable, str(ROOT / "tools" / f"{tool}.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def assert_usage_error(run, *phrases, alone=True):
    """Exit 2, one `TOOL: error: ...` line on standard error, no traceback.

    With `alone=False` the tool's own status lines (`TOOL: precision ...`) may
    come first: checks that need the loaded model (its weights' fingerprint).
    """
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1 and lines[-1] == errors[0], run.stderr
    assert len(lines) == 1 or not alone, run.stderr
    for phrase in phrases:
        assert phrase in errors[0], errors[0]
    return errors[0]


def snapshot(*paths):
    """`{path: bytes}` of files (and the files in folders), to compare after a run."""
    found = {}
    for path in paths:
        path = Path(path)
        for item in ([path] if path.is_file() else sorted(path.rglob("*"))):
            if item.is_file():
                found[item] = item.read_bytes()
    return found


def write_clip(path, frames=12, size=(48, 64), seed=0):
    from i3d_keras.data.video import write_video

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, rng.integers(0, 255, (frames, *size, 3), dtype=np.uint8), fps=25)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Real inputs: two clips of the same name in two folders, an RGB and a
    flow model (.keras), a corrupt .keras, a labels file, a plain file."""
    import i3d_keras

    root = tmp_path_factory.mktemp("inputs")
    clips = [write_clip(root / "a" / "clip.mp4", seed=1), write_clip(root / "b" / "clip.mp4",
                                                                      seed=2)]
    models = {}
    for stream in ("rgb", "flow"):
        model = i3d_keras.InceptionI3D(3, stream, frames=None, image_size=32,
                                       name=f"tiny_{stream}")
        models[stream] = root / f"{stream}.keras"
        model.save(models[stream])
    corrupt = root / "corrupt.keras"
    corrupt.write_bytes(models["rgb"].read_bytes()[:5000])  # truncated
    labels = root / "labels.txt"
    labels.write_text("a\nb\nc\n")
    plain = root / "a_file.txt"
    plain.write_text("not a folder\n")
    return {"root": root, "clips": clips, "rgb": models["rgb"], "flow": models["flow"],
            "corrupt": corrupt, "labels": labels, "file": plain}


# ---------------------------------------------------------------------------
# Every flag checked at parse time
# ---------------------------------------------------------------------------

_LIST_FLAGS = """
import importlib.util, json, sys
from absl import flags
spec = importlib.util.spec_from_file_location("tool_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
found = []
for flag in flags.FLAGS.get_flags_for_module("tool_under_test"):
    parser = flag.parser
    found.append({"name": flag.name, "type": flag.flag_type(),
                  "lower": getattr(parser, "lower_bound", None),
                  "upper": getattr(parser, "upper_bound", None)})
print(json.dumps(found))
"""


@pytest.mark.parametrize("tool", TOOLS)
def test_every_numeric_flag_is_bounded_and_a_bad_value_is_a_usage_error(tool, tmp_path):
    listing = subprocess.run([sys.executable, "-c", _LIST_FLAGS, str(ROOT / "tools" /
                                                                     f"{tool}.py")],
                             capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr[-2000:]
    numeric = [f for f in json.loads(listing.stdout.splitlines()[-1])
               if f["type"] in ("int", "float")]
    unbounded = [f["name"] for f in numeric if f["lower"] is None and f["name"] not in UNBOUNDED]
    assert not unbounded, f"{tool}: numeric flags without a range: {unbounded}"
    # Each bounded flag, one below its range: refused while parsing, before any work.
    for flag in [f for f in numeric if f["lower"] is not None]:
        bad = flag["lower"] - 1
        run = run_tool(tool, f"--{flag['name']}={bad}", cwd=tmp_path, timeout=120)
        assert_usage_error(run, f"--{flag['name']}")
        assert not list(tmp_path.iterdir()), f"{tool} --{flag['name']}={bad} wrote files"


# ---------------------------------------------------------------------------
# 1. A user's files are never replaced without --overwrite
# ---------------------------------------------------------------------------

def test_predict_never_writes_its_json_over_an_input_or_an_existing_file(files, tmp_path):
    clip = files["clips"][0]
    before = snapshot(clip)
    run = run_tool("predict", "--model", files["rgb"], "--json", clip, clip)
    assert_usage_error(run, "one of the inputs")
    existing = tmp_path / "results.json"
    existing.write_text("mine")
    run = run_tool("predict", "--model", files["rgb"], "--json", existing, clip)
    assert_usage_error(run, "exists; pass --overwrite")
    folder = tmp_path / "a_folder"
    folder.mkdir()
    assert_usage_error(run_tool("predict", "--model", files["rgb"], "--json", folder, clip),
                       "is a folder")
    assert snapshot(clip) == before and existing.read_text() == "mine"
    # With --overwrite it is replaced (atomically), with the results.
    run = run_tool("predict", "--model", files["rgb"], "--json", existing, "--overwrite",
                   "--mixed_precision", "float32", clip)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(existing.read_text())[0]["ok"] is True


def test_predict_checks_weights_outputs_models_and_labels_before_any_work(files, tmp_path):
    """Each was accepted and failed late, or not at all: three stream weights
    (the third dropped), `nan` (every class `nan%`), a GIF to annotate (a
    1-frame GIF written), a missing model found after the precision was timed,
    duplicate class names printed as two classes of one name."""
    clip = files["clips"][0]
    for value in ("1,2,3", "nan,1", "0,0", "-1,2"):
        assert_usage_error(run_tool("predict", "--model", files["rgb"], "--stream_weights",
                                    value, clip), "--stream_weights must be two numbers")
    assert_usage_error(run_tool("predict", "--model", files["rgb"], "--window", "8",
                                "--annotate", tmp_path / "a.gif", clip),
                       "--annotate writes a .mp4 or .avi video")
    env_cache = tmp_path / "cache"  # a new machine: `auto` would time both precisions first
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "predict.py"), "--model",
                          str(tmp_path / "missing.keras"), str(clip)], capture_output=True,
                         text=True, timeout=600, env=dict(os.environ, XDG_CACHE_HOME=str(
                             env_cache), TF_CPP_MIN_LOG_LEVEL="2"))
    assert_usage_error(run, "--model: expected a .keras file", "(no such file)")
    assert not (env_cache / "i3d_keras").exists()  # nothing timed
    duplicates = tmp_path / "dup.txt"
    duplicates.write_text("a\na\nb\n")
    assert_usage_error(run_tool("predict", "--model", files["rgb"], "--labels", duplicates,
                                clip), "--labels: Expected distinct class names")
    assert not [p for p in tmp_path.iterdir() if p.name not in ("dup.txt", "cache")]


def test_fvd_never_replaces_its_inputs_or_outputs(tmp_path):
    rng = np.random.default_rng(0)
    real = tmp_path / "real.npz"
    np.savez(real, features=rng.normal(size=(8, 16)))
    before = snapshot(real)
    assert_usage_error(run_tool("fvd", "--real", real, "--save_stats", real), "one of the inputs")
    # A name fvd could not read back as statistics is refused before any work.
    assert_usage_error(run_tool("fvd", "--real", real, "--save_stats", tmp_path / "stats"),
                       "ending in .npz")
    assert not (tmp_path / "stats").exists()
    taken = tmp_path / "fvd.json"
    taken.write_text("mine")
    assert_usage_error(run_tool("fvd", "--real", real, "--generated", real, "--json", taken),
                       "exists; pass --overwrite")
    assert snapshot(real) == before and taken.read_text() == "mine"
    # A set against itself: a distance of 0, not "-0.0000".
    run = run_tool("fvd", "--real", real, "--generated", real, "--json", taken, "--overwrite")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "FVD: 0.0000" in run.stdout and json.loads(taken.read_text())["fvd"] >= 0


@pytest.mark.parametrize("tool, flag", [("benchmark", "--output"), ("benchmark", "--plot"),
                                        ("doctor", "--json")])
def test_reports_never_replace_a_file_without_overwrite(tool, flag, tmp_path):
    taken = tmp_path / "mine.txt"
    taken.write_text("mine")
    assert_usage_error(run_tool(tool, flag, taken), "exists; pass --overwrite")
    assert taken.read_text() == "mine"
    assert_usage_error(run_tool(tool, flag, tmp_path), "is a folder")


def test_every_tool_writing_a_named_file_has_overwrite():
    """A file named by a flag is only ever replaced with --overwrite."""
    file_flags = re.compile(r'DEFINE_string\(\s*"(json|output|plot|csv|timeline|annotate|'
                            r'save_stats|dry_run)"')
    missing = [tool for tool in TOOLS
               if file_flags.search((ROOT / "tools" / f"{tool}.py").read_text())
               and 'DEFINE_bool("overwrite"' not in (ROOT / "tools" / f"{tool}.py").read_text()]
    assert not missing, missing


def test_export_checks_every_path_before_loading_a_model(files, tmp_path):
    existing = tmp_path / "model.tflite"
    existing.write_bytes(b"mine")
    run = run_tool("export", "--format", "tflite", "--rgb_model", files["rgb"], "--output",
                   existing)
    assert_usage_error(run, "exists; pass --overwrite")
    assert existing.read_bytes() == b"mine"
    assert_usage_error(run_tool("export", "--rgb_model", files["rgb"], "--base_dir",
                                files["file"]), "--base_dir", "is a file")
    assert_usage_error(run_tool("export", "--rgb_model", files["corrupt"], "--base_dir",
                                tmp_path / "sm"), "not a Keras model file")
    assert_usage_error(run_tool("export", "--rgb_model", files["flow"], "--base_dir",
                                tmp_path / "sm"),
                       "a flow model where an RGB model is expected")
    assert_usage_error(run_tool("export", "--rgb_model", tmp_path / "missing.keras"),
                       "no such file")
    assert not (tmp_path / "sm").exists()


# ---------------------------------------------------------------------------
# 2. Outputs that collide, resuming with other settings
# ---------------------------------------------------------------------------

def test_extract_features_keeps_same_named_videos_apart_and_refuses_other_settings(files,
                                                                                  tmp_path):
    out = tmp_path / "features"
    common = ["--model", files["rgb"], "--mixed_precision", "float32", "--output_dir", out]
    run = run_tool("extract_features", *common, "--window", "4", *files["clips"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert "2 written" in run.stdout
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npy"))
    assert written == ["a/clip.npy", "b/clip.npy"]
    assert not np.array_equal(np.load(out / "a" / "clip.npy"), np.load(out / "b" / "clip.npy"))
    before = snapshot(out)
    # The same command resumes; another window is refused before any work.
    again = run_tool("extract_features", *common, "--window", "4", *files["clips"])
    assert again.returncode == 0 and "2 already done" in again.stdout
    line = assert_usage_error(
        run_tool("extract_features", *common, "--window", "8", *files["clips"]),
        "window 4 there, 8 now", "--overwrite", alone=False)
    assert "stride" in line  # the default stride follows the window
    assert snapshot(out) == before
    redo = run_tool("extract_features", *common, "--window", "8", "--overwrite", *files["clips"])
    assert redo.returncode == 0 and "2 written" in redo.stdout, redo.stderr[-3000:]
    assert np.load(out / "a" / "clip.npy").shape == (1, 1024)
    assert_usage_error(run_tool("extract_features", *common[:-1], files["file"],
                                *files["clips"]), "--output_dir", "is a file")
    # A stream the model lacks is refused before the line that announces the work.
    lacking = run_tool("extract_features", *common[:-1], tmp_path / "flow_features",
                       "--streams", "flow", *files["clips"])
    assert_usage_error(lacking, "--streams", "Received: --streams=flow", alone=False)
    assert "writing to" not in lacking.stderr
    assert not (tmp_path / "flow_features").exists()


def test_extract_flow_refuses_other_settings_and_collisions(files, tmp_path):
    out = tmp_path / "flow"
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(c) for c in files["clips"]) + "\n")
    common = ["--input", listing, "--output_dir", out, "--method", "dis", "--workers", "1"]
    run = run_tool("extract_flow", *common, "--short_side", "32")
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.flow.npz")) == \
        ["a/clip.mp4.flow.npz", "b/clip.mp4.flow.npz"]
    before = snapshot(out)
    assert_usage_error(run_tool("extract_flow", *common, "--short_side", "40"),
                       "short_side 32 there, 40 now")
    assert snapshot(out) == before
    assert_usage_error(run_tool("extract_flow", "--input", listing, "--output_dir",
                                files["file"]), "is a file")


def test_prepare_dataset_refuses_other_settings_and_a_file_as_folder(files, tmp_path):
    source = tmp_path / "videos"
    for i, label in enumerate(("walk", "walk", "run", "run")):
        write_clip(source / label / f"v{i}.avi", frames=6, seed=i)
    out = tmp_path / "shards"
    common = ["--layout", "folder", "--root", source, "--output_dir", out, "--workers", "1"]
    run = run_tool("prepare_dataset", *common, "--short_side", "32")
    assert run.returncode == 0, run.stderr[-3000:]
    before = snapshot(out)
    assert_usage_error(run_tool("prepare_dataset", *common, "--short_side", "64"),
                       "short_side 32 there, 64 now", alone=False)
    assert snapshot(out) == before
    assert_usage_error(run_tool("prepare_dataset", "--layout", "folder", "--root", source,
                                "--output_dir", files["file"]), "is a file")
    motion = tmp_path / "motion"
    small = ["--layout", "motion", "--output_dir", motion, "--num_train", "4", "--num_val", "2"]
    assert run_tool("prepare_dataset", *small).returncode == 0
    assert_usage_error(run_tool("prepare_dataset", *small), "holds the dataset 'motion'")


def test_prepare_dataset_never_ignores_a_flag_or_writes_among_the_videos(files, tmp_path):
    source = tmp_path / "videos"
    write_clip(source / "walk" / "v.avi", frames=6)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label\n")
    before = snapshot(source)
    assert_usage_error(run_tool("prepare_dataset", "--layout", "folder", "--root", source,
                                "--csv", manifest, "--output_dir", tmp_path / "o"),
                       "--csv does not apply to --layout folder")
    assert_usage_error(run_tool("prepare_dataset", "--layout", "motion", "--fps", "10",
                                "--output_dir", tmp_path / "o"),
                       "--fps does not apply to --layout motion")
    for inside in (source, source / "shards"):
        assert_usage_error(run_tool("prepare_dataset", "--layout", "folder", "--root", source,
                                    "--output_dir", inside),
                           "--output_dir must be outside the videos' --root")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(files["rgb"].read_bytes()[:500])
    assert_usage_error(run_tool("prepare_dataset", "--layout", "csv", "--csv", binary,
                                "--output_dir", tmp_path / "o"),
                       "Expected the CSV manifest", "to be UTF-8 text")
    assert snapshot(source) == before and not (tmp_path / "o").exists()


def test_train_refuses_a_run_folder_of_other_settings(files, tmp_path):
    from i3d_keras.tasks import training

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = training.TrainConfig(stream="rgb", output_dir=str(run_dir)).resolved()
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config), indent=1))
    (run_dir / "last.keras").write_bytes(b"an interrupted run's checkpoint")
    before = snapshot(run_dir)
    line = assert_usage_error(run_tool("train", "--stream", "flow", "--output_dir", run_dir),
                              "stream rgb there, flow now", "--overwrite")
    assert "arch" not in line  # only what differs is named
    assert snapshot(run_dir) == before
    assert_usage_error(run_tool("train", "--output_dir", files["file"]), "is a file")
    assert_usage_error(run_tool("train", "--init", tmp_path / "missing.keras", "--output_dir",
                                tmp_path / "r2"), "init")
    # A folder of the user's own, without a run: --overwrite removes the run's files only.
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    training._remove_run(mine)  # noqa: SLF001
    assert (mine / "notes.txt").read_text() == "keep me"


# ---------------------------------------------------------------------------
# 3. Finished work is not lost to an output checked only at the end
# ---------------------------------------------------------------------------

def test_evaluate_checks_its_outputs_before_evaluating(files, tmp_path):
    not_json = tmp_path / "report.json"
    not_json.write_text("{ not json")
    old_report = tmp_path / "old.json"
    old_report.write_text(json.dumps({"model": "m", "metrics": {}}))
    for args, phrase in ((("--output_dir", files["file"]), "is a file"),
                         (("--json", tmp_path), "is a folder"),
                         (("--agreement_with", tmp_path / "none.json"), "no such file"),
                         (("--agreement_with", not_json), "Expecting property name"),
                         (("--agreement_with", old_report), "per-video predictions")):
        run = run_tool("evaluate", "--model", files["rgb"], *args)
        line = assert_usage_error(run, phrase)
        assert "evaluate:" in line and "video" not in run.stdout


def test_corrupt_models_are_named_as_such(files):
    assert_usage_error(run_tool("describe", "--model", files["corrupt"]),
                       "not a Keras model file")
    assert_usage_error(run_tool("predict", "--model", files["corrupt"], files["clips"][0]),
                       "not a Keras model file", alone=False)


def test_describe_a_saved_model_never_ignores_a_flag(files):
    """--stream and --num_classes were silently ignored with --model (a flow
    model described as asked for rgb); --frames now sets the saved model's clip."""
    assert_usage_error(run_tool("describe", "--model", files["flow"], "--stream", "rgb"),
                       "--stream only apply to a network built here", "Received: --model")
    run = run_tool("describe", "--model", files["flow"], "--frames", "16")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("tiny_flow: input [(16, 32, 32, 2)]"), run.stdout[:300]


def test_serving_client_flags_that_cannot_apply_and_an_absent_server(files, tmp_path):
    clip = files["clips"][0]
    assert_usage_error(run_tool("serving_client", "--dry_run", tmp_path / "r.json",
                                "--protocol", "grpc", clip),
                       "--dry_run writes the REST request", "--protocol would be ignored")
    assert_usage_error(run_tool("serving_client", "--host", "bad host/", clip),
                       "--host=bad host/: expected a host name")
    for protocol in ("rest", "grpc"):  # nothing listens on port 1: not "TF Serving answered"
        run = run_tool("serving_client", "--protocol", protocol, "--port", "1",
                       "--max_frames", "4", clip)
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
        assert run.stderr.strip().splitlines()[-1].startswith(
            "serving_client: error: could not reach TF Serving at localhost:1: "), run.stderr
    assert not list(tmp_path.iterdir())


def test_a_flag_that_needs_another_and_unexpected_arguments(files, tmp_path):
    assert_usage_error(run_tool("extract_features", "--model", files["rgb"], "--stride", "4",
                                "--output_dir", tmp_path / "f", files["clips"][0]),
                       "--stride needs --window")
    assert_usage_error(run_tool("serving_client", tmp_path / "missing.mp4"), "no such file")
    # The messages name what was expected and what was received.
    line = assert_usage_error(run_tool("describe", "--frames", "0"), "--frames")
    assert re.search(r"0 is not .*(positive|>= 1)", line), line


# ---------------------------------------------------------------------------
# The benchmarks' and export's flags: refused while parsing, before any work
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("args, phrases", [
    (["--frames", "abc"], ["flag --frames=abc: expected whole numbers >= 1", "Received: 'abc'"]),
    (["--frames=-8"], ["flag --frames=-8: ", "Received: '-8'"]),
    (["--frames="], ["flag --frames=: ", "Received: an empty list"]),
    (["--litert_frames=16,x"], ["flag --litert_frames=16,x: ", "Received: 'x'"]),
    (["--litert_quantizations="], ["--litert_quantizations", "Received: an empty list"]),
    (["--precisions=float32,fp8"], ["--precisions", "Received: 'fp8'"]),
    (["--repeats", "0"], ["flag --repeats=0: 0 is not a positive integer"]),
    (["--image_size", "0"], ["--image_size"]),
    (["--train_batch", "0"], ["--train_batch"]),
    (["--train_frames", "0"], ["--train_frames"]),
])
def test_benchmark_numbers_and_lists_are_checked_while_parsing(args, phrases, tmp_path):
    run = run_tool("benchmark", *args, "--output", tmp_path / "bench.json", cwd=tmp_path,
                   timeout=120)
    assert_usage_error(run, *phrases)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("flag, received", [("--tools=", "an empty list"),
                                            ("--streams=", "an empty list"),
                                            ("--streams=flow", "'flow'"),
                                            ("--seconds=30,0", "'0'")])
def test_benchmark_streaming_refuses_an_empty_or_bad_list(flag, received, tmp_path):
    run = run_tool("benchmark_streaming", flag, "--json", tmp_path / "bs.json", cwd=tmp_path,
                   timeout=120)
    assert_usage_error(run, f"flag {flag}: ", f"Received: {received}")
    assert not list(tmp_path.iterdir())


def test_benchmark_data_names_a_corrupt_or_too_short_video_before_timing(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", frames=12)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[:2000])
    one = write_clip(tmp_path / "one.mp4", frames=1)
    before = snapshot(tmp_path)
    report = tmp_path / "data.json"
    assert_usage_error(run_tool("benchmark_data", "--video", truncated, "--json", report),
                       "--video must be a video that decodes", repr(str(truncated)))
    assert_usage_error(run_tool("benchmark_data", "--video", one, "--json", report),
                       "--video must have at least 21 frames", "--pairs 20",
                       f"Received: {str(one)!r} with 1 frame")
    assert_usage_error(run_tool("benchmark_data", "--video", clip, "--pairs", "4", "--video2",
                                truncated), "--video2 must be a video that decodes")
    assert snapshot(tmp_path) == before


def test_export_refuses_flags_of_the_other_format(tmp_path):
    model = tmp_path / "rgb.keras"
    model.write_bytes(b"not loaded: the flags are checked first")
    for args, phrases in (
            (["--quantization", "float16", "--output", "x.tflite", "--frames", "8",
              "--int8_io"],
             ["--quantization, --output, --frames and --int8_io are for --format tflite only",
              "Received: --quantization=float16 --output=x.tflite --frames=8 --int8_io with "
              "--format saved_model"]),
            (["--noverify"], ["--verify is for --format tflite only"]),
            (["--format", "tflite", "--version", "3"],
             ["--version is for --format saved_model only", "Received: --version=3"]),
            (["--format", "tflite", "--output", "x.tflite", "--name", "mine"],
             ["--name is for --format saved_model and the default LiteRT --output"]),
            (["--format", "tflite", "--quantization", "float16", "--calibration_clips", "3"],
             ["--calibration_clips is for --quantization int8 only",
              "with --quantization float16"])):
        assert_usage_error(run_tool("export", "--rgb_model", model, *args, cwd=tmp_path),
                           *phrases)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rgb.keras"]


def test_export_name_is_one_folder_and_an_existing_version_is_checked_first(tmp_path):
    model = tmp_path / "rgb.keras"
    model.write_bytes(b"not loaded: the version is checked first")
    for name in ("../escaped", "", ".", "a/b"):
        assert_usage_error(run_tool("export", "--rgb_model", model, "--base_dir", tmp_path / "sm",
                                    f"--name={name}", cwd=tmp_path),
                           f"flag --name={name}: expected one folder name",
                           f"Received: {name!r}")
    version = tmp_path / "sm" / "i3d" / "3"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"mine")
    before = snapshot(tmp_path)
    assert_usage_error(run_tool("export", "--rgb_model", model, "--base_dir", tmp_path / "sm",
                                "--version", "3", cwd=tmp_path),
                       "--version 3 of --name 'i3d' exists", "pass --overwrite to replace it")
    assert snapshot(tmp_path) == before and not (tmp_path / "escaped").exists()


def test_train_refuses_an_unknown_arch_and_a_stream_it_cannot_take_before_any_work(tmp_path):
    out = tmp_path / "run"
    assert_usage_error(run_tool("train", "--arch", "bogus", "--output_dir", out),
                       "flag --arch=bogus", "two_stream_i3d")
    assert_usage_error(run_tool("train", "--arch", "c3d", "--stream", "both", "--output_dir", out),
                       "Received: arch='c3d', stream='both'")
    assert not out.exists()


def test_train_names_the_default_run_folder_it_trains_into(tmp_path):
    from i3d_keras.tasks import training

    # A finished run in the default folder: train says where it is and stops.
    config = training.TrainConfig(arch="c3d").resolved()
    run_dir = tmp_path / config.output_dir
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    (run_dir / "done.json").write_text(json.dumps({"output_dir": config.output_dir}))
    run = run_tool("train", "--arch", "c3d", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr.splitlines()[0] == ("train: the rgb stream of c3d on the built-in motion "
                                          "dataset, into runs/c3d_rgb_motion")


def test_train_offline_init_download_is_one_line_exit_1_and_leaves_no_run_folder(tmp_path,
                                                                                   monkeypatch):
    from i3d_keras.data import motion_dataset

    data = tmp_path / "data"
    motion_dataset.write_motion_dataset(data, num_train=4, num_val=2, num_frames=8, size=32)
    # Offline for sure: every download goes to a closed port, into an empty cache.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    for init, what in (("kinetics", "DeepMind's rgb_imagenet checkpoint"),
                       ("imagenet", "TF-slim's ImageNet Inception-V1 checkpoint")):
        out = tmp_path / f"run_{init}"
        run = run_tool("train", "--dataset", data, "--init", init, "--freeze_until", "Mixed_4f",
                       "--frames", "8", "--image_size", "32", "--batch_size", "2",
                       "--mixed_precision", "float32", "--output_dir", out, cwd=tmp_path)
        assert run.returncode == 1, run.stderr[-3000:]
        assert "Traceback" not in run.stderr and "bug" not in run.stderr, run.stderr[-3000:]
        errors = [line for line in run.stderr.splitlines() if ": error: " in line]
        assert errors == [run.stderr.strip().splitlines()[-1]], run.stderr
        assert f"train: error: could not download {what}" in errors[0]
        assert "--init" in errors[0]
        assert not out.exists()


def test_predict_with_a_litert_file_names_its_own_precision(files, tmp_path):
    pytest.importorskip("ai_edge_litert", reason="needs the standalone ai-edge-litert runtime")
    import keras

    from i3d_keras.export import exporters

    path = exporters.export_tflite(keras.models.load_model(files["rgb"]), tmp_path / "rgb.tflite",
                                   frames=8, image_size=32)
    run = run_tool("predict", "--model", path, "--mixed_precision", "bfloat16",
                   "--num_frames", "8", files["clips"][0])
    assert run.returncode == 0, run.stderr[-3000:]
    # --mixed_precision is Keras' policy: the file computes as it was exported.
    assert "precision: the LiteRT file's own" in run.stderr
    assert "bfloat16" not in run.stderr


def test_predict_short_side_matches_the_training_data_and_is_checked(files, tmp_path):
    # A model trained on data prepared with --short_side 48 sees frames at that scale.
    results = {}
    for short_side in ("48", "256"):
        out = tmp_path / f"{short_side}.json"
        run = run_tool("predict", "--model", files["rgb"], "--mixed_precision", "float32",
                       "--short_side", short_side, "--json", out, files["clips"][0])
        assert run.returncode == 0, run.stderr[-3000:]
        results[short_side] = json.loads(out.read_text())
    assert results["48"] != results["256"]  # another part of the scene, another scale
    assert_usage_error(run_tool("predict", "--model", files["rgb"], "--short_side", "20",
                                files["clips"][0]),
                       "--short_side must be at least the centre crop, 32 px",
                       "Received: --short_side=20", alone=False)
