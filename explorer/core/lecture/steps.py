"""A lecture step file (``samples/lecture/NN-name.json``) and a lecture folder, checked field by field.

A step says what to show and how to get there; the window does it (``explorer/gui/lecture.py``)::

    {"title": "...", "section": "RBMs", "text": "...", "equations": ["p(h_j = 1 | x) = \\\\sigma(...)"],
     "open": {"family": "rbm", "settings": {"hidden": 64}} | {"run": "../lessons/rbm-digits-half-trained"},
     "train_steps": 200, "play": false, "dock": "rbmHiddenDock", "builder": "lenet5",
     "walkthrough": false, "next": "Press Play and watch the filters."}

Steps run in the order of their file names. Settings go through the family's own checks, so a step
cannot ask for what the model box would refuse; a run folder is checked as ``explorer inspect`` checks it
(its files read, its weights against the model its run.json makes, without its training data), and a dock
against the docks of the panel the step opens: a step that would fail in front of the class fails here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from explorer.core.families.registry import FAMILIES
from explorer.core.lecture.docks import DOCKS
from explorer.core.lecture.equations import EquationError, equation_html
from explorer.core.safe_read import UnsafeFileError, escape_text, one_line, read_json

MAX_STEP_BYTES = 256 * 1024
MAX_STEPS = 200
MAX_TRAIN_STEPS = 5000      # a step opens within seconds on a 2-core laptop: longer training is a run folder
FIELDS = {"title", "section", "text", "equations", "open", "train_steps", "play", "dock", "builder",
          "walkthrough", "next"}


class LectureError(ValueError):
    """A step file or lecture folder that cannot be used: ``FILE: what is wrong, where``."""


@dataclasses.dataclass(frozen=True)
class Step:
    """One checked step: what the lecture pane shows and what the window opens."""

    path: Path
    title: str
    text: str
    section: str = ""
    equations: tuple[str, ...] = ()        # as written in the file
    equations_html: tuple[str, ...] = ()   # as rich text (equation_html)
    family: str | None = None              # open a new model of this family...
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # ...with these settings
    run: Path | None = None                # ...or this run folder
    train_steps: int = 0
    play: bool = False
    dock: str = ""
    builder: str = ""
    walkthrough: bool = False
    next: str = ""

    def make_config(self) -> Any:
        """The family's settings for this step (checked already when the file was read)."""
        assert self.family is not None
        cls = FAMILIES[self.family].config_cls
        return cls.from_dict({**cls().to_dict(), **self.settings})


def _text(raw: dict, key: str, where: str, limit: int, required: bool = False) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > limit:
        need = "a non-empty string" if required else "a string"
        raise LectureError(f"{where}: {key} must be {need} of at most {limit:,} characters, got "
                           f"{escape_text(repr(value))[:80]}")
    return value


