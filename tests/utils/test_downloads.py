"""Tests of i3d_keras.utils.downloads: a failed download says how to go on offline,
and Keras' download messages never reach standard output (results only there)."""

import pytest

from i3d_keras.utils import downloads


def test_a_failed_download_names_the_file_the_address_and_the_offline_way(
        tmp_path, capsys, interactive_keras_logging):
    origin = (tmp_path / "nowhere" / "model.ckpt.index").as_uri()  # no network needed
    with pytest.raises(OSError) as caught:
        downloads.get_file("model.ckpt.index", origin, what="DeepMind's rgb_imagenet checkpoint",
                           offline="pass a local checkpoint with --model",
                           cache_dir=str(tmp_path / "cache"), cache_subdir="i3d_keras/rgb")
    message = str(caught.value)
    assert message.startswith("could not download DeepMind's rgb_imagenet checkpoint from "
                              + origin)
    assert "Offline: pass a local checkpoint with --model" in message
    assert f"{tmp_path / 'cache'}/i3d_keras/rgb/" in message
    assert message.count(origin) == 1  # Keras' own text repeats the address: not here
    assert capsys.readouterr().out == ""  # "Downloading data from ..." went to stderr


@pytest.fixture
def interactive_keras_logging():
    """Keras prints its download lines only with interactive logging, a global
    setting other code (in the same test process) may have turned off."""
    import keras

    was = keras.config.is_interactive_logging_enabled()
    keras.config.enable_interactive_logging()
    yield
    if not was:
        keras.config.disable_interactive_logging()


def test_a_download_from_a_reachable_address_is_cached(tmp_path, capsys,
                                                      interactive_keras_logging):
    source = tmp_path / "labels.txt"
    source.write_text("a\nb\n")
    path = downloads.get_file("labels.txt", source.as_uri(), what="class names",
                              offline="pass --labels", cache_dir=str(tmp_path / "cache"),
                              cache_subdir="i3d_keras")
    assert open(path).read() == "a\nb\n"
    assert path == str(tmp_path / "cache" / "i3d_keras" / "labels.txt")  # the folder asked
    captured = capsys.readouterr()
    assert captured.out == "" and "Downloading data from" in captured.err
