"""FEEL types: the built-in ones, ``list<T>``/``context<…>``/``range<T>``/``function<…>``, and the
item definitions of a DMN model, with ``instance of`` and DMN's type conversions.

A :class:`FeelType` is resolved from a :class:`~decisions.feel.syntax.TypeRef` (or a DMN
``typeRef``) against a registry of named types (a model's item definitions). Conversions when a
value is bound to a typed variable (DMN 1.5 §10.3.2.9.4): a singleton list becomes its item when
the type is not a list, an item becomes a singleton list when it is; a value that does not
conform (or breaks the type's allowed values) becomes null.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from decisions.feel import syntax as s
from decisions.feel.values import UNBOUNDED, FeelFunction, FeelRange, YearsMonths, type_name

#: DMN/XML Schema spellings of the built-in types
ALIASES = {
    "dateTime": "date and time", "dayTimeDuration": "days and time duration",
    "yearMonthDuration": "years and months duration", "duration": "days and time duration",
    "integer": "number", "int": "number", "long": "number", "short": "number", "double": "number",
    "float": "number", "decimal": "number", "bool": "boolean", "any": "Any", "Any": "Any",
    "Null": "Null", "null": "Null", "context": "context", "list": "list", "range": "range",
    "function": "function",
}
BUILTIN_TYPES = frozenset({"number", "string", "boolean", "date", "time", "date and time",
                           "days and time duration", "years and months duration", "Any", "Null",
                           "context", "list", "range", "function"})


@dataclass
class FeelType:
    """A resolved type. ``name`` is a built-in type name; ``element`` the item type of a list or
    range; ``fields`` the entries of a structure (``context<…>`` or an item definition with
    components); ``allowed`` a test of allowed values (item definitions)."""

    name: str
    label: str = ""
    element: FeelType | None = None
    fields: dict[str, FeelType] = field(default_factory=dict)
    allowed: Callable[[Any], bool | None] | None = None
    parameters: list[FeelType] = field(default_factory=list)
    result: FeelType | None = None

    def __str__(self) -> str:
        return self.label or self.name

    @property
    def is_list(self) -> bool:
        return self.name == "list"


ANY = FeelType("Any")


def builtin(name: str) -> FeelType | None:
    canonical = ALIASES.get(name, name)
    if canonical in BUILTIN_TYPES:
        return FeelType(canonical, name)
    return None


TypeRegistry = Mapping[str, FeelType]


def resolve(ref: s.TypeRef | str, registry: TypeRegistry | None = None) -> FeelType:
    """The type a name or ``TypeRef`` means; unknown names are ``Any`` (with the name kept)."""
    if isinstance(ref, str):
        local = ref.rsplit(":", 1)[-1].strip() if ref.startswith(("feel:", "FEEL:")) else ref.strip()
        if registry and local in registry:
            return registry[local]
        found = builtin(local)
        if found is not None:
            return found
        try:
            ref = s.parse_type(local)
        except s.FeelSyntaxError:
            return FeelType("Any", local)
        if ref.name == local and not ref.parameters and not ref.fields:
            if registry and "." in local and local.split(".", 1)[1] in registry:
                return registry[local.split(".", 1)[1]]
            return FeelType("Any", local)
    if registry and ref.name in registry and not ref.parameters:
        return registry[ref.name]
    if ref.name in ("list", "range") and ref.parameters:
        return FeelType(ref.name, str(ref), element=resolve(ref.parameters[0], registry))
    if ref.name == "context" and ref.fields:
        return FeelType("context", str(ref), fields={key: resolve(kind, registry) for key, kind in ref.fields})
    if ref.name == "function" and ref.result is not None:
        return FeelType("function", str(ref), parameters=[resolve(p, registry) for p in ref.parameters],
                        result=resolve(ref.result, registry))
    found = builtin(ref.name)
    if found is not None:
        return found
    if registry and "." in ref.name and ref.name.split(".", 1)[1] in registry:
        return registry[ref.name.split(".", 1)[1]]
    return FeelType("Any", ref.name)


_KIND_CHECKS: dict[str, Callable[[Any], bool]] = {
    "number": lambda v: isinstance(v, Decimal),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "date": lambda v: isinstance(v, date) and not isinstance(v, datetime),
    "time": lambda v: isinstance(v, time),
    "date and time": lambda v: isinstance(v, datetime),
    "days and time duration": lambda v: isinstance(v, timedelta),
    "years and months duration": lambda v: isinstance(v, YearsMonths),
    "list": lambda v: isinstance(v, list),
    "context": lambda v: isinstance(v, dict),
    "range": lambda v: isinstance(v, FeelRange),
    "function": lambda v: isinstance(v, FeelFunction),
}


def is_instance(value: Any, kind: FeelType, check_allowed: bool = False) -> bool:
    """Whether a (non-null) value is of the type. Null is an instance of nothing but ``Null``."""
    if value is None:
        return kind.name == "Null"
    if kind.name == "Any":
        return True
    check = _KIND_CHECKS.get(kind.name)
    if check is None or not check(value):
        return False
    if kind.element is not None:
        if isinstance(value, list):
            if not all(item is None or is_instance(item, kind.element, check_allowed) for item in value):
                return False
        elif isinstance(value, FeelRange):
            ends = [end for end in (value.start, value.end) if end is not None and end is not UNBOUNDED]
            if not all(is_instance(end, kind.element) for end in ends):
                return False
    if kind.fields:
        for key, field_type in kind.fields.items():
            if key not in value:
                return False
            item = value[key]
            if item is not None and not is_instance(item, field_type, check_allowed):
                return False
    if kind.name == "function" and kind.result is not None and isinstance(value, FeelFunction):
        declared = value.param_types
        if kind.parameters and value.params is not None:
            if len(value.params) != len(kind.parameters):
                return False
            for wanted, have in zip(kind.parameters, declared or [None] * len(kind.parameters), strict=False):
                if have is not None and wanted.name != "Any" and resolve(have).name not in (wanted.name, "Any"):
                    return False
    return not (check_allowed and kind.allowed is not None and kind.allowed(value) is not True)


def instance_of(value: Any, ref: s.TypeRef, registry: TypeRegistry | None = None) -> bool:
    """``value instance of ref``, named types resolved against ``registry`` (a model's item definitions)."""
    return is_instance(value, resolve(ref, registry))


_NOT_CONFORMING = object()


def coerce(value: Any, kind: FeelType | None) -> Any:
    """A value bound to a variable of type ``kind`` (DMN's conversions); null when it does not conform."""
    if kind is None or value is None or (kind.name == "Any" and kind.allowed is None):
        return value
    if kind.name != "list" and isinstance(value, list) and len(value) == 1:
        value = value[0]
    if kind.name == "list" and not isinstance(value, list):
        value = [value]
    converted = _conform(value, kind)
    return None if converted is _NOT_CONFORMING else converted


def _conform(value: Any, kind: FeelType) -> Any:
    if value is None:
        return None
    if kind.name == "Any":
        return value if kind.allowed is None or kind.allowed(value) is True else _NOT_CONFORMING
    if kind.name == "list" and isinstance(value, list) and kind.element is not None:
        items = []
        for item in value:
            converted = _conform(item, kind.element)
            if converted is _NOT_CONFORMING:
                return _NOT_CONFORMING
            items.append(converted)
        value = items
    elif kind.fields:
        if not isinstance(value, dict):
            return _NOT_CONFORMING
        converted_fields = dict(value)
        for key, field_type in kind.fields.items():
            if key not in value:
                return _NOT_CONFORMING
            converted = _conform(value[key], field_type) if value[key] is not None else None
            if converted is _NOT_CONFORMING:
                return _NOT_CONFORMING
            converted_fields[key] = converted
        value = converted_fields
    elif not is_instance(value, FeelType(kind.name, element=kind.element, parameters=kind.parameters,
                                         result=kind.result)):
        return _NOT_CONFORMING
    if kind.allowed is not None and kind.allowed(value) is not True:
        return _NOT_CONFORMING
    return value


def describe(value: Any) -> str:
    return type_name(value)
