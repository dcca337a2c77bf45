"""The lecture's step files (explorer.core.lecture), headless: every bundled step is valid, in the lecture's
order; hostile or mistaken step files are refused with a message naming the file and the fault, and so are
a run folder a step opens that ``explorer inspect`` refuses and a dock its panel does not have, before any
window; the equations become rich text, and a typo in one is found when the file is read."""

import json
import shutil
import sys
import types
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.core.families.registry import FAMILIES
from explorer.core.lecture import DOCKS, EquationError, LectureError, equation_html, load_lecture, load_step
from explorer.core.lecture.steps import default_lecture_folder, load_lecture_at

SAMPLES = Path(__file__).resolve().parents[1] / "samples"

SECTIONS = ["Why deep networks", "Restricted Boltzmann machines", "Autoencoders", "Layerwise pretraining",
            "Convolutional networks", "Fully convolutional networks", "Recurrent networks"]


def test_the_bundled_lecture_is_valid_in_the_lectures_order():
    steps = load_lecture(default_lecture_folder())
    assert len(steps) >= 15
    seen = []
    for step in steps:
        if step.section not in seen:
            seen.append(step.section)
    assert seen == SECTIONS  # every section, each once, in the lecture's order
    families = {s.family for s in steps if s.family} | {s.run.name for s in steps if s.run}
    for needed in ("rbm", "autoencoder", "compare", "cnn", "fcn", "fcn-compare", "rnn", "lstm-adding-problem",
                   "deep-net-random-start", "deep-net-rbm-pretrained", "dae-heavy-noise"):
        assert needed in families, needed
    assert any(s.walkthrough for s in steps) and any(s.builder == "lenet5" for s in steps)
    assert all(s.equations_html and s.next for s in steps)


def test_equations_become_rich_text():
    assert equation_html(r"p(h_j = 1 | \mathbf{x}) = \sigma(\sum_i w_{ij} x_i)") == (
        "<i>p</i>(<i>h</i><sub><i>j</i></sub> = 1 | <b><i>x</i></b>) = σ(∑<sub><i>i</i></sub> "
        "<i>w</i><sub><i>i</i><i>j</i></sub> <i>x</i><sub><i>i</i></sub>)")
    assert equation_html(r"\tilde{x}^2") == "<i>x</i>\u0303<sup>2</sup>"
    frac = equation_html(r"y = \frac{a}{b}")
    assert frac.startswith("<table") and "<i>a</i>" in frac and "<i>b</i>" in frac
    assert "<td align='center' style='border-bottom:1px solid #9aa5b5'><i>a</i></td>" in frac


@pytest.mark.parametrize("text, message", [
    (r"\foo", r"unknown command \foo at character 1"),
    ("x_", "something missing at character 3"),
    ("{a", "a '{' without its '}' at character 3"),
    ("a}", "a '}' without its '{' at character 2"),
    ("^2", "'^' with nothing before it at character 1"),
    ("", "an equation must be a non-empty string"),
    ("x" * 401, "an equation of 401 characters (the limit is 400)"),
])
def test_equation_faults_name_what_and_where(text, message):
    with pytest.raises(EquationError) as err:
        equation_html(text)
    assert message in str(err.value)


GOOD = {"title": "T", "text": "Some words.", "equations": ["x"], "open": {"family": "rbm", "settings": {"hidden": 8}}}


