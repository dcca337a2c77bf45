"""Settings declared once as dataclass fields: one validation, its messages, and when a change applies."""

from dataclasses import dataclass

import numpy as np
import pytest

from explorer.core.engine.settings import Settings, apply_settings, setting
from explorer.core.families.autoencoder.trainer import AutoencoderConfig
from explorer.core.families.fcn.trainer import FCNConfig
from explorer.core.families.rbm.trainer import LIVE, NEEDS_RESET, RBMConfig
from explorer.core.families.recurrent.trainer import LSTMConfig, RNNConfig


@dataclass
class Toy(Settings):
    name: str = setting("a", choices=("a", "b"), data=True)
    units: int = setting(4, kind="int", lo=1, hi=10, label="hidden units", reset=True)
    lr: float = setting(0.1, kind="number", lo=0, above=True, label="learning rate", live=True)
    momentum: float = setting(0.0, kind="number", lo=0, hi=1, below=True, live=True)
    decay: float | None = setting(None, kind="number", lo=0, optional=True, live=True)
    clip: float = setting(1.0, kind="number", lo=0, note="0: off", live=True)
    seed: int = setting(0, data=True)
    quiet: bool = False

    def check(self) -> None:
        if self.name == "b" and self.units > 5:
            raise ValueError("b takes at most 5 hidden units")


@pytest.mark.parametrize("changes, message", [
    ({"name": "c"}, "name must be one of a, b, got 'c'"),
    ({"units": 0}, "hidden units must be a whole number between 1 and 10, got 0"),
    ({"units": 11}, "hidden units must be a whole number between 1 and 10, got 11"),
    ({"units": 2.0}, "hidden units must be a whole number between 1 and 10, got 2.0"),
    ({"units": True}, "hidden units must be a whole number between 1 and 10, got True"),
    ({"lr": 0}, "learning rate must be a positive number, got 0"),
    ({"lr": float("nan")}, "learning rate must be a positive number, got nan"),
    ({"momentum": 1.0}, "momentum must be a number in [0, 1), got 1.0"),
    ({"decay": -1.0}, "decay must be a number >= 0 (or none), got -1.0"),
    ({"clip": "x"}, "clip must be a number >= 0 (0: off), got 'x'"),
    ({"name": "b", "units": 6}, "b takes at most 5 hidden units"),
])
def test_a_value_out_of_its_range_is_refused_naming_the_setting_the_range_and_the_value(changes, message):
    with pytest.raises(ValueError) as info:
        Toy(**changes).validate()
    assert str(info.value) == message


def test_values_at_the_bounds_and_numpy_numbers_pass():
    Toy(units=1).validate()
    Toy(units=np.int64(10), lr=np.float32(0.5), momentum=0.0, decay=None, clip=0).validate()


def test_the_flags_say_when_a_change_applies():
    assert Toy.live_settings() == {"lr", "momentum", "decay", "clip"}
    assert Toy.reset_settings() == {"name", "units", "seed"}  # data settings need a Reset too
    assert Toy.data_settings() == ("name", "seed")


def test_apply_settings_checks_all_then_applies_and_says_what_happened():
    cfg = Toy()
    passed = []
    notices = apply_settings(cfg, {"lr": 0.5, "units": 8, "quiet": True, "momentum": 0.0},
                             lambda k, v: passed.append((k, v)))
    assert notices == ["lr = 0.5 (applied now)",
                       "units = 8: takes effect after Reset (the model must be re-initialised)"]
    assert passed == [("lr", 0.5)]  # an unchanged value is not passed on
    assert (cfg.lr, cfg.units, cfg.quiet) == (0.5, 8, True)
    with pytest.raises(ValueError, match="hidden units must be"):
        apply_settings(cfg, {"lr": 0.9, "units": 0})
    assert cfg.lr == 0.5  # nothing applied when one change is refused
    with pytest.raises(ValueError, match="unknown setting"):
        apply_settings(cfg, {"bogus": 1})
    notices = apply_settings(cfg, {"lr": 0.7, "seed": 3}, lambda k, v: "applied now, to both",
                             reset_reason="the networks must be re-initialised")
    assert notices == ["lr = 0.7 (applied now, to both)",
                       "seed = 3: takes effect after Reset (the networks must be re-initialised)"]


def test_from_dict_leaves_out_unknown_names_and_to_dict_round_trips():
    cfg = Toy.from_dict({"units": 3, "gone": 1})
    assert cfg == Toy(units=3) and Toy.from_dict(cfg.to_dict()) == cfg


def test_setting_refuses_a_flag_pair_that_cannot_both_hold():
    with pytest.raises(ValueError, match="not both"):
        setting(1, live=True, reset=True)


def test_the_families_declare_their_flags_on_their_fields():
    assert LIVE == {"lr", "k", "momentum", "weight_decay", "batch_size", "persistent", "dream_steps"}
    assert NEEDS_RESET == {"hidden", "dataset", "data_dir", "upscale", "bars_size", "init_std", "seed", "binarize"}
    assert RBMConfig.data_settings() == ("dataset", "data_dir", "upscale", "bars_size", "seed")
    assert FCNConfig.data_settings() == ("spec", "preset", "dataset", "data_dir", "n_train", "n_test", "noise",
                                         "texture", "max_shapes", "seed")
    assert LSTMConfig.data_settings() == ("task", "length", "text_file", "seed", "n_train", "eval_samples")


@pytest.mark.parametrize("config, message", [
    (RBMConfig(k=0), "k (the Gibbs steps of CD-k) must be a whole number between 1 and 1000, got 0"),
    (AutoencoderConfig(init_std=-1.0), "init std must be a positive number (or empty for Glorot), got -1.0"),
    (AutoencoderConfig(noise="masking", noise_level=1.5), "masking noise level is a probability in [0, 1], got 1.5"),
    (LSTMConfig(length=1), "sequence length T must be a whole number between 2 and 2000, got 1"),
    (LSTMConfig(task="recall", length=0, zero_unit=32), "zeroed unit must be -1 (none) or a unit 0..31, got 32"),
    (RNNConfig(clamp_gate="f"), "a vanilla RNN has no gates to clamp"),
])
def test_family_configs_refuse_with_the_shared_messages_and_their_own_rules(config, message):
    with pytest.raises(ValueError) as info:
        config.validate()
    assert str(info.value) == message
