"""Converts a video dataset to I3D TFRecord shards (RGB JPEG frames, optional flow).

Decodes at 25 fps with short side 256 (Carreira & Zisserman, CVPR 2017),
optionally computes flow, and writes `NAME_SPLIT-0000i-of-0000n.tfrecord`
shards plus `NAME.metadata.json` and `NAME.report.json` into --output_dir, in
parallel (one process per core), with a progress line and ETA. Rerunning the
same command resumes (finished shards are skipped). Videos that fail (missing,
unreadable, zero frames, clip outside the video, ...) are listed in the final
report with their reason and skipped.

`--layout motion` writes the built-in motion dataset (i3d_keras.data.motion_dataset:
ten classes that differ only in time) in the same format, by default with the
recipe tools/train.py trains on (1000 training and 200 validation clips of 8
frames x 32x32, seed 0, analytic flow): the clips of `tools/train.py` as shards.

Results (the summary) go to standard output, progress and messages to standard
error; --verbose shows the libraries' logs (e.g. FFmpeg's complaints, which are
otherwise part of a failed video's reason). Exit status: 0 all videos converted,
1 some failed, 2 a usage error.

Usage:
  # The built-in motion dataset with the training recipe (no download):
  python tools/prepare_dataset.py --layout motion --output_dir data/motion
  # UCF101, official split 1 (ucfTrainTestlist/ in or beside the root):
  python tools/prepare_dataset.py --layout ucf101 --root data/UCF-101 \
      --split 1 --output_dir data/ucf101_s1 --flow tvl1
  # HMDB51, split 2:
  python tools/prepare_dataset.py --layout hmdb51 --root data/hmdb51 \
      --splits_dir data/testTrainMulti_7030_splits --split 2 --output_dir data/hmdb_s2
  # Kinetics-400 validation from the official CSV:
  python tools/prepare_dataset.py --layout kinetics --root data/k400/val \
      --csv data/k400/validate.csv --output_dir data/k400_val
  # A folder per class, or a CSV manifest (path,label[,start,end][,split]):
  python tools/prepare_dataset.py --layout folder --root my_videos --output_dir out
  python tools/prepare_dataset.py --layout csv --csv manifest.csv --output_dir out
  # The same conversion as an Apache Beam pipeline (pip install apache-beam):
  python tools/prepare_dataset.py --layout folder --root my_videos --output_dir out \
      --beam -- --runner=DirectRunner
"""

from pathlib import Path

from i3d_keras.utils import console  # noqa: E402

console.setup()  # before TensorFlow and OpenCV load: quiet unless --verbose

from absl import flags  # noqa: E402

from i3d_keras.utils import outputs  # noqa: E402

_LAYOUT = flags.DEFINE_enum("layout", None, ["ucf101", "hmdb51", "kinetics", "folder", "csv",
                                            "motion"], "Dataset layout (motion: the "
                            "built-in motion dataset, generated).")
_ROOT = flags.DEFINE_string("root", None, "Dataset root folder.")
_SPLITS_DIR = flags.DEFINE_string("splits_dir", None, "UCF101/HMDB51 split files folder.")
_SPLIT = flags.DEFINE_integer("split", 1, "UCF101/HMDB51 official split (1, 2 or 3).",
                               lower_bound=1, upper_bound=3)
_CSV = flags.DEFINE_string("csv", None, "Kinetics CSV or CSV manifest.")
_OUTPUT = flags.DEFINE_string("output_dir", None, "Where shards and metadata go.")
_NAME = flags.DEFINE_string("name", None, "Dataset name (default: layout, plus split).")
_FLOW = flags.DEFINE_enum("flow", None, ["none", "analytic", "tvl1", "dis", "farneback"],
                          "Also compute and store optical flow with this method (default: "
                          "none; analytic, the exact rendered motion, for --layout motion).")
_FLOW_FORMAT = flags.DEFINE_enum("flow_format", "png", ["png", "jpeg"],
                                 "Flow image format (png is lossless).")
_FPS = flags.DEFINE_float("fps", 25.0, "Decode frame rate.", lower_bound=1e-3)
_SHORT_SIDE = flags.DEFINE_integer("short_side", 256, "Resize the short side to this.",
                                   lower_bound=1)
