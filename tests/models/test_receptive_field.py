"""Tests for i3d_keras.models.receptive_field on hand-checkable models and on I3D."""

import keras
import pytest

import i3d_keras
from i3d_keras.models import layers as i3d_layers
from i3d_keras.models.receptive_field import format_table


def _hand_model():
    # conv 3x3x3 s1 -> pool 1x2x2 s(1,2,2) -> conv 3x5x5 s2 -> mean
    inputs = keras.Input((8, 16, 16, 2), name="clip")
    x = keras.layers.Conv3D(4, 3, padding="same", use_bias=False, name="c1")(inputs)
    x = i3d_layers.Pooling3D((1, 2, 2), strides=(1, 2, 2), name="p1")(x)
    x = keras.layers.Conv3D(6, (3, 5, 5), strides=2, padding="same", name="c2")(x)
    x = i3d_layers.Mean(axis=(1, 2, 3), name="head")(x)
    return keras.Model(inputs, x)


def test_hand_checked_receptive_fields():
    rows = {r.name: r for r in i3d_keras.receptive_fields(_hand_model())}
    assert rows["c1"].receptive_field == (3, 3, 3) and rows["c1"].stride == (1, 1, 1)
    assert rows["c1"].output_shape == (8, 16, 16, 4)
    assert rows["c1"].macs == 8 * 16 * 16 * 27 * 2 * 4 and rows["c1"].params == 216
    # Pool 1x2x2: rf grows by (2-1)*1 in space, jump doubles in space.
    assert rows["p1"].receptive_field == (3, 4, 4) and rows["p1"].stride == (1, 2, 2)
    # Conv 3x5x5 stride 2 on jumps (1,2,2): rf + (3-1)*1, + (5-1)*2.
    assert rows["c2"].receptive_field == (5, 12, 12) and rows["c2"].stride == (2, 4, 4)
    assert rows["c2"].output_shape == (4, 4, 4, 6)
    assert rows["c2"].macs == 4 * 4 * 4 * 75 * 4 * 6 and rows["c2"].params == 75 * 4 * 6 + 6
    # Global mean over (4, 4, 4) positions at jumps (2, 4, 4): the whole clip and more.
    assert rows["head"].receptive_field == (5 + 3 * 2, 12 + 3 * 4, 12 + 3 * 4)
    assert rows["head"].output_shape == (6,)


def test_i3d_paper_geometry_and_macs():
    rows = i3d_keras.receptive_fields(i3d_keras.InceptionI3D(), input_shape=(64, 224, 224, 3))
    by_name = {r.name: r for r in rows}
    assert [r.name for r in rows] == list(i3d_keras.ENDPOINTS[:-1])
    assert by_name["Conv3d_1a_7x7"].receptive_field == (7, 7, 7)
    assert by_name["Conv3d_1a_7x7"].output_shape == (32, 112, 112, 64)
    assert by_name["Mixed_5c"].output_shape == (8, 7, 7, 1024)
    assert by_name["Mixed_5c"].receptive_field == (99, 379, 379)
    assert by_name["Mixed_5c"].stride == (8, 32, 32)
    total_macs = sum(r.macs for r in rows)
    assert 110e9 < total_macs < 112e9  # about 111 GMACs per 64-frame clip
    assert sum(r.params for r in rows) == 12_689_984 + 14_560
    assert "Mixed_5c" in format_table(rows)


def test_fusion_and_other_input_sizes():
    rgb = i3d_keras.InceptionI3D(5, frames=16, image_size=64)
    flow = i3d_keras.InceptionI3D(5, "flow", frames=16, image_size=64)
    rows = i3d_keras.receptive_fields(i3d_keras.TwoStreamI3D(rgb, flow))
    assert [r.name for r in rows].count("Mixed_5c") == 2
    assert sum(r.params for r in rows) == rgb.count_params() + flow.count_params()
    with pytest.raises(ValueError, match="Received: endpoints"):
        i3d_keras.receptive_fields(rgb, endpoints=["Mixed_9z"])
    with pytest.raises(ValueError, match="input_shape"):
        i3d_keras.receptive_fields(rgb, input_shape=(64, 64, 3))
