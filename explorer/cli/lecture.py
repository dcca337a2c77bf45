"""The ``lecture`` command: open the window on the lecture, step by step.

    python -m explorer lecture                 the lecture shipped in samples/lecture
    python -m explorer lecture my-lecture/     a folder of step files of your own (see the README)

Every step file is checked before the window opens: a bad one is one line naming the file and the
fault, exit 2.
"""

from __future__ import annotations

import argparse

from explorer.cli.common import UsageError


def add_lecture_parser(sub) -> None:
    """``lecture`` on the top-level sub-parsers ``sub``."""
    p = sub.add_parser("lecture", help="the lecture, step by step, each step on its live panel",
                       description="Open the window on a lecture: PgDown/PgUp for the next and previous step.")
    p.add_argument("folder", nargs="?", help="a folder of step files (default: the lecture in samples/lecture)")
    p.set_defaults(func=cmd_lecture)


def cmd_lecture(args: argparse.Namespace) -> int:
    from explorer.core.lecture.steps import LectureError, default_lecture_folder, load_lecture

    folder = args.folder if args.folder is not None else default_lecture_folder()
    try:
        load_lecture(folder)
    except LectureError as exc:
        raise UsageError(str(exc)) from None
    from explorer.gui.app import run_app

    return run_app(lecture=str(folder))
