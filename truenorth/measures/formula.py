"""A safe evaluator for computed measures: arithmetic over other measures, never `eval`.

Pure module (no Django). A formula is parsed with Python's `ast` into a tree that may only contain:

- numbers (`3`, `0.5`, `1e3`);
- measure references: either a *name*, the slug of a measure's name (lower-case letters, digits and
  underscores, starting with a letter: "Revenue per employee" is `revenue_per_employee`, see
  `reference_for`), or an *id reference* `m[12]` (the measure with id 12), which survives renames;
- `+ - * /`, unary minus and plus, parentheses;
- `**` with a constant exponent (no measure references in it) between -MAX_EXPONENT and MAX_EXPONENT;
- the functions `min(a, b, …)`, `max(a, b, …)`, `abs(x)`, `round(x)` / `round(x, digits)`, `sqrt(x)`,
  `log(x)` (natural) / `log(x, base)`.

Anything else (attribute access, subscripts other than `m[ID]`, calls of other functions, keyword
arguments, lambdas, comprehensions, comparisons, strings, …) is refused by `parse` with a
`FormulaError` (a `ValidationFailed` on the field "formula") that says what is wrong. So are formulas
longer than MAX_LENGTH characters, nested deeper than MAX_DEPTH or with more than MAX_NODES parts.

`Formula.evaluate(values)` computes in floats; a missing value, a division by zero, a square root or
logarithm outside its domain, or any intermediate result that is not a finite number (overflow, NaN)
raises `FormulaError` too — never a crash, never NaN or infinity as a result.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from truenorth.core.errors import ValidationFailed

MAX_LENGTH = 1000
MAX_DEPTH = 60
MAX_NODES = 300
MAX_EXPONENT = 64
MAX_ROUND_DIGITS = 12
FUNCTIONS = ("min", "max", "abs", "round", "sqrt", "log")
ID_PREFIX = "m"  # m[12] is the measure with id 12
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class FormulaError(ValidationFailed):
    """A formula that cannot be parsed or evaluated; always on the field "formula"."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="formula")


def reference_for(measure_name: str) -> str:
    """The name by which a formula refers to a measure: its name as a lower-case slug with underscores.

    "Revenue per employee" -> `revenue_per_employee`; "Lead time (days)" -> `lead_time_days`; a name
    starting with a digit gets an `m` in front ("2FA adoption" -> `m2fa_adoption`) and a Python keyword
    an underscore after it ("If" -> `if_`). A name without letters or digits has no slug (""): refer
    to such a measure by its id, `m[ID]`.
    """
    ascii_name = unicodedata.normalize("NFKD", measure_name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    if not slug:
        return ""
    if slug[0].isdigit():
        slug = ID_PREFIX + slug
    if keyword.iskeyword(slug):
        slug += "_"
    return slug


def id_reference(measure_id: int) -> str:
    """The reference string of an id reference, as it appears in `Formula.names`: `m[12]`."""
    return f"{ID_PREFIX}[{measure_id}]"


@dataclass(frozen=True)
class Formula:
    """A parsed, validated formula. `names` are the references it uses (`revenue`, `m[12]`)."""

    text: str
    names: frozenset[str]
    _tree: ast.expr = field(repr=False, compare=False)

    @property
    def measure_ids(self) -> frozenset[int]:
        """The ids of the `m[ID]` references."""
        return frozenset(int(n[len(ID_PREFIX) + 1 : -1]) for n in self.names if n.startswith(ID_PREFIX + "["))

    @property
    def slugs(self) -> frozenset[str]:
        """The name references (everything in `names` but the `m[ID]` ones)."""
        return frozenset(n for n in self.names if not n.startswith(ID_PREFIX + "["))

    def evaluate(self, values: Mapping[str, float]) -> float:
        """The formula's value, given a value for each reference in `names`."""
        missing = sorted(self.names - set(values))
        if missing:
            raise FormulaError(f"No value for {', '.join(missing)}.")
        for name in self.names:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise FormulaError(f"The value of {name} is not a finite number ({value!r}).")
        try:
            return _Evaluator(values).visit(self._tree)
        except FormulaError:
            raise
        except ZeroDivisionError:
            raise FormulaError("Division by zero.") from None
        except OverflowError:
            raise FormulaError("The result is too large.") from None
        except (ValueError, ArithmeticError) as exc:  # a domain error not caught earlier
            raise FormulaError(f"Cannot compute the formula: {exc}.") from None
        except RecursionError:
            raise FormulaError("The formula is nested too deeply.") from None

    def __str__(self) -> str:
        return self.text


def parse(text: str) -> Formula:
    """Parse and validate a formula; raise FormulaError (field "formula") saying what is wrong."""
    if not isinstance(text, str):
        raise FormulaError("A formula must be text.")
    text = " ".join(text.split())  # line breaks and indentation from a text area mean nothing here
    if not text:
        raise FormulaError("The formula is empty.")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"The formula is too long ({len(text)} characters; at most {MAX_LENGTH}).")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        detail = f" at character {exc.offset}" if exc.offset else ""
        raise FormulaError(f"Not a valid formula{detail}: {exc.msg}.") from None
    except (RecursionError, MemoryError, ValueError):
        raise FormulaError("Not a valid formula: it is nested too deeply.") from None
    checker = _Checker()
    try:
        checker.check(tree.body, 1)
    except RecursionError:
        raise FormulaError(f"The formula is nested too deeply (at most {MAX_DEPTH} levels).") from None
    return Formula(text=text, names=frozenset(checker.names), _tree=tree.body)


