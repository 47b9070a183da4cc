"""Dataset layouts and their conversion to TFRecord shards.

Listing functions turn a dataset on disk into a `Listing`: a list of
`VideoEntry(path, label, label_name, split, start, end, video_id)` plus the
class names. Supported layouts (Carreira & Zisserman, CVPR 2017 evaluate on
UCF-101, HMDB-51 and Kinetics):

  * `ucf101`: a folder per class plus the official `classInd.txt`,
    `trainlist0{1,2,3}.txt` and `testlist0{1,2,3}.txt`;
  * `hmdb51`: a folder per class plus the official
    `<class>_test_split{1,2,3}.txt` files (1 = train, 2 = test, 0 = unused);
  * `kinetics`: Kinetics-400/600/700 CSVs (label, youtube_id, time_start,
    time_end, split) with files named `{youtube_id}_{start:06d}_{end:06d}.mp4`
    (already trimmed) or `{youtube_id}.mp4` (cut to [start, end]), flat or in
    folders per class;
  * `folder_per_class`: `root/<class>/<video>` (optionally `root/<split>/<class>/`);
  * `csv_manifest`: a CSV with `path, label[, start, end][, split]`.

`prepare_dataset` decodes (25 fps, short side 256), optionally computes flow,
and writes `NAME_SPLIT-00000-of-000NN.tfrecord` shards (see
`i3d_keras.data.records`) with worker processes, a progress line with ETA, per-shard
done markers (a rerun skips finished shards) and a final report. A video that
fails is reported with its reason and skipped: converted + failed == listed.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import random
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from i3d_keras.data import parallel
from i3d_keras.data import flow as flow_lib
from i3d_keras.data import records
from i3d_keras.data.video import VIDEO_EXTENSIONS, read_video
from i3d_keras.utils import outputs, textfiles

PathLike = Union[str, os.PathLike]

LAYOUTS = ("ucf101", "hmdb51", "kinetics", "folder", "csv")
_SPLIT_FOLDERS = ("train", "training", "val", "validation", "valid", "test", "testing")


class DatasetLayoutError(ValueError):
    """The dataset on disk does not match the expected layout."""


def _read_text(path: Path, what: str) -> str:
    """A listing file's text; `DatasetLayoutError` naming it when it is not text."""
    try:
        return textfiles.read_text_file(path)
    except textfiles.NotTextError as error:
        raise DatasetLayoutError(f"Expected the {what} '{path}' to be UTF-8 text. Received: "
                                 f"binary data ({error.size} bytes)") from None


@dataclasses.dataclass(frozen=True)
class VideoEntry:
    """One video (or a [start, end) clip of one) to convert."""

    path: str
    label: int
    label_name: str
    split: str = ""
    start: Optional[float] = None
    end: Optional[float] = None
    video_id: str = ""

    def __post_init__(self):
        if not self.video_id:
            vid = Path(self.path).stem
            if self.start is not None or self.end is not None:
                vid += f"_{int(self.start or 0):06d}_{int(self.end or 0):06d}"
            object.__setattr__(self, "video_id", vid)


@dataclasses.dataclass
class Listing:
    """The videos of a dataset and its class names (label i = classes[i])."""

    entries: List[VideoEntry]
    classes: List[str]

    def split(self, name: str) -> List[VideoEntry]:
        return [e for e in self.entries if e.split == name]

    def counts(self) -> Dict[str, int]:
        return dict(Counter(e.split for e in self.entries))


