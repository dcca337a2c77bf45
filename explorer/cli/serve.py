"""The ``serve`` command: train the app's models on this machine for windows elsewhere.

    python -m explorer serve                                 127.0.0.1 on a free port, token file written
    python -m explorer serve --listen 0.0.0.0:7100 --token-file ~/serve.token
    python -m explorer serve --listen 0.0.0.0:7100 --tls-cert cert.pem --tls-key key.pem
    python -m explorer serve --gpus 4                        each cnn/fcn run trains on 4 GPUs (DDP)
    python -m explorer attach HOST:PORT --follow --token-file FILE.viewer.json     (a class, elsewhere)

It binds 127.0.0.1 unless told another host (then it prints a line saying the server is reachable from
the network; ``ssh -L`` is the recommended way across networks, see docs/remote.md). The token is
generated, printed and written to a file readable by its user alone. So is a second, *viewer* token, in
the token file and in one of its own beside it (``NAME.viewer.json``, to hand to a class): it lets a window
follow the newest run read-only (``attach HOST:PORT --follow``) and nothing else. Bad options: one line,
exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time

from explorer.cli.common import UsageError


def add_serve_parser(sub) -> None:
    """``serve`` on the top-level sub-parsers ``sub``."""
    p = sub.add_parser("serve", help="train models here for windows on other machines",
                       description="Run training sessions for windows that connect with the token "
                                   "(Training > Connect to a training server...).")
    p.add_argument("--listen", metavar="HOST:PORT", default="127.0.0.1:0",
                   help="where to listen (default 127.0.0.1 on a free port)")
    p.add_argument("--token-file", metavar="FILE",
                   help="where to write the token (default: a file in your runtime folder)")
    p.add_argument("--tls-cert", metavar="PEM",
                   help="speak TLS with this certificate (chain) file; windows then tick TLS when connecting")
    p.add_argument("--tls-key", metavar="PEM", help="the certificate's private key (if not in --tls-cert)")
    p.add_argument("--keep-detached", metavar="SECONDS", type=float, default=600.0,
                   help="how long a run trains on after its window's connection dropped (default 600)")
    p.add_argument("--gpus", type=int, default=None, metavar="N",
                   help="train each cnn or fcn run with DistributedDataParallel over N local processes: NCCL, "
                        "one GPU each, when there are N GPUs; gloo on the CPU otherwise (other families: one)")
    p.set_defaults(func=cmd_serve)


def tls_context(cert: str | None, key: str | None):
    """A server TLS context from the user's certificate; UsageError naming the option and the fault."""
    import ssl

    if cert is None:
        if key is not None:
            raise UsageError("--tls-key: given without --tls-cert")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise UsageError(f"--tls-cert {cert}: {exc.strerror} ({exc.filename or key})") from None
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(f"--tls-cert {cert}: not a certificate and key this server can use "
                         f"({getattr(exc, 'reason', None) or exc})") from None
    return context


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` as (host, port); UsageError naming the option and the fault."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise UsageError(f"--listen: expected HOST:PORT, got {text!r}")
    if not port.isdecimal() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen: expected a port from 0 to 65535, got {port!r}")
    return host, int(port)


def check_serve_gpus(gpus: int | None) -> tuple[int, str]:
    """The ranks each run takes and where they run (a line; empty for one); UsageError naming ``--gpus``."""
    if gpus is None:
        return 1, ""
    if gpus < 1:
        raise UsageError(f"--gpus: {gpus} is not a number of processes (1 or more)")
    from explorer.core.engine.distributed import plan

    try:
        the_plan = plan(gpus, "auto")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return the_plan.world, the_plan.describe() if the_plan.world > 1 else ""


def viewer_file_path(token_file):
    """Where the viewer-only token file goes: beside the token file, ``NAME.viewer.json``."""
    from pathlib import Path

    path = Path(token_file)
    return path.with_name(f"{path.stem}.viewer.json")


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the server, print where and the token, then serve until interrupted."""
    from explorer.core.remote.server import TrainingServer
    from explorer.core.wire.auth import new_token, write_token_file
    from explorer.core.wire.server import is_loopback

    host, port = parse_listen(args.listen)
    if not args.keep_detached >= 0 or args.keep_detached == float("inf"):
        raise UsageError(f"--keep-detached: expected a number of seconds, got {args.keep_detached}")
    context = tls_context(args.tls_cert, args.tls_key)
    ranks, where = check_serve_gpus(args.gpus)
    token, viewer_token = new_token(), new_token()
    try:
        server = TrainingServer(host, port, token=token, viewer_token=viewer_token, ssl_context=context,
                                keep_detached=args.keep_detached, ranks=ranks)
    except OSError as exc:
        raise UsageError(f"--listen {args.listen}: {exc.strerror or exc}") from None
    bound_host, bound_port = server.address
    bound = {"host": bound_host, "port": bound_port, "tls": context is not None}
    try:
        path = write_token_file(args.token_file, {**bound, "token": token, "viewer_token": viewer_token})
        viewer_path = write_token_file(viewer_file_path(path), {**bound, "token": viewer_token})
    except (OSError, ValueError) as exc:
        server.close()
        raise UsageError(f"--token-file {args.token_file}: {exc}") from None
    try:  # (from here on: a Ctrl+C, however early, closes the server; it escaped the prints before)
        server.start()
        print(f"serving training on {bound_host}:{bound_port}{' (TLS)' if context else ''}", flush=True)
        if not is_loopback(host):
            print(f"warning: {host} is reachable from the network; anyone with the token can train here "
                  f"(ssh -L is the recommended way, see docs/remote.md)", flush=True)
        if where:
            print(f"data-parallel runs (cnn, fcn): {where}", flush=True)
        print(f"token: {token}", flush=True)
        print(f"token file: {path}", flush=True)
        print(f"viewer token (follow read-only): {viewer_token}", flush=True)
        print(f"viewer token file: {viewer_path}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        server.close()
    return 0
