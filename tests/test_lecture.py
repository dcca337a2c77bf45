"""The lecture's step files (explorer.core.lecture), headless: every bundled step is valid, in the lecture's
order; hostile or mistaken step files are refused with a message naming the file and the fault; the
equations become rich text, and a typo in one is found when the file is read."""

import json
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.core.lecture import EquationError, LectureError, equation_html, load_lecture, load_step
from explorer.core.lecture.steps import default_lecture_folder

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
    assert frac.startswith("<table") and "<i>a</i>" in frac and "<i>b</i>" in frac and "bgcolor" in frac


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
