"""The lecture as data: a folder of step files, each checked before the window acts on it.

Why data: a teacher reorders, edits and adds steps without touching code, so every field of a step file
is checked here (Qt-free, like every file the app reads) and a bad file is one message
``FILE: what is wrong, where``. The window (``explorer/gui/lecture.py``) only carries out a checked step.
"""

from explorer.core.lecture.docks import DOCKS
from explorer.core.lecture.equations import EquationError, equation_html
from explorer.core.lecture.steps import LectureError, Step, load_lecture, load_lecture_at, load_step

__all__ = ["DOCKS", "EquationError", "LectureError", "Step", "equation_html", "load_lecture", "load_lecture_at",
           "load_step"]
