"""Soak test: a long training run in the real window, views refreshing, autosaving periodically.

It reports resident memory over time, every error (a Python exception reaching the event loop, a
Qt warning or critical message, a session that stopped on an error) and every dropped save: an
autosave that did not finish within its time, or whose folder does not load back at the step it
was asked to save. Nothing here is timed against a target; it is a script that prints figures.

    python benchmarks/soak.py                                  # 30 minutes, RBM on the digits
    python benchmarks/soak.py --minutes 30 --data-dir ~/data/mnist --family rbm --json soak.json
    python benchmarks/soak.py --minutes 10 --families rbm,cnn,lstm   # switch family every few minutes
    python benchmarks/soak.py --minutes 1 --autosave-every 10       # a quick check

Autosaves go to a temporary folder (``NETWORK_EXPLORER_CACHE`` is pointed there), so the user's own
autosave is never touched. The window is offscreen unless a display is set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the app does (see explorer/cli/__init__.py)
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run import _rss_mb  # noqa: E402 (resident memory, read as the suite reads it)

SAVE_TIMEOUT_S = 60.0  # an autosave still not done after this long counts as dropped


def _config(family: str, data_dir: str | None):
    """A config of ``family`` on MNIST when ``data_dir`` has it, else on the bundled digits."""
    from explorer.core.families.registry import FAMILIES

    cfg_cls = FAMILIES[family].config_cls
    fields = getattr(cfg_cls, "__dataclass_fields__", {})
    kwargs = {"device": "cpu"}
    if data_dir and "dataset" in fields and family not in ("fcn", "fcn-compare", "lstm", "rnn"):
        kwargs.update(dataset="mnist", data_dir=data_dir)
    return cfg_cls(**kwargs)


def soak(families: list[str], minutes: float, autosave_every: float, sample_every: float, data_dir: str | None,
         refresh_hz: float, log=print) -> dict:
    cache = tempfile.mkdtemp(prefix="soak-")
    os.environ["NETWORK_EXPLORER_CACHE"] = cache
    from PySide6 import QtCore, QtWidgets

    from explorer.core.persist.runfolder import RunFolderError, load_run
    from explorer.gui.main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    errors: list[str] = []
    qt_warnings: list[str] = []

    def on_exception(kind, value, tb) -> None:
        errors.append("".join(traceback.format_exception(kind, value, tb)).strip().splitlines()[-1])

    def on_qt_message(mode, context, message) -> None:
        if "propagateSizeHints" in message:  # the offscreen platform's notice about window hints
            return
        if mode in (QtCore.QtMsgType.QtWarningMsg, QtCore.QtMsgType.QtCriticalMsg, QtCore.QtMsgType.QtFatalMsg):
            qt_warnings.append(message)

    sys.excepthook = on_exception
    QtCore.qInstallMessageHandler(on_qt_message)
    settings = QtCore.QSettings(os.path.join(cache, "s.ini"), QtCore.QSettings.Format.IniFormat)
    win = MainWindow(_config(families[0], data_dir), settings=settings, refresh_hz=refresh_hz)
    win.resize(1600, 1000)
    win.show()
    win.autosave_interval_s = 1e9  # this script asks for autosaves itself, on its own clock
    samples: list[dict] = []
    saves: list[dict] = []
    pending: list[tuple[dict, object]] = []
    t0 = time.monotonic()
    switch_every = minutes * 60 / len(families)
    current = [0]

    def elapsed() -> float:
        return time.monotonic() - t0

    def sample() -> None:
        s = win.session
        row = {"t_s": round(elapsed(), 1), "family": win.family, "step": int(s.trainer.step) if s else 0,
               "rss_mb": round(_rss_mb(), 1), "timeline_mb": round(win.panel.timeline.bytes_used / 2**20, 1),
               "redraws": win.redraws, "errors": len(errors) + len(qt_warnings),
               "saves_ok": sum(1 for v in saves if v["ok"]), "saves_dropped": sum(1 for v in saves if not v["ok"])}
        if s is not None and s.error:
            errors.append(f"session stopped: {s.error}")
            s.start()  # go on: the soak wants to see whether it recovers
        samples.append(row)
        log(f"{row['t_s']:8.0f} s  {row['family']:>8}  step {row['step']:>8,}  rss {row['rss_mb']:8.1f} MB  "
            f"(timeline {row['timeline_mb']:6.1f})  redraws {row['redraws']:>7,}  saves ok {row['saves_ok']:>3}  dropped {row['saves_dropped']:>2}  "
            f"errors {row['errors']}")

    def autosave() -> None:
        s = win.session
        if s is None or win.autosave is None:
            return
        record = {"t_s": round(elapsed(), 1), "step_asked": int(s.trainer.step), "ok": False, "why": ""}
        pending.append((record, win.autosave_now()))

    def check_saves() -> None:
        for record, done in list(pending):
            waited = elapsed() - record["t_s"]
            if done.is_set():
                pending.remove((record, done))
                try:
                    run = load_run(win.autosave.folder)
                    record["step_saved"] = run.step
                    record["ok"] = run.step >= record["step_asked"]
                    record["why"] = "" if record["ok"] else f"saved step {run.step} < asked {record['step_asked']}"
                except RunFolderError as exc:
                    record["why"] = f"does not load: {exc}"
                record["seconds"] = round(waited, 2)
                saves.append(record)
            elif waited > SAVE_TIMEOUT_S:
                pending.remove((record, done))
                st = win.session
                record["why"] = (f"not done after {SAVE_TIMEOUT_S:.0f} s (session "
                                 f"{st.state if st else None}, step {st.trainer.step if st else None})")
                saves.append(record)

    def switch() -> None:
        current[0] += 1
        if current[0] < len(families):
            fam = families[current[0]]
            log(f"-- switching to {fam}")
            win._new_session(_config(fam, data_dir))
            if win.session is not None:
                win.session.start()

    timers = []
    for interval, fn in ((sample_every, sample), (autosave_every, autosave), (1.0, check_saves)):
        t = QtCore.QTimer()
        t.setInterval(int(interval * 1000))
        t.timeout.connect(fn)
        t.start()
        timers.append(t)
    if len(families) > 1:
        sw = QtCore.QTimer()
        sw.setInterval(int(switch_every * 1000))
        sw.timeout.connect(switch)
        sw.start()
        timers.append(sw)
    def finish() -> None:
        """Stop asking for saves, let the last ones land, then quit (quitting closes the window)."""
        for t in timers:
            t.stop()
        check_saves()
        if pending and elapsed() < minutes * 60 + SAVE_TIMEOUT_S:
            QtCore.QTimer.singleShot(100, finish)
        else:
            sample()
            app.quit()

    QtCore.QTimer.singleShot(300, win.toggle_play)
    QtCore.QTimer.singleShot(int(minutes * 60 * 1000), finish)
    log(f"soak: {minutes:g} min, families {','.join(families)}, autosave every {autosave_every:g} s, "
        f"refresh {refresh_hz:g}/s, pid {os.getpid()}")
    app.exec()
    win.close()
    QtCore.qInstallMessageHandler(None)

    # memory growth per family: from the end of its warm-up (a tenth of its samples, at least one) to its end
    segments: list[list[dict]] = []
    for row in samples:
        if not segments or segments[-1][-1]["family"] != row["family"]:
            segments.append([])
        segments[-1].append(row)
    per_family = []
    for seg in segments:
        first = seg[min(len(seg) - 1, max(1, len(seg) // 10))]
        after = first["rss_mb"]
        net0, net1 = after - first["timeline_mb"], seg[-1]["rss_mb"] - seg[-1]["timeline_mb"]
        per_family.append({"family": seg[0]["family"], "rss_after_warmup_mb": after, "rss_end_mb": seg[-1]["rss_mb"],
                           "growth": (seg[-1]["rss_mb"] - after) / after if after else 0.0,
                           "timeline_end_mb": seg[-1]["timeline_mb"],
                           "growth_excluding_timeline": (net1 - net0) / net0 if net0 else 0.0})
    last = per_family[-1]
    result = {
        "minutes": minutes, "families": families, "steps": samples[-1]["step"],
        "rss_after_warmup_mb": last["rss_after_warmup_mb"], "rss_end_mb": last["rss_end_mb"],
        "rss_max_mb": max(r["rss_mb"] for r in samples),
        "memory_growth": max(p["growth"] for p in per_family), "memory_by_family": per_family,
        "saves": len(saves), "saves_dropped": [s for s in saves if not s["ok"]],
        "errors": errors, "qt_warnings": qt_warnings[:50], "qt_warning_count": len(qt_warnings),
        "samples": samples, "save_log": saves,
    }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--family", default="rbm", help="the family to train (see --families to switch)")
    ap.add_argument("--families", default="", help="comma-separated: switch family every minutes/N")
    ap.add_argument("--autosave-every", type=float, default=120.0, help="seconds between autosaves")
    ap.add_argument("--sample-every", type=float, default=30.0, help="seconds between memory samples")
    ap.add_argument("--refresh-hz", type=float, default=20.0)
    ap.add_argument("--data-dir", default=None, help="MNIST IDX files (else the bundled digits)")
    ap.add_argument("--json", default=None, help="write the figures to this file")
    args = ap.parse_args(argv)
    families = [f for f in (args.families or args.family).split(",") if f]
    res = soak(families, args.minutes, args.autosave_every, args.sample_every, args.data_dir, args.refresh_hz)
    print()
    print(f"steps trained            {res['steps']:,}")
    for p in res["memory_by_family"]:
        print(f"resident memory {p['family']:>8} {p['rss_after_warmup_mb']:.0f} MB after warm-up, "
              f"{p['rss_end_mb']:.0f} MB at the end ({p['growth']:+.1%}; the timeline holds {p['timeline_end_mb']:.0f} MB "
              f"of its bound, growth without it {p['growth_excluding_timeline']:+.1%})")
    print(f"peak resident memory     {res['rss_max_mb']:.0f} MB; largest growth {res['memory_growth']:+.1%}")
    print(f"autosaves                {res['saves']} done, {len(res['saves_dropped'])} dropped")
    for d in res["saves_dropped"]:
        print(f"  dropped at {d['t_s']:.0f} s: {d['why']}")
    print(f"errors                   {len(res['errors'])}" + "".join(f"\n  {e}" for e in res["errors"][:20]))
    print(f"Qt warnings              {res['qt_warning_count']}" + "".join(f"\n  {w}" for w in res["qt_warnings"][:10]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 1 if res["errors"] or res["saves_dropped"] else 0


if __name__ == "__main__":
    sys.exit(main())
