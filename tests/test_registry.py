"""The model families are declared once, in ``explorer.core.families.registry``: the families a spec may
name, the conversion of a spec to a family's settings and the ONNX export plans all come from there."""

import dataclasses

import pytest

from explorer.core.families.autoencoder import export as autoencoder_export
from explorer.core.families.autoencoder.trainer import AutoencoderConfig, AutoencoderTrainer
from explorer.core.families.cnn import export as cnn_export
from explorer.core.families.cnn.trainer import CNNConfig, CNNTrainer
from explorer.core.families.deep import export as deep_export
from explorer.core.families.deep.compare import CompareConfig, InitComparison
from explorer.core.families.deep.trainer import MLPConfig, MLPTrainer
from explorer.core.families.fcn import export as fcn_export
from explorer.core.families.fcn.trainer import FCNCompareConfig, FCNConfig, FCNTrainer, SkipComparison
from explorer.core.families.rbm import export as rbm_export
from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer
from explorer.core.families.recurrent import export as recurrent_export
from explorer.core.families.recurrent.trainer import LSTMConfig, RecurrentTrainer, RNNConfig
from explorer.core.families.registry import FAMILIES, Family, family_of_config, make_trainer, spec_families
from explorer.core.persist.export import ExportError, export_plan
from explorer.core.spec import network as S

SPEC_FAMILIES = ("rbm", "autoencoder", "mlp", "cnn", "fcn", "lstm", "rnn")
# the first preset of each family that can be built from a spec
DEFAULT_PRESETS = {"rbm": "rbm-digits", "autoencoder": "denoising-autoencoder", "mlp": "deep-sigmoid-mlp",
                   "cnn": "lenet5", "fcn": "unet-small", "lstm": "lstm", "rnn": "rnn"}


def gan_spec() -> dict:
    """A spec of a family no registry declares (until a test declares it)."""
    return S.spec_to_dict(S.NetworkSpec("gan", (16,), [S.LayerSpec("Linear", {"out_features": 4})]))


@pytest.fixture
def restore_spec_families():
    """Puts back the families the spec checker accepts after a test told it those of another registry."""
    before = S.spec_families()
    yield
    S.accept_spec_families(before)


def test_each_family_has_one_record_with_its_classes_converter_and_export_plan():
    expected = {
        "rbm": (RBMConfig, RBMTrainer, True, rbm_export.export_plan),
        "autoencoder": (AutoencoderConfig, AutoencoderTrainer, True, autoencoder_export.export_plan),
        "mlp": (MLPConfig, MLPTrainer, True, deep_export.export_plan),
        "compare": (CompareConfig, InitComparison, False, deep_export.compare_export_plan),
        "cnn": (CNNConfig, CNNTrainer, True, cnn_export.export_plan),
        "fcn": (FCNConfig, FCNTrainer, True, fcn_export.export_plan),
        "fcn-compare": (FCNCompareConfig, SkipComparison, False, fcn_export.compare_export_plan),
        "lstm": (LSTMConfig, RecurrentTrainer, True, recurrent_export.export_plan),
        "rnn": (RNNConfig, RecurrentTrainer, True, recurrent_export.export_plan),
    }
    assert list(FAMILIES) == list(expected)
    for name, family in FAMILIES.items():
        config_cls, trainer_cls, from_spec, plan = expected[name]
        assert isinstance(family, Family) and family.name == name
        assert (family.config_cls, family.trainer_cls, family.export_plan) == (config_cls, trainer_cls, plan)
        assert (family.config_from_spec is not None) is from_spec
        assert family_of_config(config_cls()) == name
        if trainer_cls is not RecurrentTrainer:  # (which takes its family, lstm or rnn, from its settings)
            assert trainer_cls.family == name  # a trainer's own name for its family is the registry's
    with pytest.raises(dataclasses.FrozenInstanceError):
        FAMILIES["rbm"].name = "other"  # type: ignore[misc]
    assert family_of_config(object()) is None
    with pytest.raises(ValueError, match="unknown model family 'gan': known are autoencoder, cnn, compare"):
        make_trainer("gan", {})


