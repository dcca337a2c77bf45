"""Command line: open the app, train headless, render a panel to PNG.

    python -m explorer                      open the app (digits, RBM)
    python -m explorer --version
    python -m explorer gui [--run DIR] [--dataset NAME] [--data-dir DIR]
    python -m explorer lecture [FOLDER]     the lecture, step by step
    python -m explorer attach HOST:PORT|FOLDER [--token T | --token-file F] [--follow]   a script's own model
    python -m explorer train rbm|autoencoder|ae|dae|dbn|mlp [options] [--json]
    python -m explorer train lstm|rnn --task adding|recall|sine|sawtooth|text [options] [--json]
    python -m explorer train cnn [--preset NAME | --spec FILE] [--image-folder DIR] [options] [--json]
    python -m explorer snapshot rbm|ae|dae|gradients|pretrain --steps N --out FILE.png [options]
    python -m explorer snapshot cnn --steps N --out FILE.png [options]
    python -m explorer snapshot lstm|rnn --task NAME --steps N --out FILE.png [options]
    python -m explorer spec check|summary|export|presets ...
    python -m explorer inspect PATH         a run folder, weights file or network file, summarised
    python -m explorer export RUN [--onnx FILE] [--safetensors FILE]   a run's model for use elsewhere

Errors: bad arguments, a file that cannot be read or written, work past a limit exit with status 2 and one
line on stderr (``--json`` runs also print ``{"error": "..."}`` on stdout); an internal error (a fault of the
app itself) exits with status 3 and one line saying where its full traceback is: the log file. Ctrl+C, at
any moment, exits with status 130 and one line saying how far the command got ("interrupted at step 120;
run folder runs/a was not written"): :func:`run`, the program itself, handles the moments before and after
:func:`main`.

One module per command or model family adds its sub-parsers and names the function that runs each
(``set_defaults(func=...)``); they share ``common``, which imports none of them. This module only puts the
parser together, in the order ``--help`` lists the commands, and runs what was asked for.
"""

from __future__ import annotations

import os

# Training runs on a background thread. With OpenMP's default (active) waiting, the idle worker of the
# main thread's team spins on one of the cores the training thread's team needs: on a 2-core machine the
# same DAE step ran about 13% slower on a plain thread than on the main thread, and the GUI thread lost
# CPU too. Passive waiting removes the difference (benchmarks/README.md). It must be set before torch
# loads OpenMP, so the app sets it here, where every start of the app (``python -m explorer``, the
# console script) comes first, and the training processes it starts inherit it; a value the user set
# wins. ``import explorer`` alone leaves it alone: a user's script with its loop on the main thread
# ran up to 3x slower on the CPU with passive waiting.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402
import logging
import select
import signal
import stat
import sys
from collections.abc import Sequence
from typing import NoReturn

from explorer import __version__
from explorer.cli import (
    attach,
    autoencoder,
    cnn,
    export,
    fcn,
    gui,
    inspect,
    lecture,
    mlp,
    rbm,
    recurrent,
    serve,
    snapshot,
    spec,
    train,
)
from explorer.cli.common import (
    WORK,
    OneLineParser,
    UsageError,
    check_out_options,
    ignore_further_ctrl_c,
    one_line,
    option_for,
)
from explorer.core.limits import LimitError
from explorer.core.logs import configure_logging, log_file

PROG = "network-explorer"
"""The program's name in usage lines: the console script's. ``python -m explorer`` passes its own."""

__all__ = ["PROG", "EXIT_ERROR", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_PIPE_CLOSED", "build_parser", "main",
           "run"]

EXIT_ERROR = 2      # the user's input or environment: one line says what and where
EXIT_INTERNAL = 3   # a fault of the app: one line says where the full traceback is
EXIT_INTERRUPTED = 130  # Ctrl+C (128 + SIGINT, as a shell reports it): one line says how far it got
EXIT_PIPE_CLOSED = 141  # the output's reader closed it (128 + SIGPIPE, as a shell reports a tool it ended)

log = logging.getLogger("explorer.cli")


