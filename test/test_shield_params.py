"""The shield's parameter table: declared once, validated with reasons, rendered as Markdown."""

from __future__ import annotations

import dataclasses

import pytest

from humanoid_rl.core.shield import (
    SHIELD_PARAMETERS,
    ShieldParams,
    parameter_table_markdown,
    validate,
)

TUNABLE_NUMBERS = [s for s in SHIELD_PARAMETERS if s.type_name == "double" and not s.read_only]


def test_every_shield_params_field_is_declared_in_the_table_with_the_same_default() -> None:
    fields = dataclasses.fields(ShieldParams)
    assert [f.name for f in fields] == [s.name for s in SHIELD_PARAMETERS]
    defaults = ShieldParams()
    for spec in SHIELD_PARAMETERS:
        assert getattr(defaults, spec.name) == spec.default
        assert spec.description and (spec.unit or spec.type_name != "double" or spec.name.endswith("scale"))


def test_the_table_defaults_are_a_valid_parameter_set() -> None:
    assert validate(ShieldParams()) == []


@pytest.mark.parametrize("spec", TUNABLE_NUMBERS, ids=lambda s: s.name)
def test_each_number_is_refused_just_outside_its_range_with_a_reason_that_names_it(spec) -> None:
    for bad in (spec.min - 1e-6 * max(1.0, abs(spec.min)), spec.max + 1e-6 * max(1.0, abs(spec.max))):
        reasons = validate(dataclasses.replace(ShieldParams(), **{spec.name: bad}))
        assert any(spec.name in r and "outside" in r for r in reasons), (bad, reasons)
    for bad in (float("nan"), float("inf"), True, "1.0"):
        assert any(spec.name in r for r in validate(dataclasses.replace(ShieldParams(), **{spec.name: bad})))


@pytest.mark.parametrize("spec", TUNABLE_NUMBERS, ids=lambda s: s.name)
def test_each_number_is_accepted_at_its_range_bounds_as_far_as_its_range_is_concerned(spec) -> None:
    for edge in (spec.min, spec.max):
        reasons = validate(dataclasses.replace(ShieldParams(), **{spec.name: edge}))
        assert not any("outside" in r for r in reasons), reasons


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"tilt_warn": 0.7, "tilt_trip": 0.7}, "tilt_warn"),
        ({"tilt_warn": 0.8, "tilt_trip": 0.7}, "tilt_warn"),
        ({"capture_point_margin": -0.1, "capture_point_trip_margin": -0.1}, "capture_point_trip_margin"),
        ({"command_timeout": 0.01}, "command_timeout"),
        ({"state_timeout": 0.01}, "state_timeout"),
        ({"future_tolerance": 0.5}, "future_tolerance"),
    ],
)
def test_inconsistent_combinations_are_refused_with_a_reason(changes: dict, words: str) -> None:
    reasons = validate(dataclasses.replace(ShieldParams(), **changes))
    assert len(reasons) == 1 and words in reasons[0]


def test_read_only_parameters_cannot_change() -> None:
    reasons = validate(dataclasses.replace(ShieldParams(), gravity=3.71, use_urdf_limits=False))
    assert sum("read-only" in r for r in reasons) == 2


def test_hold_pose_must_be_one_of_its_choices() -> None:
    assert validate(dataclasses.replace(ShieldParams(), hold_pose="current")) == []
    assert any("hold_pose" in r for r in validate(dataclasses.replace(ShieldParams(), hold_pose="crouch")))


def test_from_mapping_accepts_integers_for_doubles_and_names_every_problem() -> None:
    params = ShieldParams.from_mapping({"ramp_time": 3, "hold_pose": "current"})
    assert params.ramp_time == 3.0 and isinstance(params.ramp_time, float) and params.hold_pose == "current"
    with pytest.raises(ValueError, match="unknown shield parameter"):
        ShieldParams.from_mapping({"ramp_tme": 3.0})
    with pytest.raises(ValueError, match="tilt_trip.*max_target_rate|max_target_rate.*tilt"):
        ShieldParams.from_mapping({"tilt_trip": 9.0, "max_target_rate": 0.0})
    assert params.with_changes(ramp_time=1.0).ramp_time == 1.0


def test_the_markdown_table_lists_every_parameter_with_its_unit_default_and_range() -> None:
    table = parameter_table_markdown().splitlines()
    assert table[0].startswith("| parameter |")
    rows = {line.split("|")[1].strip().strip("`"): line for line in table[2:]}
    assert list(rows) == [s.name for s in SHIELD_PARAMETERS]
    assert "| rad |" in rows["soft_margin"] and "[0.0, 0.5]" in rows["soft_margin"]
    assert "default / current" in rows["hold_pose"]
    assert "yes" in rows["gravity"]
