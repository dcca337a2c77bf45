"""The ``lecture`` command: open the window on the lecture, step by step.

    python -m explorer lecture                              the lecture shipped in samples/lecture
    python -m explorer lecture my-lecture/                  a folder of step files of your own (see the README)
    python -m explorer lecture my-lecture/05-training.json  that lecture, opened at that step

Every step file is checked before the window opens, each run folder a step opens as ``explorer inspect``
checks it and each dock against its panel's: a bad one is one line naming the file and the fault, exit 2,
and no window.
"""

from __future__ import annotations

import argparse

from explorer.cli.common import UsageError


def add_lecture_parser(sub) -> None:
    """``lecture`` on the top-level sub-parsers ``sub``."""
    p = sub.add_parser("lecture", help="the lecture, step by step, each step on its live panel",
                       description="Open the window on a lecture: PgDown/PgUp for the next and previous step.")
    p.add_argument("folder", nargs="?", help="a folder of step files (default: the lecture in samples/lecture), "
                                             "or one of its step files to open the lecture at that step")
    p.set_defaults(func=cmd_lecture)


def cmd_lecture(args: argparse.Namespace) -> int:
    from explorer.core.lecture.steps import LectureError, default_lecture_folder, load_lecture_at

    folder = args.folder if args.folder is not None else default_lecture_folder()
    try:
        load_lecture_at(folder)
    except LectureError as exc:
        raise UsageError(str(exc)) from None
    from explorer.gui.app import run_app

    return run_app(lecture=str(folder))  # (a step file: the window opens its folder at that step)
