"""A run's settings, each declared once: its range, and when a change to it takes effect.

A family's configuration is a dataclass of :class:`Settings` whose fields are made with :func:`setting`.
The field says what a valid value is (a whole number, a number, one of some choices, between two
bounds), whether a change applies to the running model at once (``live``), only after a Reset
(``reset``), or also reloads the data set (``data``). :meth:`Settings.validate` checks every field
the same way, with a message that names the setting, the range and the value; rules that tie settings
together go in :meth:`Settings.check`. :func:`apply_settings` applies changes with those flags.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

_METADATA_KEY = "setting"

SettingsT = TypeVar("SettingsT", bound="Settings")


@dataclass(frozen=True)
class Rule:
    """What a valid value of one setting is, and when a change to it takes effect."""

    kind: str | None = None        # "int": a whole number; "number": a finite real number; None: not checked
    lo: float | None = None
    hi: float | None = None
    above: bool = False            # lo itself is not allowed (lo < value)
    below: bool = False            # hi itself is not allowed (value < hi)
    choices: tuple[Any, ...] | None = None
    optional: bool = False         # None is allowed too
    label: str | None = None       # what a message calls the setting; by default its name, with spaces
    note: str | None = None        # said after the requirement, e.g. "0: off"
    live: bool = False             # a change applies between two steps
    reset: bool = False            # a change takes effect after Reset
    data: bool = False             # the data set is made from it: a change reloads the data on Reset

    def requirement(self) -> str:
        """What a valid value is, in words: "a whole number between 1 and 20000"."""
        if self.choices is not None:
            text = f"one of {', '.join(str(c) for c in self.choices)}"
        else:
            noun = "a whole number" if self.kind == "int" else "a number"
            lo, hi = self.lo, self.hi
            if lo is not None and hi is not None:
                if self.above or self.below:
                    text = f"{noun} in {'(' if self.above else '['}{lo}, {hi}{')' if self.below else ']'}"
                else:
                    text = f"{noun} between {lo} and {hi}"
            elif lo is not None:
                text = ("a positive number" if self.kind == "number" and lo == 0 and self.above
                        else f"{noun} {'>' if self.above else '>='} {lo}")
            elif hi is not None:
                text = f"{noun} {'<' if self.below else '<='} {hi}"
            else:
                text = noun
        note = self.note or ("or none" if self.optional else None)
        return f"{text} ({note})" if note else text

    def allows(self, value: Any) -> bool:
        if value is None and self.optional:
            return True
        if self.choices is not None:
            return value in self.choices
        if self.kind == "int":
            if not isinstance(value, numbers.Integral) or isinstance(value, bool):
                return False
        elif self.kind == "number":
            if (not isinstance(value, numbers.Real) or isinstance(value, bool)
                    or not math.isfinite(value)):
                return False
        else:
            return True
        if self.lo is not None and (value <= self.lo if self.above else value < self.lo):
            return False
        if self.hi is not None and (value >= self.hi if self.below else value > self.hi):
            return False
        return True

    def check(self, name: str, value: Any) -> None:
        """ValueError naming the setting, what it must be, and the value given, unless ``value`` is valid."""
        if not self.allows(value):
            label = self.label or name.replace("_", " ")
            raise ValueError(f"{label} must be {self.requirement()}, got {value!r}")


def setting(default: Any, *, kind: str | None = None, lo: float | None = None, hi: float | None = None,
            above: bool = False, below: bool = False, choices: Sequence[Any] | None = None,
            optional: bool = False, label: str | None = None, note: str | None = None,
            live: bool = False, reset: bool = False, data: bool = False) -> Any:
    """A dataclass field of a :class:`Settings`: its default, its valid values and when a change applies.

    ``kind`` "int" or "number" (a finite real) with optional bounds ``lo``/``hi`` (included unless
    ``above``/``below``); or ``choices``. ``live``: a change applies between two steps; ``reset``: after
    Reset; ``data``: the data set is made from it (implies ``reset``).
    """
    if live and (reset or data):
        raise ValueError("a setting applies live or after Reset, not both")
    if kind not in (None, "int", "number"):
        raise ValueError(f"unknown kind of setting {kind!r}")
    rule = Rule(kind=kind, lo=lo, hi=hi, above=above, below=below,
                choices=tuple(choices) if choices is not None else None, optional=optional, label=label,
                note=note, live=live, reset=reset or data, data=data)
    return dataclasses.field(default=default, metadata={_METADATA_KEY: rule})


def rules(cls_or_obj: Any) -> dict[str, Rule]:
    """Each declared setting's rule, by name, in the order of the fields."""
    return {f.name: f.metadata[_METADATA_KEY] for f in dataclasses.fields(cls_or_obj)
            if _METADATA_KEY in f.metadata}


@dataclass
class Settings:
    """Base of the families' configurations: one validation, the flags, and the JSON form of a run folder."""

    def validate(self) -> None:
        """Every declared setting within its rule, then the rules between settings (:meth:`check`)."""
        for name, rule in rules(self).items():
            rule.check(name, getattr(self, name))
        self.check()

    def check(self) -> None:
        """Rules that tie settings together (a subclass's); ValueError with a message for the user."""

    @classmethod
    def live_settings(cls) -> set[str]:
        """Settings whose change applies between two steps."""
        return {name for name, rule in rules(cls).items() if rule.live}

    @classmethod
    def reset_settings(cls) -> set[str]:
        """Settings whose change takes effect after Reset (the model must be re-initialised)."""
        return {name for name, rule in rules(cls).items() if rule.reset}

    @classmethod
    def data_settings(cls) -> tuple[str, ...]:
        """Settings the data set is made from, in field order: a change to any reloads it on Reset."""
        return tuple(name for name, rule in rules(cls).items() if rule.data)

    @classmethod
    def from_dict(cls: type[SettingsT], d: dict[str, Any]) -> SettingsT:
        """From a run folder's JSON; names this class does not know are left out."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def apply_settings(config: Settings, changes: dict[str, Any],
                   on_live: Callable[[str, Any], str | None] | None = None,
                   reset_reason: str = "the model must be re-initialised") -> list[str]:
    """Check ``changes`` on a copy of ``config`` (ValueError with a message if any is refused), then
    apply them: a live one at once (``on_live(key, value)`` passes it on, and may return the words that
    replace "applied now" in its notice), the others for Reset. Returns the notices for the user."""
    unknown = set(changes) - {f.name for f in dataclasses.fields(config)}
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    dataclasses.replace(config, **changes).validate()
    live, needs_reset = config.live_settings(), config.reset_settings()
    notices: list[str] = []
    for key, value in changes.items():
        if getattr(config, key) == value:
            continue
        setattr(config, key, value)
        if key in live:
            said = on_live(key, value) if on_live is not None else None
            notices.append(f"{key} = {value} ({said or 'applied now'})")
        elif key in needs_reset:
            notices.append(f"{key} = {value}: takes effect after Reset ({reset_reason})")
    return notices
