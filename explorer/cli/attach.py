"""The ``attach`` command: open the window on a model the user's own script trains (``explorer.watch``).

    python -m explorer attach 127.0.0.1:7000                 the token from the script's token file
    python -m explorer attach 127.0.0.1:7000 --token T --follow
    python -m explorer attach runs/exp1                      a watch folder (written by watch(logdir=...))
    python -m explorer attach gpu-host:7100 --follow --token-file serve.viewer.json
                                                             the run a training server trains (explorer serve)
    python -m explorer attach gpu-host:7100 --follow --token T --tls --cafile ca.pem
                                                             the same, a server started with --tls-cert

The run is opened (connected and greeted, or the folder read) before the window: a wrong address, token,
token file or folder is one line ``explorer: error: ...`` and exit status 2, and no window opens. Qt and
torch are imported only when the window opens.
"""

from __future__ import annotations

import argparse

from explorer.cli.common import UsageError


def add_attach_parser(sub) -> None:
    """``attach`` on the top-level sub-parsers ``sub``."""
    p = sub.add_parser("attach", help="watch a model your own script trains (explorer.watch)",
                       description="Open the window on a model trained in your own script: the address it "
                                   "watches on (HOST:PORT) or the folder it writes (watch(..., logdir=...)).")
    p.add_argument("target", metavar="HOST:PORT|FOLDER", help="the address the script printed, or its watch folder")
    token = p.add_mutually_exclusive_group()
    token.add_argument("--token", help="the script's token (default: from its token file in your runtime folder)")
    token.add_argument("--token-file", metavar="FILE", help="the token file the script wrote")
    p.add_argument("--follow", action="store_true",
                   help="follow the run read-only: this window cannot pause, step or change it (a training "
                        "server's run, explorer serve, is always followed read-only)")
    p.add_argument("--tls", action="store_true",
                   help="speak TLS (a training server started with --tls-cert; on by itself when the token "
                        "file says so)")
    p.add_argument("--cafile", metavar="PEM",
                   help="the certificate that signed the server's, if not one this system trusts (implies --tls)")
    p.set_defaults(func=cmd_attach)


def cmd_attach(args: argparse.Namespace) -> int:
    """Open the run, then the window on it."""
    from explorer.core.watch.attach import AttachError, open_source, read_token

    if args.token is not None and not args.token.strip():
        raise UsageError("--token: expected a token, got an empty one")
    info = None
    if args.token_file is not None:
        try:
            info = read_token(args.token_file)
        except AttachError as exc:
            raise UsageError(f"--token-file {exc}") from None
    try:
        opened = open_source(args.target, token=args.token.strip() if args.token else None, token_info=info,
                             follow=args.follow, tls=args.tls, cafile=args.cafile)
    except AttachError as exc:
        raise UsageError(str(exc)) from None

    from explorer.gui.app import run_app

    return run_app(attach=opened)
