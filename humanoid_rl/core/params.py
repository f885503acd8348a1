"""Parameters declared once: type, default, description, unit, range and read-only flag.

Each node keeps a tuple of :class:`ParamSpec`; the ROS adapter (``humanoid_rl.nodes.params``) turns it into
``ParameterDescriptor`` declarations plus an ``on_set_parameters`` validator, and the README's parameter tables
are rendered from the same tuple (:func:`markdown_table`), so nothing is typed twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ParamValue = bool | int | float | str | list[float] | list[str]


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: ParamValue
    description: str
    unit: str = ""
    min: float | None = None
    max: float | None = None
    read_only: bool = False
    choices: tuple[str, ...] = ()

    @property
    def type_name(self) -> str:
        if isinstance(self.default, bool):
            return "bool"
        if isinstance(self.default, int):
            return "int"
        if isinstance(self.default, float):
            return "double"
        if isinstance(self.default, str):
            return "string"
        if isinstance(self.default, list) and all(isinstance(x, str) for x in self.default) and self.default:
            return "string[]"
        return "double[]"

    def check(self, value: Any) -> str | None:
        """None if ``value`` is acceptable, else the reason it is refused (names the parameter and the range)."""
        kind = self.type_name
        if kind == "bool" and not isinstance(value, bool):
            return f"{self.name}: expected a bool, got {value!r}"
        if kind in ("int", "double"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"{self.name}: expected a number, got {value!r}"
            if kind == "int" and not float(value).is_integer():
                return f"{self.name}: expected an integer, got {value!r}"
            if not math.isfinite(float(value)):
                return f"{self.name}: {value!r} is not finite"
            if self.min is not None and value < self.min or self.max is not None and value > self.max:
                return f"{self.name}: {value} {self.unit} is outside [{self.min}, {self.max}] {self.unit}".rstrip()
        if kind == "string":
            if not isinstance(value, str):
                return f"{self.name}: expected a string, got {value!r}"
            if self.choices and value not in self.choices:
                return f"{self.name}: {value!r} is not one of {list(self.choices)}"
        return None


def defaults(specs: Iterable[ParamSpec]) -> dict[str, ParamValue]:
    return {s.name: s.default for s in specs}


def validate(
    specs: Sequence[ParamSpec],
    values: Mapping[str, Any],
    consistency: Callable[[Mapping[str, Any]], list[str]] | None = None,
) -> list[str]:
    """Every reason ``values`` (a full set, name → value) is refused: unknown names, ranges, then consistency."""
    by_name = {s.name: s for s in specs}
    reasons = [f"unknown parameter {name!r}" for name in values if name not in by_name]
    reasons += [r for name, v in values.items() if name in by_name and (r := by_name[name].check(v))]
    if not reasons and consistency is not None:
        reasons += consistency(values)
    return reasons


def markdown_table(specs: Iterable[ParamSpec]) -> str:
    rows = [
        "| parameter | type | default | unit | range | read-only | description |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in specs:
        if s.choices:
            rng = " / ".join(s.choices)
        elif s.min is not None or s.max is not None:
            rng = f"[{'' if s.min is None else s.min}, {'' if s.max is None else s.max}]"
        else:
            rng = ""
        rows.append(
            f"| `{s.name}` | {s.type_name} | `{s.default}` | {s.unit} | {rng} | "
            f"{'yes' if s.read_only else ''} | {s.description} |"
        )
    return "\n".join(rows)
