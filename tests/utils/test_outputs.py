"""Tests of i3d_keras.utils.outputs: the rule for everything the tools write."""

import json
import os
import stat

import pytest

from i3d_keras.utils import outputs


def test_an_existing_file_is_replaced_only_when_asked(tmp_path):
    target = tmp_path / "out.json"
    assert outputs.check_output_file(target, flag="json") == target
    target.write_text("mine")
    with pytest.raises(outputs.OutputError, match="--json .* exists; pass --overwrite"):
        outputs.check_output_file(target, flag="json")
    assert outputs.check_output_file(target, flag="json", overwrite=True) == target
    assert target.read_text() == "mine"  # checking writes nothing


def test_an_input_is_never_an_output(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"video")
    for spelling in (video, tmp_path / "." / "clip.mp4", str(video)):
        with pytest.raises(outputs.OutputError, match="is one of the inputs"):
            outputs.check_output_file(spelling, flag="json", inputs=[video], overwrite=True)
    link = tmp_path / "link.mp4"
    link.symlink_to(video)
    with pytest.raises(outputs.OutputError, match="is one of the inputs"):
        outputs.check_output_file(link, inputs=[video], overwrite=True)
    assert video.read_bytes() == b"video"


def test_files_and_folders_in_each_others_place(tmp_path):
    folder, plain = tmp_path / "folder", tmp_path / "plain"
    folder.mkdir()
    plain.write_text("x")
    with pytest.raises(outputs.OutputError, match="must be a file, .* is a folder"):
        outputs.check_output_file(folder, flag="json")
    with pytest.raises(outputs.OutputError, match="must be a folder, .* is a file"):
        outputs.check_output_dir(plain)
    with pytest.raises(outputs.OutputError, match="cannot be made: .*plain.* is a file"):
        outputs.check_output_dir(plain / "below")
    with pytest.raises(outputs.OutputError, match="folder of --json is a file"):
        outputs.check_output_file(plain / "out.json", flag="json")
    with pytest.raises(outputs.OutputError, match="folder of --json does not exist"):
        outputs.check_output_file(tmp_path / "missing" / "out.json", flag="json")
    assert outputs.check_output_file(tmp_path / "new" / "out.json", create_parent=True)
    assert outputs.check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    with pytest.raises(outputs.OutputError, match="no such file"):
        outputs.check_input_path(tmp_path / "missing.keras", flag="model")
    with pytest.raises(outputs.OutputError, match="must be a folder"):
        outputs.check_input_path(plain, flag="root", kind="folder")


def test_atomic_writes_leave_the_old_file_on_failure(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with outputs.atomic_open(target) as f:
            f.write("half")
            raise RuntimeError("crash in the middle")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # no temporary left
    outputs.write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    with outputs.atomic_path(tmp_path / "sub" / "x.npy") as tmp:
        assert tmp.suffix == ".npy" and tmp.parent == tmp_path / "sub"
        tmp.write_bytes(b"data")
    assert (tmp_path / "sub" / "x.npy").read_bytes() == b"data"
    with pytest.raises(ValueError, match="mode"):
        with outputs.atomic_open(target, "a"):
            pass


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc, where "
                    "nothing can be created, even by root")
def test_a_place_nothing_can_be_written_to_is_refused_before_work():
    for check in (lambda: outputs.check_output_file("/proc/x.json", flag="json"),
                  lambda: outputs.check_output_file("/proc/a/x.json", flag="json",
                                                    create_parent=True),
                  lambda: outputs.check_output_dir("/proc/x")):
        with pytest.raises(outputs.OutputError, match="cannot be written: nothing can be "
                                                      "created in '/proc'"):
            check()


def test_atomic_writes_keep_the_replaced_mode_or_follow_the_umask(tmp_path):
    mask = os.umask(0o027)
    try:
        new = outputs.write_json(tmp_path / "new.json", {})
        assert stat.S_IMODE(os.stat(new).st_mode) == 0o640  # not mkstemp's 0600
        os.chmod(new, 0o604)
        outputs.write_json(new, {"a": 1})
        assert stat.S_IMODE(os.stat(new).st_mode) == 0o604
    finally:
        os.umask(mask)


def test_unique_outputs_and_common_root(tmp_path):
    a, b = tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4"
    with pytest.raises(outputs.OutputError, match="two inputs would write the same output.*"
                       "common parent"):
        outputs.unique_outputs([(a, tmp_path / "o" / "x.npy"), (b, tmp_path / "o" / "x.npy")])
    # In one folder, a common parent changes nothing: one must be renamed.
    with pytest.raises(outputs.OutputError, match="rename one of them"):
        outputs.unique_outputs([(a, tmp_path / "o" / "x.npy"),
                                (a.with_suffix(".gif"), tmp_path / "o" / "x.npy")])
    outputs.unique_outputs([(a, tmp_path / "o" / "a.npy"), (b, tmp_path / "o" / "b.npy")])
    outputs.unique_outputs([(a, tmp_path / "o.npy"), (a, tmp_path / "o.npy")])  # the same input
    assert outputs.common_root([a, b]) == tmp_path
    assert outputs.common_root([a]) == tmp_path / "a"
    assert outputs.common_root([]) is None


def test_settings_record_new_resume_refuse_recompute(tmp_path):
    record = outputs.SettingsRecord(tmp_path, "settings.json")
    settings = {"window": 64, "stride": 16, "size": (224, 224)}
    assert record.check(settings, has_outputs=False) == "new"
    assert record.read() == {"window": 64, "stride": 16, "size": [224, 224]}
    assert record.check(settings, has_outputs=True) == "resume"
    with pytest.raises(outputs.OutputError) as caught:
        record.check({**settings, "window": 32, "flow": "dis"}, has_outputs=True)
    message = str(caught.value)
    assert "flow (unset) there, dis now" in message and "window 64 there, 32 now" in message
    assert "stride" not in message and "--overwrite" in message
    assert record.read()["window"] == 64  # nothing changed
    assert record.check({**settings, "window": 32}, has_outputs=True,
                        overwrite=True) == "recompute"
    assert record.read()["window"] == 32


def test_settings_record_outputs_without_a_record_or_a_broken_one(tmp_path):
    record = outputs.SettingsRecord(tmp_path, "settings.json", flag="out")
    with pytest.raises(outputs.OutputError, match="--out .* no record of the settings"):
        record.check({"a": 1}, has_outputs=True)
    record.path.write_text("{not json")
    with pytest.raises(outputs.OutputError, match="unreadable record"):
        record.check({"a": 1}, has_outputs=True)
    with pytest.raises(outputs.OutputError, match="unreadable record"):
        record.check({"a": 1}, has_outputs=False)  # a broken record is never trusted
    assert record.check({"a": 1}, has_outputs=True, overwrite=True) == "recompute"
    assert record.check({"a": 1}, has_outputs=True) == "resume"