@pytest.mark.parametrize("change, message", [
    ({"title": ""}, "title must be a non-empty string of at most 120 characters, got ''"),
    ({"extra": 1}, "unknown field 'extra'"),
    ({"equations": ["x_"]}, "equations[0]: something missing at character 3"),
    ({"equations": "x"}, "equations must be a list of at most 8 strings"),
    ({"open": {"family": "gan"}}, "open.family must be one of rbm"),
    ({"open": {"family": "rbm", "run": "x"}}, 'open must be {"family": NAME'),
    ({"open": {"family": "rbm", "settings": {"hiden": 8}}}, "open.settings: rbm has no setting 'hiden'"),
    ({"open": {"family": "rbm", "settings": {"hidden": -3}}}, "open.settings: "),
    ({"open": {"run": "nowhere"}}, "is not a run folder (no run.json)"),
    ({"train_steps": 10 ** 9}, "train_steps must be a whole number from 0 to 5,000"),
    ({"train_steps": True}, "train_steps must be a whole number"),
    ({"play": "yes"}, "play must be true or false"),
    ({"builder": "vgg"}, "builder must be a preset"),
    ({"walkthrough": True, "open": {"family": "cnn"}}, "walkthrough (the CD-1 step-through) needs an RBM step"),
])
def test_a_faulty_step_is_refused_naming_the_file_and_the_fault(tmp_path, change, message):
    path = tmp_path / "01-step.json"
    path.write_text(json.dumps({**GOOD, **change}))
    with pytest.raises(LectureError) as err:
        load_step(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_files_that_are_not_steps_are_refused(tmp_path):
    for content, message in [("[1]", "a step must be a JSON object, not list"), ("{", "not valid JSON"),
                             ("[" * 100 + "]" * 100, "nested too deeply")]:
        path = tmp_path / "x.json"
        path.write_text(content)
        with pytest.raises(LectureError) as err:
            load_step(path)
        assert str(err.value).startswith(str(path)) and message in str(err.value), err.value
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LectureError, match="no step files"):
        load_lecture(empty)


def test_steps_run_in_the_order_of_their_file_names(tmp_path):
    for name, title in (("02-b.json", "second"), ("01-a.json", "first"), ("10-c.json", "third")):
        (tmp_path / name).write_text(json.dumps({**GOOD, "title": title}))
    assert [s.title for s in load_lecture(tmp_path)] == ["first", "second", "third"]
    step = load_lecture(tmp_path)[0]
    assert step.make_config().hidden == 8


def test_the_command_refuses_a_bad_lecture_in_one_line(tmp_path, capsys):
    (tmp_path / "01.json").write_text(json.dumps({**GOOD, "open": {"family": "nope"}}))
    assert main(["lecture", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"explorer: error: {tmp_path / '01.json'}: open.family")
    assert main(["lecture", str(Path(tmp_path) / "missing")]) == 2


@pytest.fixture
def window(monkeypatch):
    """The window ``explorer lecture`` opens, stood in for (no Qt needed): the list of what it was asked to open."""
    opened: list[dict] = []
    app = types.ModuleType("explorer.gui.app")
    app.run_app = lambda **kw: opened.append(kw) or 0
    monkeypatch.setitem(sys.modules, "explorer.gui.app", app)
    return opened


def shipped_copy(tmp_path: Path) -> Path:
    """A copy of the shipped lecture beside a copy of its lessons (its steps open ``../lessons/...``)."""
    shutil.copytree(SAMPLES / "lecture", tmp_path / "lecture")
    shutil.copytree(SAMPLES / "lessons", tmp_path / "lessons")
    return tmp_path / "lecture"


def truncate_weights(lecture: Path) -> None:
    weights = lecture.parent / "lessons" / "deep-net-random-start" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:20_000])


def change_hidden(lecture: Path) -> None:
    meta = lecture.parent / "lessons" / "rbm-digits-half-trained" / "run.json"
    info = json.loads(meta.read_text())
    info["config"]["hidden"] = 50  # the weights hold 100 hidden units
    meta.write_text(json.dumps(info))


def set_dock(name: str):
    def spoil(lecture: Path) -> None:
        step = lecture / "02-rbm-energy.json"
        step.write_text(json.dumps({**json.loads(step.read_text()), "dock": name}))
    return spoil


