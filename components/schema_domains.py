"""The curated schema's value domains, read without TFDV: the model server's skew guard.

The serving runtime has no TensorFlow Metadata, so this reads the few fields the guard needs
from the schema's text format: per feature its ``int_domain``/``float_domain`` (min, max) and,
for string features, the named ``string_domain`` values with ``min_domain_mass`` (only a
domain that must hold every value, mass 1.0, refuses unknown values; dest allows 1% others).
A data-runtime test parses the same file with TFDV and checks this reads the same domains, so
validation and serving cannot disagree. Standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z0-9_.]*)|(-?[0-9][0-9eE+.\-]*)|([{}:])|#[^\n]*')


@dataclass
class Domain:
    """Allowed values of one feature: a numeric range, or a closed set of strings."""

    minimum: Optional[float] = None
    maximum: Optional[float] = None
    values: Optional[frozenset] = None
    closed: bool = False  # strings outside ``values`` are refused (min_domain_mass 1.0)
    notes: list = field(default_factory=list)

    def violation(self, value) -> Optional[str]:
        """Why ``value`` is outside the domain, or None (a missing value is not checked here)."""
        if value is None:
            return None
        if self.values is not None:
            if self.closed and value not in self.values:
                return f"{value!r} is not one of the schema's {len(self.values)} values"
            return None
        if self.minimum is not None and value < self.minimum:
            return f"{value} is below the schema's minimum {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"{value} is above the schema's maximum {self.maximum:g}"
        return None


def _parse(text: str) -> list:
    """The text format as nested lists of (key, value) pairs; a message's value is a list."""
    tokens = [m for m in _TOKEN.finditer(text) if not m.group(0).startswith("#")]
    position = 0

    def message(until_brace: bool) -> list:
        nonlocal position
        fields = []
        while position < len(tokens):
            token = tokens[position]
            if token.group(4) == "}":
                position += 1
                if not until_brace:
                    raise ValueError("unbalanced '}' in the schema")
                return fields
            name = token.group(2)
            if name is None:
                raise ValueError(f"unexpected {token.group(0)!r} in the schema")
            position += 1
            if tokens[position].group(4) == ":":
                position += 1
            if tokens[position].group(4) == "{":
                position += 1
                fields.append((name, message(True)))
            else:
                value = tokens[position]
                position += 1
                fields.append((name, value.group(1) if value.group(1) is not None else value.group(0)))
        if until_brace:
            raise ValueError("a message of the schema is not closed")
        return fields

    return message(False)


def _get(fields: list, name: str, default=None):
    return next((value for key, value in fields if key == name), default)


def read_domains(schema_path: str) -> dict[str, Domain]:
    """Feature -> Domain, for the features of a schema file that have one.

    Raises:
        ValueError: The file is not a schema in text format.
    """
    with open(schema_path, encoding="utf-8") as handle:
        return parse_domains(handle.read())


def parse_domains(schema_text: str) -> dict[str, Domain]:
    """Feature -> Domain, for the features of a schema (TFDV text format) that have one.

    Raises:
        ValueError: The text is not a schema in text format.
    """
    top = _parse(schema_text)
    string_domains = {_get(fields, "name"): frozenset(v for k, v in fields if k == "value")
                      for key, fields in top if key == "string_domain"}
    domains = {}
    for key, fields in top:
        if key != "feature":
            continue
        name = _get(fields, "name")
        numeric = _get(fields, "int_domain") or _get(fields, "float_domain")
        if numeric is not None:
            low, high = _get(numeric, "min"), _get(numeric, "max")
            domains[name] = Domain(minimum=float(low) if low is not None else None,
                                   maximum=float(high) if high is not None else None)
        elif _get(fields, "domain") in string_domains:
            constraints = _get(fields, "distribution_constraints") or []
            mass = float(_get(constraints, "min_domain_mass", 1.0))
            domains[name] = Domain(values=string_domains[_get(fields, "domain")], closed=mass >= 1.0)
    return domains