# --- validation -----------------------------------------------------------------------------------

_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
_UNARY = (ast.USub, ast.UAdd)
_REFUSED = {
    ast.Attribute: "attribute access (a '.') is not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.Compare: "comparisons are not allowed",
    ast.BoolOp: "'and'/'or' are not allowed",
    ast.IfExp: "'if … else' is not allowed",
    ast.NamedExpr: "':=' is not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    ast.JoinedStr: "text is not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.Set: "sets are not allowed",
    ast.Dict: "dictionaries are not allowed",
    ast.Await: "'await' is not allowed",
    ast.Yield: "'yield' is not allowed",
    ast.YieldFrom: "'yield' is not allowed",
    ast.Slice: "slices are not allowed",
}
_OPERATOR_NAMES = {
    ast.Mod: "%",
    ast.FloorDiv: "//",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Invert: "~",
    ast.Not: "not",
}
_ARITY = {"min": (1, None), "max": (1, None), "abs": (1, 1), "round": (1, 2), "sqrt": (1, 1), "log": (1, 2)}


def _id_reference(node: ast.Subscript) -> str | None:
    """`m[12]` -> "m[12]"; None for any other subscript."""
    if not (isinstance(node.value, ast.Name) and node.value.id == ID_PREFIX):
        return None
    index = node.slice
    if isinstance(index, ast.Constant) and type(index.value) is int and 0 < index.value < 10**18:
        return id_reference(index.value)
    return None


class _Checker:
    def __init__(self) -> None:
        self.names: set[str] = set()
        self.nodes = 0

    def check(self, node: ast.expr, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise FormulaError(f"The formula is too long (more than {MAX_NODES} parts).")
        if depth > MAX_DEPTH:
            raise FormulaError(f"The formula is nested too deeply (at most {MAX_DEPTH} levels).")
        if isinstance(node, ast.Constant):
            _number_literal(node)
        elif isinstance(node, ast.Name):
            if not NAME_RE.match(node.id):
                raise FormulaError(
                    f"'{node.id}' is not a measure name: use lower-case letters, digits and underscores, "
                    f"starting with a letter (or m[ID])."
                )
            self.names.add(node.id)
        elif isinstance(node, ast.Subscript):
            reference = _id_reference(node)
            if reference is None:
                raise FormulaError("Only measure ids can be indexed, as in m[12].")
            self.names.add(reference)
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, _UNARY):
                raise FormulaError(
                    f"The operator '{_OPERATOR_NAMES.get(type(node.op), '?')}' is not allowed."
                )
            self.check(node.operand, depth + 1)
        elif isinstance(node, ast.BinOp):
            if not isinstance(node.op, _BINARY):
                raise FormulaError(
                    f"The operator '{_OPERATOR_NAMES.get(type(node.op), '?')}' is not allowed; "
                    "use + - * / and **."
                )
            # The left operand does not count as nesting, so a long sum `a + b + c + …` is not "deep".
            self.check(node.left, depth)
            if isinstance(node.op, ast.Pow):
                self._check_exponent(node.right, depth + 1)
            else:
                self.check(node.right, depth + 1)
        elif isinstance(node, ast.Call):
            self._check_call(node, depth)
        else:
            reason = _REFUSED.get(type(node), f"'{type(node).__name__}' is not allowed")
            raise FormulaError(f"Not a valid formula: {reason}.")

    def _check_exponent(self, node: ast.expr, depth: int) -> None:
        inner = _Checker()
        inner.nodes = self.nodes
        inner.check(node, depth)
        self.nodes = inner.nodes
        if inner.names:
            raise FormulaError("An exponent must be a constant number, not a measure.")
        try:
            exponent = _Evaluator({}).visit(node)
        except FormulaError:
            raise
        except (ArithmeticError, ValueError):
            raise FormulaError("The exponent cannot be computed.") from None
        if abs(exponent) > MAX_EXPONENT:
            raise FormulaError(f"The exponent is too large (at most {MAX_EXPONENT} either way).")

    def _check_call(self, node: ast.Call, depth: int) -> None:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                raise FormulaError("Not a valid formula: attribute access (a '.') is not allowed.")
            raise FormulaError(f"Only these functions can be called: {', '.join(FUNCTIONS)}.")
        name = node.func.id
        if name not in _ARITY:
            raise FormulaError(f"Unknown function '{name}'; use one of {', '.join(FUNCTIONS)}.")
        if node.keywords:
            raise FormulaError(f"{name}() takes no named arguments.")
        low, high = _ARITY[name]
        count = len(node.args)
        if count < low or (high is not None and count > high):
            expected = f"{low}" if low == high else f"{low} to {high}" if high else f"at least {low}"
            raise FormulaError(f"{name}() takes {expected} argument(s), got {count}.")
        for argument in node.args:
            self.check(argument, depth + 1)