def build_parser(prog: str = PROG) -> OneLineParser:
    """The whole parser; ``prog`` names the program in its usage lines (and those of every sub-command)."""
    parser = OneLineParser(prog=prog, description="Network Explorer: watch neural networks learn, live.")
    parser.add_argument("--version", action="version", version=f"Network Explorer {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)

    gui.add_gui_parser(sub)
    attach.add_attach_parser(sub)
    serve.add_serve_parser(sub)
    lecture.add_lecture_parser(sub)

    fam = train.add_train_command(sub)
    rbm.add_train_parser(fam)
    autoencoder.add_train_parsers(fam)
    mlp.add_train_parsers(fam)  # dbn, mlp
    fcn.add_train_parser(fam)
    cnn.add_train_parser(fam)
    recurrent.add_train_parsers(fam)  # lstm, rnn

    spec.add_spec_commands(sub)
    export.add_export_parser(sub)
    inspect.add_inspect_parser(sub)

    panels = snapshot.add_snapshot_command(sub)
    rbm.add_snapshot_parser(panels)
    autoencoder.add_snapshot_parsers(panels)
    mlp.add_snapshot_parsers(panels)  # gradients, pretrain
    recurrent.add_snapshot_parsers(panels)  # lstm, rnn
    fcn.add_snapshot_parsers(panels)  # fcn, fcn-compare
    cnn.add_snapshot_parser(panels)
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> int:
    """Run the command line (``argv``, else ``sys.argv[1:]``); returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    WORK.reset()
    if not argv:
        # the plain launch: straight to the window, without the parser or the log set-up (torch, which
        # the commands need, the start-up window loads on a thread while it is already on screen; see
        # gui/startup.py)
        WORK.started = True
        try:
            return gui.cmd_gui(None)
        except KeyboardInterrupt:  # before the window took Ctrl+C over (it closes the windows then)
            return _interrupted()
    as_json = "--json" in argv
    args = None
    logged_to = None
    try:  # all of it: a Ctrl+C while the parser is built is one line too
        logged_to = configure_logging(role="cli")
        parser = build_parser(prog)
        args = parser.parse_args(argv)
        WORK.reset(args)
        as_json = bool(getattr(args, "json", False))
        command = getattr(args, "func", None)
        if command is None:  # options but no command: the window, as with no arguments
            return gui.cmd_gui(None)
        check_out_options(args)  # an --out that cannot be written is refused before any work
        return command(args)
    except UsageError as exc:
        return _error(str(exc), as_json)
    except LimitError as exc:  # work past a limit: the option that asked for it is named
        option = option_for(args, exc.setting)
        return _error(f"{option}: {exc}" if option else str(exc), as_json)
    except BrokenPipeError as exc:  # ``| head`` read what it wanted and closed the pipe: no error of the user's
        if _stdout_closed():
            return EXIT_PIPE_CLOSED
        return _error(_describe(exc), as_json)
    except (ValueError, OSError) as exc:  # DataError, DeviceError, SpecError, RunFolderError, file errors
        return _error(_describe(exc), as_json)
    except MemoryError:
        return _error("not enough memory for this (lower the sizes asked for)", as_json)
    except KeyboardInterrupt:  # the command's own clean-ups (finally blocks) have run
        return _interrupted()
    except Exception as exc:  # a fault of the app itself: its traceback goes to the log, not the terminal
        log.error("internal error running %s", " ".join(argv), exc_info=True)
        where = (f"the full traceback is in {logged_to}" if logged_to is not None
                 else f"no log file could be written at {log_file()}")
        return _error(f"internal error ({type(exc).__name__}: {exc}); {where}", as_json, EXIT_INTERNAL,
                      prefix="explorer: ")


def _stdout_closed() -> bool:
    """Whether whatever reads the output has closed it (a pipe's reader gone: ``| head`` had what it wanted).
    Then the rest of the output, and the interpreter's own flush at exit, go nowhere instead of printing an
    error ("explorer: error: [Errno 32] Broken pipe" after ``explorer spec presets | head -1``) and
    "Exception ignored" at exit. Where a pipe cannot be polled (Windows), it is never taken as closed."""
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        poll = select.poll()
        poll.register(fd, 0)  # (POLLERR: a pipe's write end whose reader closed it)
        if not any(event & select.POLLERR for _fd, event in poll.poll(0)):
            return False
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # (no file descriptor; no poll)
        return False
    return True


def _interrupted() -> int:
    """The line of a Ctrl+C, and its status; a second Ctrl+C from here on (this line's making, the flush and
    the log's closing in :func:`run`) is ignored."""
    ignore_further_ctrl_c()
    print(f"explorer: {one_line(WORK.interrupted())}", file=sys.stderr)
    return EXIT_INTERRUPTED


def run(prog: str = PROG) -> NoReturn:
    """The program (the console script; ``python -m explorer``): :func:`main` on ``sys.argv``, then its exit.

    A Ctrl+C is one line and status 130 at every moment, :func:`main`'s own and those around it:

    * after a Ctrl+C that :func:`main` caught, the process ends at once (``os._exit``, its output flushed and
      its log closed). Left to the interpreter's exit, its status was now and then death by SIGINT, not 130:
      CPython marks a KeyboardInterrupt "unhandled" once it has left an ``exec`` of a string (a Ctrl+C that
      lands while a dataclass is being made, say), caught or not, and kills itself with SIGINT at exit.
    * after the command has returned, the interpreter's exit (a second or two: torch's exit handlers, its
      modules torn down) ran with Python's handler in place: a Ctrl+C then raised KeyboardInterrupt inside
      those handlers, printed as tracebacks ("Exception ignored in atexit callback"), and the command's status
      stood. It now ends the process with the same line as :func:`main` and status 130.
    * before :func:`main`, while the command line itself loads: :func:`explorer.entry.run` catches it.
    """
    status = main(prog=prog)
    _stdout_closed()  # (a closed pipe: what is left to write goes nowhere, not reported again at exit)
    _flush()
    if status == EXIT_INTERRUPTED:
        logging.shutdown()
        os._exit(status)
    if signal.getsignal(signal.SIGINT) not in (signal.SIG_IGN, None):  # (ignored: left ignored)
        signal.signal(signal.SIGINT, _interrupted_at_exit)
    sys.exit(status)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe (``| head``) or stream: nothing more can go there
            pass


def _interrupted_at_exit(_signum, _frame) -> None:
    """Ctrl+C while the interpreter exits, the command done: its line, status 130, no exit handler's traceback."""
    try:
        os.write(2, f"explorer: {one_line(WORK.interrupted())}\n".encode(errors="replace"))
    except OSError:
        pass
    os._exit(EXIT_INTERRUPTED)


def _describe(exc: BaseException) -> str:
    """An error in its own words; a system error as "FILE: reason" rather than "[Errno N] reason: 'FILE'"."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        target = f" -> {exc.filename2}" if exc.filename2 is not None else ""
        return f"{exc.filename}{target}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _error(message: str, as_json: bool, status: int = EXIT_ERROR, prefix: str = "explorer: error: ") -> int:
    """Report an error as one line on stderr (and as ``{"error": ...}`` on stdout for ``--json``)."""
    text = one_line(message)
    print(f"{prefix}{text}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": text}))
    return status
