"""The Session protocol: every kind of session provides all of it, and the window never asks which it holds.

Headless (no Qt): the window's modules are read as source, not imported."""

import ast
import inspect
from pathlib import Path

import pytest

from explorer.core.engine.protocol import Session
from explorer.core.engine.session import MetricsLog, TrainingSession
from explorer.core.families.rbm.trainer import RBMConfig
from explorer.core.families.registry import make_trainer
from explorer.core.process.session import ProcessSession
from explorer.core.watch.session import WatchSession
from tests.watch_fakes import FakeSource, welcome

GUI = Path(__file__).resolve().parents[1] / "explorer" / "gui"
# the one module of the window that creates sessions, so the one that may name the process session
SESSION_FACTORY = GUI / "window" / "sessions.py"
SESSION_CLASSES = {"TrainingSession", "ProcessSession"}


def protocol_members(proto: type) -> dict[str, str]:
    """Name -> 'method', 'property' or 'attribute', for every public member the protocol declares."""
    members = {name: "attribute" for name in proto.__annotations__}
    for name, value in vars(proto).items():
        if name.startswith("_"):
            continue
        members[name] = "property" if isinstance(value, property) else "method"
    return members


def parameters(fn) -> list[tuple[str, object, object]]:
    """(name, kind, default) of each parameter after ``self``: what a caller may pass."""
    params = list(inspect.signature(fn).parameters.values())[1:]
    return [(p.name, p.kind, p.default) for p in params]


def test_the_protocol_lists_what_the_window_uses():
    members = protocol_members(Session)
    assert {n for n, kind in members.items() if kind == "property"} == {"state", "is_alive", "snapshot_hz",
                                                                          "in_own_process", "step_rate"}
    assert members["trainer"] == members["metrics"] == members["run_id"] == "attribute"
    assert members["run_command"] == members["latest_snapshot"] == members["close"] == "method"


@pytest.fixture(params=["thread", "process", "watch"])
def session(request):
    config = RBMConfig(dataset="bars", bars_size=4, hidden=8, batch_size=10, device="cpu", seed=1)
    if request.param == "thread":
        s = TrainingSession(make_trainer("rbm", config))
    elif request.param == "watch":  # a model trained in the user's own script, watched over a connection
        s = WatchSession(FakeSource(), welcome())
    else:
        s = ProcessSession(config, threads=1)
    yield s
    s.close()


def test_every_kind_of_session_provides_every_member(session):
    cls = type(session)
    for name, kind in protocol_members(Session).items():
        assert hasattr(session, name), f"{cls.__name__} has no {name}"
        declared = inspect.getattr_static(cls, name, None)
        if kind == "method":
            assert callable(declared), f"{cls.__name__}.{name} is not a method"
            assert parameters(declared) == parameters(getattr(Session, name)), f"{cls.__name__}.{name}"
        elif kind == "property":
            assert isinstance(declared, property), f"{cls.__name__}.{name} is not a property"
        else:  # an attribute each instance carries
            assert not callable(getattr(session, name)), f"{cls.__name__}.{name} should be a value"
    assert isinstance(session.metrics, MetricsLog) and isinstance(session.run_info, dict)


def test_each_says_where_it_trains(session):
    assert session.in_own_process is (type(session) in (ProcessSession, WatchSession))


def imported_modules(tree: ast.AST) -> set[str]:
    """Every module an import statement of ``tree`` names (``from a import b`` counts as a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def kind_checks(tree: ast.AST) -> list[int]:
    """Lines of ``isinstance(x, TrainingSession)`` or ``ProcessSession`` (alone or in a tuple)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance" \
                and len(node.args) == 2:
            named = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
            named |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
            if named & SESSION_CLASSES:
                lines.append(node.lineno)
    return lines


def test_only_the_session_factory_of_the_window_names_the_process_session():
    assert SESSION_FACTORY.exists()
    importers, checks = [], []
    for path in sorted(GUI.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if "explorer.core.process.session" in imported_modules(tree):
            importers.append(path.relative_to(GUI).as_posix())
        checks += [f"{path.relative_to(GUI).as_posix()}:{line}" for line in kind_checks(tree)]
    assert importers == [SESSION_FACTORY.relative_to(GUI).as_posix()]
    assert checks == []  # the window and panels never ask which kind of session they hold
