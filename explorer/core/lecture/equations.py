"""A lecture step's equations, from a small LaTeX-like text to rich text a projector can show.

Why not ASCII: ``sigma(sum_i w_ij x_i)`` is hard to read from the back of a room. The syntax is the part of
LaTeX the lecture uses: Greek letters and operators as ``\\name``, ``_{...}`` and ``^{...}`` (or one
character), ``\\frac{a}{b}``, ``\\hat{x}``, ``\\tilde{x}``, ``\\bar{x}``, ``\\mathbf{x}``, ``\\text{...}``.
The output is the HTML subset Qt's rich text draws (``<sub>``, ``<sup>``, ``<i>``, ``<b>``, and a fraction
as a small table with a rule between numerator and denominator). Anything else is an EquationError
naming the position, so a typo in a step file is found when the file is checked, not on the projector.
"""

from __future__ import annotations

import html

SYMBOLS = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "eta": "η", "theta": "θ",
    "lambda": "λ", "mu": "μ", "nu": "ν", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "phi": "φ",
    "psi": "ψ", "omega": "ω", "Delta": "Δ", "Sigma": "Σ", "Omega": "Ω", "Phi": "Φ",
    "sum": "∑", "prod": "∏", "partial": "∂", "nabla": "∇", "cdot": "·", "times": "×", "circ": "∘",
    "odot": "⊙", "approx": "≈", "le": "≤", "ge": "≥", "ne": "≠", "to": "→", "gets": "←", "infty": "∞",
    "in": "∈", "propto": "∝", "sim": "∼", "ll": "≪", "gg": "≫", "pm": "±", "log": "log", "exp": "exp",
    "tanh": "tanh", "max": "max", "min": "min", "quad": "&nbsp;&nbsp;&nbsp;", ",": "&nbsp;",
    "{": "{", "}": "}", "|": "‖", "ldots": "…", "top": "ᵀ",
}
ACCENTS = {"hat": "\u0302", "tilde": "\u0303", "bar": "\u0304"}
MAX_LENGTH = 400
FRACTION = "<table cellspacing='0' cellpadding='0'>"  # how a fraction's table begins


class EquationError(ValueError):
    """An equation the syntax does not allow; the message says what and at which character."""


class _Parser:
    def __init__(self, text: str):
        self.text, self.i = text, 0

    def error(self, what: str) -> EquationError:
        return EquationError(f"{what} at character {self.i + 1} of {self.text!r}")

    def peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def group(self) -> str:
        """``{...}`` or one item, as HTML."""
        if self.peek() == "{":
            self.i += 1
            out = self.sequence(until="}")
            if self.peek() != "}":
                raise self.error("a '{' without its '}'")
            self.i += 1
            return out
        if not self.peek():
            raise self.error("something missing")
        return self.item()

    def raw_group(self) -> str:
        """``{...}`` as plain text (for ``\\text``)."""
        if self.peek() != "{":
            raise self.error("'{' expected")
        end = self.text.find("}", self.i)
        if end < 0:
            raise self.error("a '{' without its '}'")
        out = self.text[self.i + 1:end]
        self.i = end + 1
        return html.escape(out)

    def item(self) -> str:
        c = self.peek()
        if c == "\\":
            self.i += 1
            start = self.i
            if self.peek() and not self.peek().isalpha():
                self.i += 1
            while self.peek().isalpha():
                self.i += 1
            name = self.text[start:self.i]
            if name == "frac":
                num, den = self.group(), self.group()
                return (f"{FRACTION}<tr><td align='center'>"
                        f"{num}</td></tr><tr><td height='1' bgcolor='#9aa5b5'></td></tr>"
                        f"<tr><td align='center'>{den}</td></tr></table>")
            if name in ACCENTS:
                inner = self.group()
                return inner + ACCENTS[name] if len(inner) == 1 else f"{inner}{ACCENTS[name]}"
            if name == "mathbf":
                return f"<b>{self.group()}</b>"
            if name == "text":
                return f"<span style='font-style:normal'>{self.raw_group()}</span>"
            if name in SYMBOLS:
                return SYMBOLS[name]
            self.i = start - 1
            raise self.error(f"unknown command \\{name}")
        if c in "_^":
            raise self.error(f"'{c}' with nothing before it")
        if c == "}":
            raise self.error("a '}' without its '{'")
        if c == "{":
            return self.group()
        self.i += 1
        if c.isalpha():
            return f"<i>{c}</i>"
        return html.escape(c)

    def sequence(self, until: str = "") -> str:
        return "".join(self.parts(until))

    def parts(self, until: str = "") -> list[str]:
        out: list[str] = []
        while self.peek() and self.peek() != until:
            c = self.peek()
            if c in "_^":
                if not out:
                    raise self.error(f"'{c}' with nothing before it")
                self.i += 1
                tag = "sub" if c == "_" else "sup"
                out[-1] += f"<{tag}>{self.group()}</{tag}>"
            elif c == " ":
                self.i += 1
                out.append(" ")
            else:
                out.append(self.item())
        return out


def equation_html(text: str) -> str:
    """The rich text of one equation (see the module's docstring); EquationError for a fault."""
    if not isinstance(text, str) or not text.strip():
        raise EquationError("an equation must be a non-empty string")
    if len(text) > MAX_LENGTH:
        raise EquationError(f"an equation of {len(text)} characters (the limit is {MAX_LENGTH})")
    parser = _Parser(text)
    parts = parser.parts()
    if parser.i != len(text):
        raise parser.error("a '}' without its '{'")
    if not any(part.startswith(FRACTION) for part in parts):
        return "".join(parts)
    # a fraction is a table, which rich text lays out as a block: the whole equation becomes one row of
    # cells, the fractions in cells of their own, so the line reads left to right
    cells: list[str] = []
    for part in parts:
        if part.startswith(FRACTION) or not cells or cells[-1].startswith(FRACTION):
            cells.append(part)
        else:
            cells[-1] += part
    row = "".join(f"<td valign='middle'>{cell}</td>" for cell in cells)
    return f"<table cellspacing='0' cellpadding='2'><tr>{row}</tr></table>"


__all__ = ["EquationError", "MAX_LENGTH", "SYMBOLS", "equation_html"]