@pytest.mark.parametrize("spoil, step, message", [
    (truncate_weights, "01-why-deep.json", "open.run: {lessons}/deep-net-random-start/weights.safetensors: "),
    (change_hidden, "03-rbm-conditionals.json", "open.run: {lessons}/rbm-digits-half-trained/weights.safetensors: "),
    (set_dock("nonexistentDock"), "02-rbm-energy.json", "dock: the rbm panel has no dock 'nonexistentDock' "
                                                         "(its docks: rbmSettingsDock, rbmFiltersDock, "),
    (set_dock("mlpHeatDock"), "02-rbm-energy.json", "dock: the rbm panel has no dock 'mlpHeatDock'"),
], ids=["weights truncated", "weights do not fit run.json", "no such dock", "another panel's dock"])
def test_a_lecture_whose_step_would_fail_in_class_is_refused_before_the_window(tmp_path, window, capsys, spoil,
                                                                              step, message):
    """They opened the window, and the step failed only when it was reached (a log line, or a notice in front
    of the class): the run folder is checked as ``explorer inspect`` checks it, the dock against its panel's."""
    lecture = shipped_copy(tmp_path)
    spoil(lecture)
    assert main(["lecture", str(lecture)]) == 2
    err = capsys.readouterr().err
    expected = f"explorer: error: {lecture / step}: " + message.format(lessons=tmp_path / "lessons")
    assert err.startswith(expected) and err.count("\n") == 1, err
    assert window == []  # the window never opened


def test_a_runs_fault_is_named_as_inspect_names_it(tmp_path, capsys):
    lecture = shipped_copy(tmp_path)
    change_hidden(lecture)
    assert main(["inspect", str(tmp_path / "lessons" / "rbm-digits-half-trained")]) == 2
    said = capsys.readouterr().err.removeprefix("explorer: error: ").strip()
    assert "tensor 'W' has shape" in said or "does not fit" in said, said
    step = lecture / "03-rbm-conditionals.json"
    with pytest.raises(LectureError) as err:
        load_step(step)
    assert str(err.value) == f"{step}: open.run: {said}"


def test_a_run_steps_dock_and_walkthrough_are_checked_against_the_runs_panel(tmp_path):
    lecture = shipped_copy(tmp_path)
    step = lecture / "01-why-deep.json"  # opens an MLP run
    raw = json.loads(step.read_text())
    for change, message in (({"dock": "rbmFiltersDock"}, "dock: the mlp panel has no dock 'rbmFiltersDock'"),
                            ({"walkthrough": True}, "walkthrough (the CD-1 step-through) needs an RBM step, not mlp")):
        step.write_text(json.dumps({**raw, **change}))
        with pytest.raises(LectureError) as err:
            load_step(step)
        assert str(err.value).startswith(f"{step}: {message}"), err.value
    step.write_text(json.dumps({**raw, "dock": "mlpCurvesDock"}))
    assert load_step(step).dock == "mlpCurvesDock"


def test_every_family_has_its_docks_declared_for_the_lecture():
    assert set(DOCKS) == set(FAMILIES)
    for family, docks in DOCKS.items():
        assert docks and len(set(docks)) == len(docks), family


def test_a_step_file_opens_its_lecture_at_that_step(tmp_path, window, capsys):
    """A teacher gives the step to start at (where the last class stopped): the whole folder is checked and the
    window opens it at that step. It was "no such folder" for a file that is there."""
    first = default_lecture_folder() / "01-why-deep.json"
    twelfth = default_lecture_folder() / "12-receptive-fields.json"
    steps, start = load_lecture_at(twelfth)
    assert steps[start].path.name == "12-receptive-fields.json" and start == 11 and len(steps) >= 15
    assert load_lecture_at(first)[1] == 0 and load_lecture_at(default_lecture_folder())[1] == 0
    assert main(["lecture", str(twelfth)]) == 0
    assert window == [{"lecture": str(twelfth)}]
    with pytest.raises(LectureError) as err:
        load_lecture(first)  # (load_lecture takes the folder only; it says which)
    assert str(err.value) == (f"{first}: a file, not a folder: a lecture is the folder of step files that holds "
                              f"it, {first.parent}")
    other = tmp_path / "notes.txt"
    other.write_text("x")
    assert main(["lecture", str(other)]) == 2
    assert capsys.readouterr().err == (f"explorer: error: {other}: not a step file (*.json): a lecture is a "
                                       "folder of step files, or one of them to start at\n")
    broken = shipped_copy(tmp_path)
    set_dock("nope")(broken)
    assert main(["lecture", str(broken / "12-receptive-fields.json")]) == 2  # the whole folder is checked
    assert f"{broken / '02-rbm-energy.json'}: dock: " in capsys.readouterr().err
    assert window == [{"lecture": str(twelfth)}]