_JPEG_QUALITY = flags.DEFINE_integer("jpeg_quality", 90, "RGB JPEG quality.", lower_bound=1,
                                     upper_bound=100)
_PER_SHARD = flags.DEFINE_integer("videos_per_shard", 100, "Videos per shard.", lower_bound=1)
_WORKERS = flags.DEFINE_integer("workers", 0, "Worker processes (0: one per core).",
                                lower_bound=0)
_MAX_FRAMES = flags.DEFINE_integer("max_frames", None, "Keep at most this many frames.",
                                   lower_bound=1)
_NUM_TRAIN = flags.DEFINE_integer("num_train", None, "Motion: training clips (default: the "
                                  "training recipe's, 1000).", lower_bound=1)
_NUM_VAL = flags.DEFINE_integer("num_val", None, "Motion: validation clips (default 200).",
                                lower_bound=1)
_FRAMES = flags.DEFINE_integer("frames", None, "Motion: frames per clip (default 8).",
                               lower_bound=1)
_IMAGE_SIZE = flags.DEFINE_integer("image_size", None, "Motion: frame size (default 32).",
                                   lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Motion: random seed (tools/train.py's --seed).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a dataset of the same name in "
                               "--output_dir made with other settings (or, for --layout "
                               "motion or --beam, which cannot resume, any); its old shards "
                               "are deleted.")
_BEAM = flags.DEFINE_bool("beam", False, "Run as an Apache Beam pipeline; arguments after "
                          "`--` go to Beam (e.g. --runner=DirectRunner).")


#: The layouts each layout-specific flag applies to: given with another
#: layout, it would be ignored (a usage error instead).
_APPLIES = {
    "root": ("ucf101", "hmdb51", "kinetics", "folder", "csv"),
    "csv": ("kinetics", "csv"),
    "splits_dir": ("ucf101", "hmdb51"),
    "split": ("ucf101", "hmdb51"),
    **{name: ("motion",) for name in ("num_train", "num_val", "frames", "image_size", "seed")},
    **{name: ("ucf101", "hmdb51", "kinetics", "folder", "csv")
       for name in ("fps", "short_side", "jpeg_quality", "flow_format", "videos_per_shard",
                    "workers", "max_frames", "beam")},
}


def _check_layout_flags():
    ignored = [f"--{name}" for name, layouts in _APPLIES.items()
               if flags.FLAGS[name].present and _LAYOUT.value not in layouts]
    if ignored:
        console.fail(f"{', '.join(ignored)} {'does' if len(ignored) == 1 else 'do'} not apply "
                     f"to --layout {_LAYOUT.value} (see --help). Received: "
                     f"--layout {_LAYOUT.value} with {', '.join(ignored)}")
    if _ROOT.value and _OUTPUT.value and _LAYOUT.value != "motion":
        root, out = (Path(p).expanduser().resolve() for p in (_ROOT.value, _OUTPUT.value))
        if out == root or root in out.parents:
            # The shards would land among the videos (and be listed as a class folder).
            console.fail(f"--output_dir must be outside the videos' --root. Received: "
                         f"--output_dir {_OUTPUT.value!r} in --root {_ROOT.value!r}")


def _motion(argv):
    """--layout motion: the built-in dataset with the training recipe."""
    if len(argv) > 1:
        console.fail(f"unexpected arguments {argv[1:]}")
    flow = _FLOW.value or "analytic"
    from i3d_keras.data import motion_dataset as md  # noqa: PLC0415

    num_train = md.DEFAULT_NUM_TRAIN if _NUM_TRAIN.value is None else _NUM_TRAIN.value
    num_val = md.DEFAULT_NUM_VAL if _NUM_VAL.value is None else _NUM_VAL.value
    frames = _FRAMES.value or md.DEFAULT_NUM_FRAMES
    size = _IMAGE_SIZE.value or md.DEFAULT_SIZE
    name = _NAME.value or "motion"
    from i3d_keras.data import records  # noqa: PLC0415

    metadata = outputs.check_output_dir(_OUTPUT.value) / (name + records.METADATA_SUFFIX)
    if metadata.exists() and not _OVERWRITE.value:
        console.fail(f"--output_dir {_OUTPUT.value!r} holds the dataset {name!r} already "
                     f"({metadata.name}); pass --overwrite to replace it, or choose another "
                     "--output_dir or --name")
    console.info(f"prepare_dataset: the built-in motion dataset, "
                 f"{console.plural(num_train, 'training clip')} and "
                 f"{console.plural(num_val, 'validation clip')} of "
                 f"{console.plural(frames, 'frame')} x {size}x{size}, seed {_SEED.value}, flow "
                 f"{flow}; writing to {_OUTPUT.value}")
    try:
        meta_path = md.write_motion_dataset(
            _OUTPUT.value, num_train=num_train, num_val=num_val, num_frames=frames, size=size,
            seed=_SEED.value, with_flow=flow != "none",
            flow_method="analytic" if flow == "none" else flow, name=name)
    except ValueError as error:
        console.fail(str(error))
    import json  # noqa: PLC0415

    meta = json.loads(open(meta_path).read())
    print(f"Wrote {console.plural(num_train + num_val, 'clip')} "
          f"({', '.join(f'{k}: {v}' for k, v in meta['counts'].items())}) "
          f"to {_OUTPUT.value}")
    print(f"Metadata: {meta_path}")


def main(argv):
    if not _LAYOUT.value or not _OUTPUT.value:
        console.fail("--layout and --output_dir are required (see --help)")
    _check_layout_flags()
    outputs.check_output_dir(_OUTPUT.value, inputs=[_CSV.value])
    for flag, value, kind in (("root", _ROOT.value, "folder"), ("csv", _CSV.value, "file"),
                              ("splits_dir", _SPLITS_DIR.value, "folder")):
        if value:
            outputs.check_input_path(value, flag=flag, kind=kind)
    if _LAYOUT.value == "motion":
        return _motion(argv)
    from i3d_keras.data import datasets  # noqa: PLC0415

    layout = _LAYOUT.value
    if layout in ("kinetics", "csv") and not _CSV.value:
        console.fail(f"--layout {layout} needs --csv")
    if layout != "csv" and not _ROOT.value:
        console.fail(f"--layout {layout} needs --root")
    try:
        listing = datasets.list_dataset(layout, _ROOT.value, splits_dir=_SPLITS_DIR.value,
                                        split=_SPLIT.value, csv_path=_CSV.value)
    except (datasets.DatasetLayoutError, ValueError, OSError) as error:
        console.fail(f"{error}")
    name = _NAME.value or (f"{layout}_split{_SPLIT.value}" if layout in ("ucf101", "hmdb51")
                           else layout)
    if _FLOW.value == "analytic":
        console.fail("--flow analytic is the motion dataset's own; for videos use tvl1, dis "
                     "or farneback")
    flow = None if _FLOW.value in (None, "none") else _FLOW.value
    console.info(f"prepare_dataset: {console.plural(len(listing.entries), 'video')}, "
                 f"{console.plural(len(listing.classes), 'class', 'classes')}, splits "
                 f"{listing.counts()}; writing to {_OUTPUT.value}")
    common = dict(name=name, flow_method=flow, fps=_FPS.value, short_side=_SHORT_SIDE.value,
                  jpeg_quality=_JPEG_QUALITY.value, flow_format=_FLOW_FORMAT.value,
                  videos_per_shard=_PER_SHARD.value, max_frames=_MAX_FRAMES.value)
    if _BEAM.value:
        try:
            from i3d_keras.data import beam_pipeline  # noqa: PLC0415
            report = beam_pipeline.run(listing, _OUTPUT.value, pipeline_args=argv[1:],
                                       overwrite=_OVERWRITE.value, **common)
        except ImportError as error:
            console.fail(f"--beam needs Apache Beam ({error}); pip install apache-beam")
    else:
        if len(argv) > 1:
            console.fail(f"unexpected arguments {argv[1:]}")
        report = datasets.prepare_dataset(listing, _OUTPUT.value, num_workers=_WORKERS.value,
                                          overwrite=_OVERWRITE.value, **common)
    print(report.summary())
    if report.converted == 0:
        console.fail("no video could be converted (see the reasons above)", console.EXIT_FAILED)
    if report.failed:
        raise SystemExit(console.EXIT_FAILED)


if __name__ == "__main__":
    console.run(main, interrupted="interrupted; rerun the same command to resume",
                arguments=True)
