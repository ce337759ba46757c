"""daemon/schema.py: typed YAML into frozen dataclasses, every error naming its key path."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional  # noqa: UP035 - Optional: typing.Union's spelling

import pytest

from daemon.schema import ConfigError, build_dataclass, check


@dataclass(frozen=True)
class Inner:
    """A nested section."""

    level: float = 1.0
    name: str = "x"


@dataclass(frozen=True)
class Outer:
    """A section with one required key and one of each kind of annotation."""

    required: int
    mode: Literal["a", "b"] = "a"
    items: list[int] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    maybe: int | None = None
    optional: Optional[int] = None  # noqa: UP045 - typing.Union, not types.UnionType
    either: int | str = 0
    flag: bool = False
    sections: list[Inner] = field(default_factory=list)


@dataclass(frozen=True)
class Base:
    """A section whose concrete class a chooser picks."""

    kind: str = "base"


@dataclass(frozen=True)
class Special(Base):
    """The subclass a chooser picks for kind: special."""

    power: int = 1


@dataclass(frozen=True)
class Holder:
    """A section holding a chosen one."""

    part: Base = field(default_factory=Base)
    parts: list[Base] = field(default_factory=list)
    maybe_part: Base | None = None


def choose_kind(data: Any, path: str) -> tuple[type, Any]:
    """Special for kind 'special', Base for 'base' (as config.py's source_config_type)."""
    kind = data.get("kind", "base") if isinstance(data, dict) else None
    check(kind in ("base", "special"), f"{path}.kind", "must be base or special", kind)
    return (Special if kind == "special" else Base), data


def build(data: Any, path: str = "") -> Outer:
    """Outer from ``data``."""
    return build_dataclass(Outer, data, path)


def error_of(data: Any, path: str = "", cls: type = Outer, choose: Any = None) -> str:
    """The ConfigError message of building ``cls`` from ``data``."""
    with pytest.raises(ConfigError) as error:
        build_dataclass(cls, data, path, choose)
    return str(error.value)


def test_check_raises_only_when_not_ok():
    """check names path, rule and the quoted value; passes silently when ok."""
    check(True, "a.b", "must be > 0", -1)
    with pytest.raises(ConfigError) as error:
        check(False, "a.b", "must be > 0", "-1")
    assert str(error.value) == "a.b: must be > 0, got '-1'"
    assert isinstance(error.value, ValueError)


def test_defaults_fill_what_is_not_given():
    """Only the required key given: every other field is its default."""
    assert build({"required": 3}) == Outer(required=3)


def test_every_kind_of_value_is_built():
    """Literals, lists, nested sections, optionals and unions are converted and kept."""
    built = build({"required": 1, "mode": "b", "items": [1, 2], "inner": {"level": 2},
                   "maybe": 5, "optional": 6, "either": "s", "flag": True,
                   "sections": [{"name": "y"}, {}]})
    assert built == Outer(required=1, mode="b", items=[1, 2], inner=Inner(level=2.0),
                          maybe=5, optional=6, either="s", flag=True,
                          sections=[Inner(name="y"), Inner()])
    assert type(built.inner.level) is float
    assert build({"required": 1, "either": 7}).either == 7


def test_null_is_taken_only_where_the_type_allows_it():
    """None for an optional is None; for a union without None, an error naming both types."""
    built = build({"required": 1, "maybe": None, "optional": None})
    assert built.maybe is None and built.optional is None
    assert error_of({"required": 1, "either": None}) == "either: expected int or str, got None"
    assert error_of({"required": None}) == "required: expected int, got None"


def test_one_option_union_gives_that_option_s_error():
    """int | None given a string: the int's own error (not 'int or NoneType')."""
    assert error_of({"required": 1, "maybe": "x"}) == "maybe: expected int, got 'x'"
    assert error_of({"required": 1, "optional": 1.5}) == "optional: expected int, got 1.5"
    assert error_of({"required": 1, "either": 1.5}) == "either: expected int or str, got 1.5"


def test_literal_values():
    """A value outside the literal's choices names them."""
    assert error_of({"required": 1, "mode": "c"}) == "mode: must be one of ['a', 'b'], got 'c'"


def test_lists_and_their_items():
    """Not a list, or a bad item: the item's index is in the path."""
    assert error_of({"required": 1, "items": 3}) == "items: must be a list, got 3"
    assert error_of({"required": 1, "items": [1, "x"]}) == "items[1]: expected int, got 'x'"
    assert error_of({"required": 1, "sections": [{}, {"level": "hi"}]}) == (
        "sections[1].level: expected float, got 'hi'")


def test_scalars_without_yaml_looseness():
    """An int is a float; a bool is neither an int nor a float; a float is no int."""
    assert build({"required": 1, "inner": {"level": 3}}).inner.level == 3.0
    assert error_of({"required": True}) == "required: expected int, got True"
    assert error_of({"required": 1, "inner": {"level": False}}) == (
        "inner.level: expected float, got False")
    assert error_of({"required": 2.0}) == "required: expected int, got 2.0"
    assert error_of({"required": 1, "flag": 1}) == "flag: expected bool, got 1"
    assert error_of({"required": 1, "inner": {"name": 5}}) == "inner.name: expected str, got 5"


def test_a_section_must_be_a_mapping():
    """A list where a section belongs: named by its path, 'config' at the top."""
    assert error_of([1]) == "config: must be a mapping, got [1]"
    assert error_of("x", "server") == "server: must be a mapping, got 'x'"
    assert error_of({"required": 1, "inner": 2}) == "inner: must be a mapping, got 2"


def test_unknown_keys_list_the_known_ones():
    """The first unknown key (sorted) is named with its path and every known key."""
    known = "required, mode, items, inner, maybe, optional, either, flag, sections"
    assert error_of({"required": 1, "zeta": 1, "alpha": 2}) == (
        f"alpha: unknown key (known keys: {known})")
    assert error_of({"required": 1, "inner": {"levle": 1}}) == (
        "inner.levle: unknown key (known keys: level, name)")


def test_unknown_keys_of_other_types_are_quoted():
    """A non-string key is shown quoted as YAML gave it; keys of mixed types sort as text."""
    assert error_of({"required": 1, 5: 1}, "s") == (
        "s.5: unknown key (known keys: required, mode, items, inner, maybe, optional, either, "
        "flag, sections)")
    assert error_of({"required": 1, None: 1, "b": 2}).startswith("None: unknown key")
    assert error_of({"required": 1, "it's": 1}).startswith("it's: unknown key")


def test_missing_required_key():
    """A required key not given is named with its path ('config' at the top)."""
    assert error_of({}) == "config.required: is required, got None"
    assert error_of({"mode": "a"}, "section") == "section.required: is required, got None"


def test_a_chooser_picks_the_class_to_build():
    """``choose`` maps a base class to the subclass its data asks for, nested too."""
    choose = {Base: choose_kind}
    built = build_dataclass(Holder, {"part": {"kind": "special", "power": 3}}, "", choose)
    assert built == Holder(part=Special(kind="special", power=3))
    assert build_dataclass(Holder, {"part": {}}, "", choose).part == Base()
    assert error_of({"part": {"power": 3}}, "", Holder, choose) == (
        "part.power: unknown key (known keys: kind)")
    assert build_dataclass(Special, {"power": 2}, "s") == Special(power=2)


def test_a_chooser_reaches_list_items_and_optional_sections():
    """Chosen classes inside a list and a union, with the item's path given to the chooser."""
    choose = {Base: choose_kind}
    built = build_dataclass(Holder, {"parts": [{}, {"kind": "special", "power": 2}],
                                     "maybe_part": {"kind": "special"}}, "", choose)
    assert built.parts == [Base(), Special(kind="special", power=2)]
    assert built.maybe_part == Special(kind="special")
    assert error_of({"parts": [{}, {"kind": "other"}]}, "", Holder, choose) == (
        "parts[1].kind: must be base or special, got 'other'")
    assert error_of({"part": {"kind": 3}}, "top", Holder, choose) == (
        "top.part.kind: must be base or special, got 3")