def test_the_spec_checker_accepts_exactly_the_registry_families_with_a_spec_converter():
    assert spec_families() == SPEC_FAMILIES
    assert S.spec_families() == SPEC_FAMILIES  # what the registry told the spec checker when it was imported
    with pytest.raises(S.SpecError, match=r"unknown family 'gan' \(expected one of rbm, autoencoder, mlp, cnn, "
                                          r"fcn, lstm, rnn\)"):
        S.spec_from_dict(gan_spec())
    # a family loses its place in specs with its converter
    without_cnn = dict(FAMILIES, cnn=dataclasses.replace(FAMILIES["cnn"], config_from_spec=None))
    assert spec_families(without_cnn) == ("rbm", "autoencoder", "mlp", "fcn", "lstm", "rnn")


def test_a_family_declared_in_another_registry_is_accepted_by_the_spec_checker(restore_spec_families):
    def gan_config_from_spec(spec, base=None):
        return MLPConfig(hidden=(spec.layers[0].params["out_features"],))

    registry = dict(FAMILIES)
    registry["gan"] = Family("gan", MLPConfig, MLPTrainer, gan_config_from_spec, None)
    assert spec_families(registry) == (*SPEC_FAMILIES, "gan")
    S.accept_spec_families(spec_families(registry))
    spec = S.spec_from_dict(gan_spec())
    assert spec.family == "gan" and S.infer(spec).spec_error is None
    assert registry["gan"].config_from_spec(spec, None).hidden == (4,)
    # and a spec of a family the checker was not told of is refused by infer as by spec_from_dict
    S.accept_spec_families(("gan",))
    assert S.infer(S.load_preset("lenet5")).spec_error == "Network: unknown family 'cnn' (expected one of gan)"


def test_the_spec_checker_says_when_no_registry_told_it_the_families(restore_spec_families):
    S.accept_spec_families(())
    with pytest.raises(S.SpecError, match=r"^Network: no model families are loaded \(import "
                                          r"explorer\.core\.families\.registry first\)$"):
        S.spec_from_dict(gan_spec())


class _Exported:
    """A stand-in trainer: ``export_plan`` reads only its family and hands it to the family's plan."""

    def __init__(self, family: str):
        self.family = family


def test_the_export_plan_is_the_one_the_registry_names(monkeypatch):
    seen = []

    def plan(trainer):
        seen.append(trainer)
        return "the plan"

    monkeypatch.setitem(FAMILIES, "mlp", dataclasses.replace(FAMILIES["mlp"], export_plan=plan))
    trainer = _Exported("mlp")
    assert export_plan(trainer) == "the plan" and seen == [trainer]
    monkeypatch.setitem(FAMILIES, "mlp", dataclasses.replace(FAMILIES["mlp"], export_plan=None))
    with pytest.raises(ExportError, match="^the mlp family cannot be exported to ONNX$"):
        export_plan(trainer)
    with pytest.raises(ExportError, match="^the gan family cannot be exported to ONNX$"):
        export_plan(_Exported("gan"))


@pytest.mark.parametrize("name", SPEC_FAMILIES)
def test_every_family_with_a_spec_converter_round_trips_its_default_spec(name):
    family = FAMILIES[name]
    spec = S.load_preset(DEFAULT_PRESETS[name])
    assert spec.family == name
    again = S.spec_from_dict(S.spec_to_dict(spec))
    assert again == spec and S.validate(again).spec_error is None
    assert family.config_from_spec is not None
    config = family.config_from_spec(again, None)
    assert type(config) is family.config_cls and family_of_config(config) == name
    config.validate()
    assert family.config_cls.from_dict(config.to_dict()).to_dict() == config.to_dict()
