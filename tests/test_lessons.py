"""The lesson sessions under samples/lessons open straight into their trained state."""

from pathlib import Path

import pytest
import torch

from explorer.core.persist.runfolder import load_run, restore_trainer

LESSONS = Path(__file__).resolve().parents[1] / "samples" / "lessons"
EXPECTED = {"rbm-digits-half-trained": "rbm", "dae-heavy-noise": "autoencoder",
            "deep-net-random-start": "mlp", "deep-net-rbm-pretrained": "mlp", "lstm-adding-problem": "lstm"}


def test_the_lessons_are_all_there():
    assert sorted(p.name for p in LESSONS.iterdir() if p.is_dir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_lesson_restores_its_weights_and_curves(name):
    run = load_run(LESSONS / name)
    assert run.family == EXPECTED[name] and run.step > 0 and run.evals
    tr = restore_trainer(run, device="cpu")
    assert tr.step == run.step
    saved = run.tensors
    mine = tr.state_tensors()
    assert set(saved) <= set(mine)
    for key, value in saved.items():
        assert torch.equal(mine[key].cpu(), value), key


def test_the_lessons_show_what_they_promise():
    last = {name: load_run(LESSONS / name).evals[-1] for name in EXPECTED}
    # the deep sigmoid net from small random weights is stuck near chance; the pretrained one learns
    assert last["deep-net-random-start"]["heldout_accuracy"] < 0.2
    assert last["deep-net-rbm-pretrained"]["heldout_accuracy"] > 0.4
    # the LSTM has solved the adding problem (the trivial baseline is ~0.16)
    assert last["lstm-adding-problem"]["heldout_loss"] < 0.05
    # and the RNN trained beside it on the same batches (what the panel compares it with) has not
    lstm = load_run(LESSONS / "lstm-adding-problem")
    assert lstm.config["compare_every"] == 4
    assert last["lstm-adding-problem"]["compare_heldout_loss"] > 0.9 * last["lstm-adding-problem"]["baseline"]
    tr = restore_trainer(lstm, device="cpu")
    assert tr.compare_steps == 250  # one RNN update every 4 of the LSTM's 1,000 steps


@pytest.mark.parametrize("name", sorted(p.name for p in LESSONS.iterdir() if p.is_dir()))
def test_every_lessons_weights_are_checked_against_its_model(name):
    """The LSTM lesson's run.json lacked the model's output count, so inspect, and the lecture's check before
    it opens, could not compare its weights with its model: a spoiled lesson would fail in front of the class."""
    from explorer.core.persist.inspect import inspect_path

    assert "not checked" not in inspect_path(LESSONS / name)
