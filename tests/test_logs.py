"""The log file and the per-user folders: where they are, what overrides them, what gets written."""

import logging
import logging.handlers
import sys
from pathlib import Path

import platformdirs
import pytest

from explorer.core import logs, paths


@pytest.fixture
def log_dir(tmp_path, monkeypatch):
    """A throw-away log folder; the app's log handler is taken off again afterwards."""
    folder = tmp_path / "logs"
    monkeypatch.setenv("NETWORK_EXPLORER_LOG_DIR", str(folder))
    yield folder
    forget_the_log_handler()


def forget_the_log_handler() -> None:
    """As in a new process: no log handler yet."""
    if logs._handler is not None:
        logging.getLogger("explorer").removeHandler(logs._handler)
        logs._handler.close()
        logs._handler = None


def read_log(folder: Path) -> str:
    logs._handler.flush()
    return (folder / "explorer.log").read_text(encoding="utf-8")


def test_configure_logging_writes_the_explorer_loggers_to_a_file(log_dir):
    path = logs.configure_logging(role="test")
    assert path == log_dir / "explorer.log"
    logging.getLogger("explorer.core.persist.autosave").warning("the disk is full")
    logging.getLogger("explorer.core.persist.autosave").debug("not at the INFO level")
    logging.getLogger("somebody.else").error("not ours")
    assert logs.configure_logging(role="test") == path  # again: still one handler
    lines = read_log(log_dir).splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(f"INFO explorer.core.logs: Network Explorer {logs.__version__}, test, process "
                             f"{lines[0].split()[2]}")
    assert lines[1].endswith("WARNING explorer.core.persist.autosave: the disk is full")


def test_a_changed_log_folder_moves_the_file(log_dir, tmp_path, monkeypatch):
    logs.configure_logging()
    other = tmp_path / "elsewhere"
    monkeypatch.setenv("NETWORK_EXPLORER_LOG_DIR", str(other))
    assert logs.configure_logging() == other / "explorer.log"
    logging.getLogger("explorer.x").warning("here")
    assert read_log(other).count("here") == 1 and "here" not in (log_dir / "explorer.log").read_text()
    assert sum(isinstance(h, logging.handlers.RotatingFileHandler) for h in logging.getLogger("explorer").handlers) == 1


def test_an_unwritable_log_folder_leaves_the_app_without_a_log(log_dir, monkeypatch, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("NETWORK_EXPLORER_LOG_DIR", str(blocker / "logs"))
    assert logs.configure_logging() is None


def test_the_command_line_and_the_window_start_the_log(log_dir, monkeypatch, capsys):
    from explorer.cli import main

    assert main(["spec", "presets"]) == 0
    assert ", cli, process " in read_log(log_dir)

    import explorer.gui.app as app

    class Stop(Exception):
        pass

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(app, "make_app", stop)  # run_app goes no further than its first lines
    with pytest.raises(Stop):
        app.run_app()
    assert ", gui, process " in read_log(log_dir)


def test_a_failed_autosave_is_logged(tmp_path, caplog):
    from explorer.core.engine.session import TrainingSession
    from explorer.core.families.rbm.trainer import RBMConfig, RBMTrainer
    from explorer.core.persist.commands import autosave_to

    session = TrainingSession(RBMTrainer(RBMConfig(dataset="digits", hidden=8, device="cpu")))
    try:
        blocker = tmp_path / "a_file"
        blocker.write_text("x")
        with caplog.at_level(logging.ERROR, logger="explorer"), pytest.raises(OSError):
            autosave_to(session, str(blocker / "autosave"))
    finally:
        session.close()
    (record,) = [r for r in caplog.records if r.name == "explorer.core.persist.commands"]
    assert record.levelno == logging.ERROR and record.getMessage() == f"autosave to {blocker / 'autosave'} failed"
    assert record.exc_info is not None


def test_the_per_user_folders_follow_the_platform(monkeypatch, tmp_path):
    for name in ("NETWORK_EXPLORER_CACHE", "NETWORK_EXPLORER_LOG_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name in ("XDG_CACHE_HOME", "XDG_STATE_HOME"):  # (read on Linux)
        monkeypatch.setenv(name, str(tmp_path / name))
    app = "network-explorer"
    assert paths.cache_dir() == Path(platformdirs.user_cache_dir(app, appauthor=False))
    assert paths.autosave_dir() == Path(platformdirs.user_state_dir(app, appauthor=False)) / "autosave"
    assert paths.log_dir() == Path(platformdirs.user_log_dir(app, appauthor=False))
    if sys.platform.startswith("linux"):
        assert paths.cache_dir() == tmp_path / "XDG_CACHE_HOME" / app
        assert paths.autosave_dir() == tmp_path / "XDG_STATE_HOME" / app / "autosave"
        assert paths.log_dir() == tmp_path / "XDG_STATE_HOME" / app / "log"
    from explorer.core.data.datasets import default_cache_dir
    from explorer.core.persist.autosave import autosave_root

    assert default_cache_dir() == paths.cache_dir() and autosave_root() == paths.autosave_dir()


def test_the_environment_overrides_the_folders(monkeypatch, tmp_path):
    monkeypatch.delenv("NETWORK_EXPLORER_LOG_DIR", raising=False)
    monkeypatch.setenv("NETWORK_EXPLORER_CACHE", str(tmp_path / "c"))
    assert (paths.cache_dir(), paths.autosave_dir(), paths.log_dir()) == (
        tmp_path / "c", tmp_path / "c" / "autosave", tmp_path / "c" / "logs")
    monkeypatch.setenv("NETWORK_EXPLORER_LOG_DIR", str(tmp_path / "l"))
    assert paths.log_dir() == tmp_path / "l" and logs.log_file() == tmp_path / "l" / "explorer.log"