def _number_literal(node: ast.Constant) -> float:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        shown = "text" if isinstance(value, str | bytes) else repr(value)
        raise FormulaError(f"Only numbers are allowed, not {shown}.")
    try:
        number = float(value)
    except OverflowError:
        raise FormulaError("A number in the formula is too large.") from None
    if not math.isfinite(number):
        raise FormulaError("A number in the formula is too large.")
    return number


# --- evaluation -----------------------------------------------------------------------------------


def _finite(value: float) -> float:
    if math.isnan(value):
        raise FormulaError("The result is not a number (NaN).")
    if math.isinf(value):
        raise FormulaError("The result is too large.")
    return value


def _sqrt(x: float) -> float:
    if x < 0:
        raise FormulaError(f"Square root of a negative number ({x:g}).")
    return math.sqrt(x)


def _log(x: float, base: float | None = None) -> float:
    if x <= 0:
        raise FormulaError(f"Logarithm of a number that is not positive ({x:g}).")
    if base is None:
        return math.log(x)
    if base <= 0 or base == 1:
        raise FormulaError(f"Logarithm base must be positive and not 1 (got {base:g}).")
    return math.log(x, base)


def _round(x: float, digits: float = 0) -> float:
    if digits != int(digits) or not 0 <= digits <= MAX_ROUND_DIGITS:
        raise FormulaError(f"round() takes a whole number of digits from 0 to {MAX_ROUND_DIGITS}.")
    return float(round(x, int(digits)))


def _pow(base: float, exponent: float) -> float:
    if base == 0 and exponent < 0:
        raise FormulaError("Division by zero (zero to a negative power).")
    if base < 0 and exponent != int(exponent):
        raise FormulaError(f"A negative number ({base:g}) to a fractional power.")
    return math.pow(base, exponent)


_FUNCTIONS: dict[str, Callable[..., float]] = {
    "min": lambda *xs: min(xs),
    "max": lambda *xs: max(xs),
    "abs": abs,
    "round": _round,
    "sqrt": _sqrt,
    "log": _log,
}


class _Evaluator:
    """Walks a tree that `_Checker` accepted; every intermediate result must be finite."""

    def __init__(self, values: Mapping[str, float]) -> None:
        self.values = values

    def visit(self, node: ast.expr) -> float:
        if isinstance(node, ast.Constant):
            return _number_literal(node)
        if isinstance(node, ast.Name):
            return float(self.values[node.id])
        if isinstance(node, ast.Subscript):
            reference = _id_reference(node)
            assert reference is not None
            return float(self.values[reference])
        if isinstance(node, ast.UnaryOp):
            operand = self.visit(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            left, right = self.visit(node.left), self.visit(node.right)
            if isinstance(node.op, ast.Add):
                result = left + right
            elif isinstance(node.op, ast.Sub):
                result = left - right
            elif isinstance(node.op, ast.Mult):
                result = left * right
            elif isinstance(node.op, ast.Div):
                if right == 0:
                    raise FormulaError("Division by zero.")
                result = left / right
            elif isinstance(node.op, ast.Pow):
                result = _pow(left, right)
            else:  # pragma: no cover - refused by the checker
                raise FormulaError("Operator not allowed.")
            return _finite(result)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            arguments = [self.visit(a) for a in node.args]
            return _finite(float(_FUNCTIONS[node.func.id](*arguments)))
        raise FormulaError("Not a valid formula.")  # pragma: no cover - refused by the checker