def _bool(raw: dict, key: str, where: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise LectureError(f"{where}: {key} must be true or false, got {escape_text(repr(value))[:40]}")
    return value


def _settings(family: str, settings: Any, where: str) -> dict[str, Any]:
    if not isinstance(settings, dict):
        raise LectureError(f"{where}: open.settings must be an object of setting names and values")
    cls = FAMILIES[family].config_cls
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise LectureError(f"{where}: open.settings: {family} has no setting {escape_text(unknown[0])!r} "
                           f"(its settings: {', '.join(sorted(names))})")
    try:
        cls.from_dict({**cls().to_dict(), **settings}).validate()
    except (ValueError, TypeError) as exc:
        raise LectureError(f"{where}: open.settings: {escape_text(str(exc).splitlines()[0])}") from None
    return dict(settings)


def _run_family(run: Path, where: str, checked: dict[Path, str]) -> str:
    """The family of the run folder ``run``, once it is checked as ``explorer inspect`` checks one.

    Why that check: the window reads the run only when the step is reached, in front of the class; a corrupt
    weights file, or one that does not fit its run.json, must stop the lecture from opening instead.
    ``checked``: the folders checked already, with their families (steps of a lecture share runs)."""
    if run not in checked:
        from explorer.core.persist.inspect import inspect_run

        try:
            inspect_run(run)  # (the summary it writes is not needed, its checks are)
            checked[run] = str(read_json(run / "run.json")["family"])  # (a family of the registry, checked)
        except (ValueError, OSError) as exc:  # InspectError, UnsafeFileError, a limit: one line naming the file
            raise LectureError(f"{where}: open.run: {one_line(exc)}") from None
    return checked[run]


def _dock(raw: dict, family: str, where: str) -> str:
    dock = _text(raw, "dock", where, 80)
    if dock and dock not in DOCKS[family]:
        raise LectureError(f"{where}: dock: the {family} panel has no dock {escape_text(dock)!r} (its docks: "
                           f"{', '.join(DOCKS[family])})")
    return dock


def load_step(path: str | Path, runs: dict[Path, str] | None = None) -> Step:
    """The checked step in ``path``; LectureError naming the file and the fault. ``runs``: the run folders
    checked already by other steps, with their families (load_lecture reads each folder once)."""
    p = Path(path)
    where = str(p)
    try:
        raw = read_json(p, limit=MAX_STEP_BYTES, max_depth=8)
    except UnsafeFileError as exc:
        raise LectureError(str(exc).splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise LectureError(f"{where}: a step must be a JSON object, not {type(raw).__name__}")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise LectureError(f"{where}: unknown field {escape_text(unknown[0])!r} (a step has: "
                           f"{', '.join(sorted(FIELDS))})")
    title = _text(raw, "title", where, 120, required=True)
    text = _text(raw, "text", where, 3000, required=True)
    equations = raw.get("equations", [])
    if not isinstance(equations, list) or len(equations) > 8:
        raise LectureError(f"{where}: equations must be a list of at most 8 strings")
    rendered = []
    for k, eq in enumerate(equations):
        try:
            rendered.append(equation_html(eq))
        except EquationError as exc:
            raise LectureError(f"{where}: equations[{k}]: {escape_text(str(exc))}") from None
    opened = raw.get("open")
    family, settings, run = None, {}, None
    if not isinstance(opened, dict) or (("family" in opened) == ("run" in opened)):
        raise LectureError(f'{where}: open must be {{"family": NAME, "settings": {{...}}}} or {{"run": FOLDER}}')
    if "family" in opened:
        family = opened["family"]
        if family not in FAMILIES:
            raise LectureError(f"{where}: open.family must be one of {', '.join(FAMILIES)}, got "
                               f"{escape_text(repr(family))[:60]}")
        extra = sorted(set(opened) - {"family", "settings"})
        if extra:
            raise LectureError(f"{where}: open has an unknown field {escape_text(extra[0])!r}")
        settings = _settings(family, opened.get("settings", {}), where)
    else:
        extra = sorted(set(opened) - {"run"})
        if extra or not isinstance(opened["run"], str) or not opened["run"]:
            raise LectureError(f"{where}: open.run must be the path of a run folder, relative to the step file")
        run = (p.parent / opened["run"]).resolve()
        if not (run / "run.json").is_file():
            raise LectureError(f"{where}: open.run: {escape_text(run)} is not a run folder (no run.json)")
    steps = raw.get("train_steps", 0)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= MAX_TRAIN_STEPS:
        raise LectureError(f"{where}: train_steps must be a whole number from 0 to {MAX_TRAIN_STEPS:,}, got "
                           f"{escape_text(repr(steps))[:40]}")
    builder = _text(raw, "builder", where, 60)
    if builder:
        from explorer.core.spec.network import preset_names

        if builder not in preset_names():
            raise LectureError(f"{where}: builder must be a preset ({', '.join(preset_names())}), got "
                               f"{escape_text(builder)!r}")
    # the family whose panel the step shows; its run folder checked last, the one check that reads more than
    # the step file
    panel = str(family) if run is None else _run_family(run, where, {} if runs is None else runs)
    walkthrough = _bool(raw, "walkthrough", where)
    if walkthrough and panel != "rbm":
        raise LectureError(f"{where}: walkthrough (the CD-1 step-through) needs an RBM step, not {panel}")
    return Step(path=p, title=title, text=text, section=_text(raw, "section", where, 80),
                equations=tuple(equations), equations_html=tuple(rendered), family=family, settings=settings,
                run=run, train_steps=steps, play=_bool(raw, "play", where), dock=_dock(raw, panel, where),
                builder=builder, walkthrough=walkthrough, next=_text(raw, "next", where, 400))


def load_lecture(folder: str | Path) -> list[Step]:
    """Every step file (``*.json``) of ``folder``, in the order of their names, each checked."""
    d = Path(folder)
    if d.is_file():
        raise LectureError(f"{d}: a file, not a folder: a lecture is the folder of step files that holds it, "
                           f"{escape_text(d.parent)}")
    if not d.is_dir():
        raise LectureError(f"{d}: no such folder (a lecture is a folder of step files)")
    files = sorted(f for f in d.glob("*.json") if f.is_file())
    if not files:
        raise LectureError(f"{d}: no step files (*.json) in it")
    if len(files) > MAX_STEPS:
        raise LectureError(f"{d}: {len(files)} step files (the limit is {MAX_STEPS})")
    runs: dict[Path, str] = {}
    return [load_step(f, runs) for f in files]


def load_lecture_at(path: str | Path) -> tuple[list[Step], int]:
    """The lecture ``path`` names and the index of the step to open first: a folder opens at its first step,
    one of its step files at that step (a teacher picks up where the last class stopped), the whole folder
    checked either way."""
    p = Path(path)
    if not p.is_file():
        return load_lecture(p), 0
    if p.suffix != ".json":
        raise LectureError(f"{p}: not a step file (*.json): a lecture is a folder of step files, or one of "
                           "them to start at")
    steps = load_lecture(p.parent)
    here = p.resolve()
    return steps, next((k for k, step in enumerate(steps) if step.path.resolve() == here), 0)


def default_lecture_folder() -> Path:
    """``samples/lecture`` of this copy of the project (the lecture shipped with it)."""
    return Path(__file__).resolve().parents[3] / "samples" / "lecture"


__all__ = ["FIELDS", "LectureError", "MAX_TRAIN_STEPS", "Step", "default_lecture_folder", "load_lecture",
           "load_lecture_at", "load_step"]
