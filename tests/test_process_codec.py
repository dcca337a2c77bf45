"""The training process's messages as plain values (no pickle): every kind the window and the process
exchange comes back equal, and a tree the packer would not have made is refused. Headless."""

import math

import numpy as np
import pytest
import torch

from explorer.core.data.datasets import DataError
from explorer.core.engine.session import Snapshot
from explorer.core.families.registry import FAMILIES
from explorer.core.persist import commands
from explorer.core.process.codec import CodecError, pack, unpack


def round_trip(value):
    tree, arrays = pack(value)
    return unpack(tree, arrays)


def test_plain_values_tuples_sets_and_odd_dicts_come_back_equal():
    value = {"step": 3, "loss": 0.25, "ok": True, "none": None, "name": "é ✓",
             "pair": (1, 2.5), "nested": [{"a": (1, [2, 3])}], "set": {1, 2},
             "by_int": {1: "one", (2, 3): "tuple key"}, "__dunder": 1}
    assert round_trip(value) == value
    assert isinstance(round_trip((1, 2)), tuple)


def test_non_finite_floats_survive():
    out = round_trip({"a": math.nan, "b": math.inf, "c": -math.inf, "d": [float("nan")]})
    assert math.isnan(out["a"]) and out["b"] == math.inf and out["c"] == -math.inf and math.isnan(out["d"][0])


def test_arrays_travel_as_raw_arrays_and_tensors_as_their_numpy_copy():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    tree, arrays = pack({"x": a, "t": torch.ones(2, dtype=torch.float64), "s": np.float32(1.5)})
    assert list(arrays) == ["0", "1"] and tree["s"] == 1.5
    out = unpack(tree, arrays)
    np.testing.assert_array_equal(out["x"], a)
    assert out["t"].dtype == np.float64 and out["t"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_familys_settings_come_back_as_the_same_settings(family):
    config_cls = FAMILIES[family].config_cls
    config = config_cls()
    out = round_trip({"config": config})["config"]
    assert type(out) is config_cls and out.to_dict() == round_trip(config.to_dict())


def test_a_snapshot_comes_back_whole():
    snap = Snapshot(run_id=2, seq=7, step=40, epoch=1, time=3.5,
                    arrays={"filters": np.ones((4, 8), np.float32), "names": ["a", "b"]}, scalars={"loss": 0.5})
    out = round_trip(("snapshot", snap))
    assert out[0] == "snapshot" and isinstance(out[1], Snapshot)
    assert (out[1].run_id, out[1].seq, out[1].step, out[1].epoch, out[1].time) == (2, 7, 40, 1, 3.5)
    np.testing.assert_array_equal(out[1].arrays["filters"], snap.arrays["filters"])
    assert out[1].arrays["names"] == ["a", "b"] and out[1].scalars == {"loss": 0.5}


def test_errors_come_back_as_their_own_type_or_as_a_runtime_error_naming_it():
    out = round_trip([DataError("mnist: no such file"), KeyError("lr"), ValueError("bad")])
    assert type(out[0]) is DataError and str(out[0]) == "mnist: no such file"
    assert type(out[1]) is KeyError and out[1].args == ("lr",)
    assert type(out[2]) is ValueError

    class Strange(Exception):
        pass

    odd = round_trip(Strange("odd"))
    assert type(odd) is RuntimeError and str(odd) == "Strange: odd"


def test_only_the_commands_functions_cross():
    assert round_trip(commands.save_run_to) is commands.save_run_to
    with pytest.raises(TypeError, match="only the functions of explorer.core.persist.commands"):
        pack(lambda s: None)
    with pytest.raises(TypeError, match="only the functions"):
        pack(print)
    with pytest.raises(CodecError, match="no command"):
        unpack({"__function": "os"}, {})
    with pytest.raises(CodecError, match="no command"):
        unpack({"__function": "Any"}, {})  # a name the module imports is not one of its functions


def test_values_the_other_side_could_not_rebuild_are_refused_when_packed():
    for bad in (object(), np.array(["a"], dtype=object), np.array(["text"]), b"bytes", 2**70):
        with pytest.raises(TypeError):
            pack(bad)
    deep: list = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(TypeError, match="deeper"):
        pack(deep)


@pytest.mark.parametrize("tree, arrays, fault", [
    ({"__array": "9"}, {}, "not in the frame"),
    ({"__float": "1e999"}, {}, "not a float"),
    ({"__settings": "os:system", "fields": {}}, {}, "unknown settings"),
    ({"__settings": "explorer.core.families.rbm.model:RBMConfig", "fields": 3}, {}, "unknown settings"),
    ({"__snapshot": {"run_id": 1}}, {}, "malformed snapshot"),
    ({"__pairs": [[1]]}, {}, "not pairs"),
    ({"__pairs": [[{"a": 1}, 2]]}, {}, "a dict key"),
    ({"__tuple": 5}, {}, "holds a int"),
])
def test_a_tree_the_packer_would_not_make_is_refused(tree, arrays, fault):
    with pytest.raises(CodecError, match=fault):
        unpack(tree, arrays)


def test_an_unknown_error_name_never_imports_anything():
    out = unpack({"__error": "os:system", "message": "rm -rf"}, {})
    assert type(out) is RuntimeError and str(out) == "system: rm -rf"
