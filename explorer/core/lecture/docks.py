"""The docks (views) of each family's panel, by object name: what a step's ``dock`` may bring forward.

Why a table here: a lecture is checked before any window opens (``explorer lecture`` on the command line
refuses a bad step with exit 2), and without Qt, as everything the core reads is. The panels declare their
docks in Qt code (``dock_specs`` in ``explorer/gui/panels/``), which builds the views to do so: far too slow
for a check before the window, and out of the core's reach. tests/test_gui_lecture.py builds every panel
and holds this table equal to the docks it makes, so a dock added, renamed or removed there fails a test
until it is here too.
"""

from __future__ import annotations

DOCKS: dict[str, tuple[str, ...]] = {
    "rbm": ("rbmSettingsDock", "rbmFiltersDock", "rbmHiddenDock", "rbmCurvesDock", "rbmDreamsDock"),
    "autoencoder": ("aeSettingsDock", "aeFiltersDock", "aeCodesDock", "aeCurvesDock", "aeScatterDock"),
    "mlp": ("mlpSettingsDock", "mlpPipelineDock", "mlpHeatDock", "mlpSaturationDock", "mlpCurvesDock",
            "mlpActivationsDock", "mlpFiltersDock", "mlpDbnDock"),
    "compare": ("compareSettingsDock", "compareStatusDock", "compareGradDock"),
    "cnn": ("cnnSettingsDock", "cnnProbeDock", "cnnPredictionDock", "cnnFiltersDock", "cnnLcnDock", "cnnRfDock",
            "cnnCurvesDock", "cnnConfusionDock", "cnnMisclassifiedDock"),
    "fcn": ("fcnSettingsDock", "fcnProbsDock", "fcnMapsDock", "fcnIouDock", "fcnAccuracyDock"),
    "fcn-compare": ("fcnCompareSettingsDock", "fcnCompareMiouDock", "fcnCompareAccuracyDock"),
    "lstm": ("lstmSettingsDock", "lstmInterventionsDock", "lstmUnitsDock", "lstmProbeDock", "lstmTextDock",
             "lstmCurvesDock", "lstmGradientsDock", "lstmSaturationDock"),
    "rnn": ("rnnSettingsDock", "rnnInterventionsDock", "rnnUnitsDock", "rnnProbeDock", "rnnTextDock",
            "rnnCurvesDock", "rnnGradientsDock", "rnnSaturationDock"),
}

__all__ = ["DOCKS"]