def _is_video(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS


def _require_dir(path: PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise DatasetLayoutError(f"{what} folder '{path}' does not exist or is not a folder")
    return path


def _require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetLayoutError(f"Missing {what}: expected the file '{path}'")
    return path


def _find_case_insensitive(root: Path, rel: str) -> Path:
    """root/rel, tolerating case differences (UCF101's HandstandPushups folder
    holds v_HandStandPushups_* files). Returns the exact path if not found."""
    exact = root / rel
    if exact.exists():
        return exact
    current = root
    for part in Path(rel).parts:
        if not current.is_dir():
            return exact
        match = [c for c in current.iterdir() if c.name.lower() == part.lower()]
        if not match:
            return exact
        current = match[0]
    return current


def _locate_split_dir(root: Path, splits_dir: Optional[PathLike], marker: str,
                      candidates: Sequence[str]) -> Path:
    if splits_dir is not None:
        return _require_dir(splits_dir, "Split files")
    for c in candidates:
        for base in (root, root.parent):
            d = base / c
            if d.is_dir() and any(d.glob(marker)):
                return d
    if any(root.glob(marker)):
        return root
    raise DatasetLayoutError(
        f"Could not find the split files ({marker}) in {list(candidates)} under '{root}' "
        f"or its parent; pass splits_dir")


def _check_split(split: int) -> None:
    if split not in (1, 2, 3):
        raise ValueError(f"`split` must be 1, 2 or 3. Received: split={split}")


def ucf101(root: PathLike, splits_dir: Optional[PathLike] = None, split: int = 1) -> Listing:
    """Lists UCF-101 with its official train/test split `split` (1-3).

    Args:
      root: folder with one sub-folder per class (UCF-101/ApplyEyeMakeup/...).
      splits_dir: folder of classInd.txt, trainlist0N.txt, testlist0N.txt
        (default: `ucfTrainTestlist` in root or beside it).
      split: 1, 2 or 3.

    Returns:
      Listing with splits "train" and "test"; labels follow classInd.txt
      (0-based). Paths named in the split files but absent on disk are kept,
      so that conversion reports them.

    Raises:
      DatasetLayoutError: missing root or split files.
    """
    _check_split(split)
    root = _require_dir(root, "UCF101")
    sdir = _locate_split_dir(root, splits_dir, "trainlist0*.txt", ["ucfTrainTestlist"])
    train_file = _require_file(sdir / f"trainlist0{split}.txt", "UCF101 train split file")
    test_file = _require_file(sdir / f"testlist0{split}.txt", "UCF101 test split file")
    class_file = sdir / "classInd.txt"
    if class_file.is_file():
        classes = [line.split()[1] for line in _read_text(class_file, "UCF101 class "
                                                          "file").splitlines()
                   if line.strip()]
    else:  # classInd.txt's order is the case-insensitive alphabetical one
        classes = sorted({line.split("/")[0] for line in
                          _read_text(train_file, "UCF101 train split file").splitlines()
                          if line.strip()}, key=str.lower)
    index = {c.lower(): i for i, c in enumerate(classes)}
    entries = []
    for split_name, path in (("train", train_file), ("test", test_file)):
        for n, line in enumerate(_read_text(path, "UCF101 split file").splitlines(), 1):
            if not line.strip():
                continue
            rel = line.split()[0].replace("\\", "/")
            cls = rel.split("/")[0]
            if cls.lower() not in index:
                raise DatasetLayoutError(
                    f"{path.name}:{n}: class '{cls}' is not in classInd.txt. Received: {line!r}")
            label = index[cls.lower()]
            entries.append(VideoEntry(str(_find_case_insensitive(root, rel)), label,
                                      classes[label], split_name))
    return Listing(entries, classes)


def hmdb51(root: PathLike, splits_dir: Optional[PathLike] = None, split: int = 1) -> Listing:
    """Lists HMDB-51 with its official split `split` (1-3).

    The split files `<class>_test_split<N>.txt` mark each video 1 (train),
    2 (test) or 0 (unused; left out).

    Args:
      root: folder with one sub-folder per class.
      splits_dir: folder of the split files (default: `testTrainMulti_7030_splits`
        or `splits` in root or beside it).
      split: 1, 2 or 3.

    Raises:
      DatasetLayoutError: missing root or split files.
    """
    _check_split(split)
    root = _require_dir(root, "HMDB51")
    sdir = _locate_split_dir(root, splits_dir, f"*_test_split{split}.txt",
                             ["testTrainMulti_7030_splits", "splits", "test_train_splits"])
    files = sorted(sdir.glob(f"*_test_split{split}.txt"))
    if not files:
        raise DatasetLayoutError(f"No '*_test_split{split}.txt' files in '{sdir}'")
    suffix = f"_test_split{split}.txt"
    classes = sorted(f.name[:-len(suffix)] for f in files)
    entries = []
    for label, cls in enumerate(classes):
        path = sdir / f"{cls}{suffix}"
        for n, line in enumerate(_read_text(path, "HMDB51 split file").splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise DatasetLayoutError(
                    f"{path.name}:{n}: expected '<video> <0|1|2>'. Received: {line!r}")
            if parts[1] == "0":
                continue
            entries.append(VideoEntry(str(root / cls / parts[0]), label, cls,
                                      "train" if parts[1] == "1" else "test"))
    return Listing(entries, classes)


def _index_videos(root: Path) -> Dict[str, Path]:
    """Maps file stems to paths for every video under root (first one wins)."""
    index: Dict[str, Path] = {}
    for dirpath, _, filenames in os.walk(root):
        for f in sorted(filenames):
            p = Path(dirpath) / f
            if p.suffix.lower() in VIDEO_EXTENSIONS:
                index.setdefault(p.stem, p)
    return index


def kinetics(root: PathLike, csv_path: PathLike, classes: Optional[Sequence[str]] = None,
             splits: Optional[Sequence[str]] = None) -> Listing:
    """Lists a Kinetics-400/600/700 split from its official CSV.

    The CSV has a header with at least youtube_id, time_start, time_end and
    (except unlabelled test sets) label; an optional split column. For each row
    a video is looked up anywhere under root as
    `{youtube_id}_{start:06d}_{end:06d}.*` (already trimmed: used whole) or
    `{youtube_id}.*` (a full video: cut to [time_start, time_end)). Rows with
    no file are kept with the expected trimmed path so conversion reports them.

    Args:
      root: folder holding the videos (flat or in class / split folders).
      csv_path: the CSV file.
      classes: class names in label order (e.g. the official label map); by
        default the sorted labels of the CSV.
      splits: keep only these split values (default: all).

    Raises:
      DatasetLayoutError: missing files or columns.
    """
    root = _require_dir(root, "Kinetics")
    csv_path = _require_file(Path(csv_path), "Kinetics CSV")
    rows = list(csv.DictReader(io.StringIO(_read_text(csv_path, "Kinetics CSV"), newline="")))
    needed = {"youtube_id", "time_start", "time_end"}
    if not rows or not needed <= set(rows[0]):
        raise DatasetLayoutError(
            f"'{csv_path}' must have a header with {sorted(needed)} (and label, split). "
            f"Received columns: {sorted(rows[0]) if rows else 'none (empty file)'}")
    if splits is not None:
        rows = [r for r in rows if r.get("split", "") in set(splits)]
    if classes is None:
        classes = sorted({r["label"].strip() for r in rows if r.get("label", "").strip()})
    classes = list(classes)
    label_index = {c: i for i, c in enumerate(classes)}
    index = _index_videos(root)
    entries = []
    for r in rows:
        yid = r["youtube_id"].strip()
        start, end = int(float(r["time_start"])), int(float(r["time_end"]))
        name = r.get("label", "").strip()
        label = label_index.get(name, -1)
        if name and label < 0:
            raise DatasetLayoutError(f"Label '{name}' of {yid} is not among the classes")
        trimmed = f"{yid}_{start:06d}_{end:06d}"
        split = r.get("split", "").strip()
        if trimmed in index:
            entries.append(VideoEntry(str(index[trimmed]), label, name, split,
                                      video_id=trimmed))
        elif yid in index:
            entries.append(VideoEntry(str(index[yid]), label, name, split, float(start),
                                      float(end), video_id=trimmed))
        else:
            entries.append(VideoEntry(str(root / name.replace(" ", "_") / f"{trimmed}.mp4"),
                                      label, name, split, video_id=trimmed))
    return Listing(entries, classes)


def folder_per_class(root: PathLike) -> Listing:
    """Lists `root/<class>/<videos>` (any depth below the class folder).

    If root's sub-folders are split names (train, val, test, ...), each holding
    class folders, entries get that split; otherwise the split is "".

    Raises:
      DatasetLayoutError: missing root or no videos found.
    """
    root = _require_dir(root, "Dataset")
    subdirs = sorted(d for d in root.iterdir() if d.is_dir())
    if subdirs and all(d.name.lower() in _SPLIT_FOLDERS for d in subdirs):
        groups = [(d.name.lower(), d) for d in subdirs]
    else:
        groups = [("", root)]
    found: List[Tuple[str, str, Path]] = []
    for split, base in groups:
        for cls_dir in sorted(d for d in base.iterdir() if d.is_dir()):
            for p in sorted(cls_dir.rglob("*")):
                if _is_video(p):
                    found.append((split, cls_dir.name, p))
    if not found:
        raise DatasetLayoutError(
            f"No videos found under '{root}' in class sub-folders (looked for "
            f"{', '.join(VIDEO_EXTENSIONS)})")
    classes = sorted({c for _, c, _ in found})
    index = {c: i for i, c in enumerate(classes)}
    entries = [VideoEntry(str(p), index[c], c, split) for split, c, p in found]
    return Listing(entries, classes)


def csv_manifest(csv_path: PathLike, root: Optional[PathLike] = None,
                 classes: Optional[Sequence[str]] = None) -> Listing:
    """Lists the videos of a CSV manifest: `path, label[, start, end][, split]`.

    A header row naming the columns is optional (without one, the column order
    above is assumed). Relative paths are resolved against `root` (default: the
    CSV's folder). Labels may be class names or integer indices.

    Raises:
      DatasetLayoutError: missing file, empty manifest or malformed rows.
    """
    csv_path = _require_file(Path(csv_path), "CSV manifest")
    base = Path(root) if root is not None else csv_path.parent
    rows = [r for r in csv.reader(io.StringIO(_read_text(csv_path, "CSV manifest"), newline=""))
            if r and any(c.strip() for c in r)]
    if rows and {"path", "label"} <= {c.strip().lower() for c in rows[0]}:
        header = [c.strip().lower() for c in rows[0]]
        rows = rows[1:]
    else:
        header = ["path", "label", "start", "end", "split"]
    if not rows:
        raise DatasetLayoutError(f"CSV manifest '{csv_path}' lists no videos")
    parsed = []
    for n, row in enumerate(rows, 2 if header else 1):
        rec = {k: (row[i].strip() if i < len(row) else "") for i, k in enumerate(header)}
        if not rec.get("path") or rec.get("label", "") == "":
            raise DatasetLayoutError(
                f"{csv_path.name}: row {n} needs at least path and label. Received: {row}")
        try:
            start = float(rec["start"]) if rec.get("start") else None
            end = float(rec["end"]) if rec.get("end") else None
        except ValueError:
            raise DatasetLayoutError(
                f"{csv_path.name}: row {n}: start/end must be seconds. Received: {row}") from None
        parsed.append((rec["path"], rec["label"], start, end, rec.get("split", "")))
    labels = [p[1] for p in parsed]
    if classes is None:
        if all(lbl.lstrip("-").isdigit() for lbl in labels):
            n_cls = max(int(lbl) for lbl in labels) + 1
            classes = [str(i) for i in range(n_cls)]
        else:
            classes = sorted(set(labels))
    classes = list(classes)
    index = {c: i for i, c in enumerate(classes)}
    entries = []
    for path, lbl, start, end, split in parsed:
        label = index.get(lbl, int(lbl) if lbl.lstrip("-").isdigit() else None)
        if label is None:
            raise DatasetLayoutError(f"Label '{lbl}' of '{path}' is not among the classes")
        p = Path(path)
        entries.append(VideoEntry(str(p if p.is_absolute() else base / p), label,
                                  classes[label] if 0 <= label < len(classes) else str(label),
                                  split, start, end))
    return Listing(entries, classes)


def list_dataset(layout: str, root: Optional[PathLike] = None, **kwargs) -> Listing:
    """Dispatches to a listing function by layout name (see `LAYOUTS`).

    "ucf101"/"hmdb51": root, splits_dir, split; "kinetics": root, csv_path,
    classes, splits; "folder": root; "csv": csv_path, root.
    """
    if layout == "ucf101":
        return ucf101(root, kwargs.get("splits_dir"), kwargs.get("split", 1))
    if layout == "hmdb51":
        return hmdb51(root, kwargs.get("splits_dir"), kwargs.get("split", 1))
    if layout == "kinetics":
        return kinetics(root, kwargs["csv_path"], kwargs.get("classes"), kwargs.get("splits"))
    if layout == "folder":
        return folder_per_class(root)
    if layout == "csv":
        return csv_manifest(kwargs["csv_path"], root, kwargs.get("classes"))
    raise ValueError(f"`layout` must be one of {LAYOUTS}. Received: layout={layout!r}")


# ----------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------

@dataclasses.dataclass
class PrepareReport:
    """What `prepare_dataset` did. converted + len(failed) == total."""

    total: int = 0
    converted: int = 0
    failed: List[Tuple[str, str]] = dataclasses.field(default_factory=list)
    shards_written: int = 0
    shards_resumed: int = 0
    seconds: float = 0.0
    counts: Dict[str, int] = dataclasses.field(default_factory=dict)
    metadata_path: str = ""
    report_path: str = ""

    def summary(self) -> str:
        def n_(count, noun):
            return f"{count} {noun}{'' if count == 1 else 's'}"

        lines = [f"Converted {self.converted} of {n_(self.total, 'video')} "
                 f"({len(self.failed)} failed) in {self.seconds:.1f} s; "
                 f"{n_(self.shards_written, 'shard')} written, {self.shards_resumed} already "
                 "done."]
        for split, n in sorted(self.counts.items()):
            lines.append(f"  {split}: {n_(n, 'video')}")
        if self.failed:
            lines.append("Failed videos (skipped):")
            lines += [f"  {path}: {reason}" for path, reason in self.failed]
        if self.metadata_path:
            lines.append(f"Metadata: {self.metadata_path}")
        if self.report_path:
            lines.append(f"Report: {self.report_path}")
        return "\n".join(lines)


def _convert_entry(args: Tuple[VideoEntry, Dict[str, Any]]) -> Dict[str, Any]:
    """Worker: decode one video (+ flow) and encode its frames (no TF runtime)."""
    entry, opts = args
    if opts.get("cv2_threads"):
        import cv2
        cv2.setNumThreads(opts["cv2_threads"])
    frames = read_video(entry.path, fps=opts["fps"], short_side=opts["short_side"],
                        start=entry.start, end=entry.end, max_frames=opts.get("max_frames"))
    flow = None
    if opts.get("flow_method"):
        flow = flow_lib.compute_flow(frames, opts["flow_method"])
    encoded = records.encode_video(frames, flow, opts["jpeg_quality"], opts["flow_format"])
    return encoded


def _entry_example(entry: VideoEntry, encoded: Dict[str, Any], opts: Dict[str, Any]) -> bytes:
    return records.make_sequence_example(
        encoded, entry.label, entry.label_name, entry.video_id,
        opts["fps"] or 0.0, entry.split, opts.get("flow_method") or "").SerializeToString()


def _split_key(split: str) -> str:
    return split or "all"


def plan_shards(entries: Sequence[VideoEntry], name: str, videos_per_shard: int = 100,
                seed: int = 0) -> Dict[str, List[List[VideoEntry]]]:
    """Assigns entries to shards: {shard file name: entries}, per split.

    Entries of a split are shuffled with `seed` (so each shard mixes classes)
    and dealt round-robin into ceil(n / videos_per_shard) shards named
    `NAME_SPLIT-0000i-of-0000n.tfrecord`. Deterministic, which is what lets a
    rerun resume.
    """
    if videos_per_shard < 1:
        raise ValueError(f"`videos_per_shard` must be >= 1. Received: {videos_per_shard}")
    by_split: Dict[str, List[VideoEntry]] = defaultdict(list)
    for e in entries:
        by_split[_split_key(e.split)].append(e)
    plan = {}
    for split, items in sorted(by_split.items()):
        items = list(items)
        random.Random(seed).shuffle(items)
        n = max(1, -(-len(items) // videos_per_shard))
        for i in range(n):
            plan[records.shard_filename(f"{name}_{split}", i, n)] = items[i::n]
    return plan


def _shard_split(name: str, shard: str) -> str:
    """The split of a shard file name of `plan_shards` (`NAME_SPLIT-0000i-of-0000n...`)."""
    return shard[len(name) + 1:].rsplit("-", 3)[0]


def _digest(value) -> str:
    """A short hash of a JSON-able value (a list of videos, of classes)."""
    import hashlib  # noqa: PLC0415

    return hashlib.sha256(json.dumps(value, default=str).encode()).hexdigest()[:16]


def entries_and_classes(listing: Union[Listing, Sequence[VideoEntry]],
                        classes: Optional[Sequence[str]] = None,
                        flow_method: Optional[str] = None
                        ) -> Tuple[List[VideoEntry], List[str]]:
    """The videos to convert and the class names, label `i` named by `classes[i]`.

    Raises:
        DatasetLayoutError: no videos.
        ValueError: an unknown `flow_method`.
    """
    if isinstance(listing, Listing):
        entries, classes = list(listing.entries), list(classes or listing.classes)
    else:
        entries = list(listing)
        classes = list(classes) if classes is not None else sorted(
            {e.label_name for e in entries}, key=lambda c: next(
                e.label for e in entries if e.label_name == c))
    if not entries:
        raise DatasetLayoutError("No videos to convert (the listing is empty)")
    if flow_method is not None and flow_method not in flow_lib.FLOW_METHODS:
        raise ValueError(f"`flow_method` must be None or one of {flow_lib.FLOW_METHODS}. "
                         f"Received: flow_method={flow_method!r}")
    return entries, classes


def claim_output_dir(output_dir: PathLike, name: str, entries: Sequence[VideoEntry],
                     classes: Sequence[str], settings: Dict[str, Any],
                     plan: Dict[str, Any], *, overwrite: bool = False,
                     resumable: bool = True) -> Tuple[Path, bool]:
    """Checks that dataset `name` may be written to `output_dir`, before any work.

    The settings that change the shards (`settings`, and the videos and
    classes) are compared with `NAME.settings.json` (`outputs.SettingsRecord`):
    the same settings resume (when `resumable`), other settings or existing
    shards that cannot be resumed are refused unless `overwrite`. Converting
    again, the old shards the new `plan` does not write are deleted
    (`records.stale_shards`): a split's `file_pattern` would read them too.

    Returns:
        `(output_dir, overwrite)`: the folder (created) and whether every
        planned shard is to be written again.

    Raises:
        outputs.OutputError: `output_dir` is a file, or holds this dataset
            made with other settings (or, not `resumable`, at all) and
            `overwrite` is False.
    """
    output_dir = outputs.check_output_dir(output_dir)
    settings = dict(settings, classes=_digest(list(classes)), videos=_digest(
        [(str(e.path), e.label, e.split, e.start, e.end) for e in entries]))
    record = outputs.SettingsRecord(output_dir, f"{name}.settings.json")
    splits = {_shard_split(name, shard) for shard in plan}
    # This dataset's own files only: another dataset may share the folder,
    # even one whose name starts with this one's ("ucf" and "ucf_small").
    existing = output_dir.is_dir() and bool(
        records.stale_shards(output_dir, name, splits, keep=())
        or records.metadata_path(output_dir, name).exists())
    if not resumable and existing and not overwrite:
        raise outputs.OutputError(
            f"--output_dir {str(output_dir)!r} already holds dataset {name!r}, and this "
            "conversion cannot resume; pass --overwrite to convert it again, or choose "
            "another --output_dir or --name")
    if record.check(settings, has_outputs=existing, overwrite=overwrite) == "recompute":
        overwrite = True
    output_dir.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for path in records.stale_shards(output_dir, name, splits, keep=plan):
            path.unlink()
    return output_dir, overwrite


def prepare_dataset(listing: Union[Listing, Sequence[VideoEntry]], output_dir: PathLike,
                    name: str, classes: Optional[Sequence[str]] = None,
                    flow_method: Optional[str] = None, fps: Optional[float] = 25.0,
                    short_side: Optional[int] = 256, jpeg_quality: int = 90,
                    flow_format: str = "png", videos_per_shard: int = 100,
                    num_workers: int = 0, max_frames: Optional[int] = None,
                    progress: bool = True, seed: int = 0,
                    mp_context: Optional[str] = "spawn", overwrite: bool = False
                    ) -> PrepareReport:
    """Converts videos to TFRecord shards, in parallel and resumably.

    Shards are written atomically (temporary name, then rename) and each gets
    a `<shard>.done.json` marker listing its converted and failed videos; a
    rerun with the same inputs skips shards whose marker exists. The settings
    that change the shards (the videos and classes, decoding, image formats,
    flow, sharding) are recorded in `NAME.settings.json`; a rerun with other
    settings is refused before any work unless `overwrite`, which converts
    everything again. A video that cannot be decoded (missing, unreadable,
    zero frames, clip outside the video, ...) is listed in the report with its
    reason and skipped.

    Args:
      listing: a `Listing` or a list of `VideoEntry`.
      output_dir: destination folder (created).
      name: dataset name, prefix of the shard and metadata files.
      classes: class names (default: the listing's).
      flow_method: None (RGB only) or "tvl1", "dis", "farneback".
      fps: decode frame rate (paper: 25).
      short_side: decode short side (paper: 256).
      jpeg_quality: RGB JPEG quality.
      flow_format: "png" (lossless) or "jpeg".
      videos_per_shard: target videos per shard.
      num_workers: processes; 0 = one per core, 1 = in this process.
      max_frames: keep at most this many frames per video.
      progress: print a progress line with ETA to stderr.
      seed: shuffling of videos into shards.
      mp_context: multiprocessing start method.
      overwrite: convert everything again, also over shards made with other
        settings.

    Returns:
      A `PrepareReport` (also written to `NAME.report.json`).

    Raises:
      DatasetLayoutError: nothing to convert.
      outputs.OutputError: `output_dir` is a file, or holds this dataset made
        with other settings (and `overwrite` is False).
    """
    t0 = time.monotonic()
    entries, classes = entries_and_classes(listing, classes, flow_method)
    if flow_format not in records.FLOW_FORMATS:
        raise ValueError(f"`flow_format` must be one of {records.FLOW_FORMATS}. "
                         f"Received: flow_format={flow_format!r}")
    settings = {"fps": fps, "short_side": short_side, "jpeg_quality": jpeg_quality,
                "flow_format": flow_format, "flow_method": flow_method,
                "max_frames": max_frames, "videos_per_shard": videos_per_shard, "seed": seed}
    plan = plan_shards(entries, name, videos_per_shard, seed)
    output_dir, overwrite = claim_output_dir(output_dir, name, entries, classes, settings,
                                             plan, overwrite=overwrite)
    num_workers = num_workers or parallel.default_num_workers()
    opts = {"fps": fps, "short_side": short_side, "jpeg_quality": jpeg_quality,
            "flow_format": flow_format, "flow_method": flow_method, "max_frames": max_frames,
            "cv2_threads": 1 if num_workers > 1 else 0}
    report = PrepareReport(total=len(entries))
    converted_by_split: Counter = Counter()
    per_class: Dict[str, Counter] = defaultdict(Counter)
    shard_files: Dict[str, List[str]] = defaultdict(list)

    def _record(shard: str, marker: Dict[str, Any]) -> None:
        split = _shard_split(name, shard)
        shard_files[split].append(shard)
        for v in marker["converted"]:
            converted_by_split[split] += 1
            per_class[split][v["label_name"]] += 1
        report.converted += len(marker["converted"])
        report.failed += [tuple(f) for f in marker["failed"]]

    todo: List[Tuple[str, VideoEntry]] = []
    for shard, items in plan.items():
        marker_path = output_dir / (shard + ".done.json")
        if not overwrite and marker_path.is_file() and (output_dir / shard).is_file():
            try:
                marker = json.loads(marker_path.read_text())
                if len(marker["converted"]) + len(marker["failed"]) == len(items):
                    _record(shard, marker)
                    report.shards_resumed += 1
                    continue
            except (ValueError, KeyError):
                pass  # unreadable marker: redo the shard
        todo += [(shard, e) for e in items]
    remaining = Counter(shard for shard, _ in todo)
    bar = parallel.Progress(len(entries), desc=f"prepare[{name}]", enabled=progress)
    bar.update(len(entries) - len(todo), skipped=len(entries) - len(todo))

    writers: Dict[str, Any] = {}
    results: Dict[str, Dict[str, list]] = defaultdict(lambda: {"converted": [], "failed": []})
    import tensorflow as tf  # parent process only; workers never run TF ops

    def _tmp(shard: str) -> Path:
        return output_dir / (shard + f".tmp{os.getpid()}")

    try:
        for i, encoded, error in parallel.parallel_map(
                _convert_entry, [(e, opts) for _, e in todo], num_workers, mp_context):
            shard, entry = todo[i]
            if error is None:
                if shard not in writers:
                    writers[shard] = tf.io.TFRecordWriter(str(_tmp(shard)))
                writers[shard].write(_entry_example(entry, encoded, opts))
                results[shard]["converted"].append({
                    "video_id": entry.video_id, "path": entry.path, "label": entry.label,
                    "label_name": entry.label_name, "num_frames": encoded["num_frames"]})
                bar.update(1)
            else:
                results[shard]["failed"].append([entry.path, error])
                bar.update(1, failed=1)
            remaining[shard] -= 1
            if remaining[shard] == 0:
                if shard not in writers:  # every video failed: an empty shard
                    writers[shard] = tf.io.TFRecordWriter(str(_tmp(shard)))
                writers.pop(shard).close()
                os.replace(_tmp(shard), output_dir / shard)
                marker = results.pop(shard)
                if not any(f[1].startswith(parallel.CRASH_PREFIX) for f in marker["failed"]):
                    # No marker when a worker crashed: a rerun retries the shard.
                    (output_dir / (shard + ".done.json")).write_text(
                        json.dumps(marker, indent=1))
                _record(shard, marker)
                report.shards_written += 1
    finally:
        for shard, w in writers.items():  # interrupted: drop partial shards
            w.close()
            _tmp(shard).unlink(missing_ok=True)
        bar.close()

    report.counts = dict(converted_by_split)
    report.seconds = time.monotonic() - t0
    splits_meta = {}
    for split in sorted(shard_files):
        n = len(shard_files[split])
        splits_meta[split] = {
            "num_videos": converted_by_split[split],
            "num_shards": n,
            "file_pattern": records.shard_pattern(f"{name}_{split}"),
            "videos_per_class": dict(sorted(per_class[split].items())),
        }
    metadata = {
        "name": name,
        "classes": classes,
        "num_classes": len(classes),
        "counts": dict(converted_by_split),
        "splits": splits_meta,
        "num_failed": len(report.failed),
        "preprocessing": {
            "decoder": "OpenCV (FFmpeg backend)",
            "fps": fps,
            "resampling": "nearest-frame timestamps",
            "short_side": short_side,
            "resize": "bilinear (cv2.INTER_LINEAR)",
            "rgb_encoding": f"JPEG quality {jpeg_quality}",
            "max_frames": max_frames,
        },
        "flow": None if flow_method is None else {
            "method": flow_method,
            "bound_pixels": flow_lib.FLOW_BOUND,
            "format": flow_format,
            "alignment": "flow[t] = motion frame t -> t+1; last field repeated",
            "quantization": records.FLOW_QUANTIZATION,
        },
        "record_format": "tf.train.SequenceExample, see i3d_keras.data.records",
    }
    report.metadata_path = str(records.write_metadata(output_dir, name, metadata))
    report_path = output_dir / f"{name}.report.json"
    report.report_path = str(report_path)  # before writing: the file names itself
    report_path.write_text(json.dumps(dataclasses.asdict(report), indent=1) + "\n")
    return report
