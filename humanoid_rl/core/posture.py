"""When a robot counts as fallen, and when as standing: one definition for the simulator bridge, the hardware
emulator, the run reports and the tests.

*Fallen* is latched by the trackers (a robot that went down stays counted as down); *standing* is judged at the
end of a run from the final pose, so a robot that ends leaning at 19° is not reported as standing.
"""

from __future__ import annotations

import math

FALL_HEIGHT_FRACTION = 0.6  # base below this fraction of the nominal standing height: fallen
FALL_TILT_RAD = math.radians(60.0)
# Standing: base tilt from vertical below this and base height above this fraction of the nominal height. The
# shipped stand policy leans up to about 5° while it balances; PD-only standing, about 3°.
STANDING_TILT_RAD = math.radians(10.0)
STANDING_HEIGHT_FRACTION = 0.9


def has_fallen(tilt_rad: float, base_height_m: float, nominal_base_height_m: float) -> bool:
    return base_height_m < FALL_HEIGHT_FRACTION * nominal_base_height_m or tilt_rad > FALL_TILT_RAD


def is_standing(tilt_rad: float, base_height_m: float, nominal_base_height_m: float) -> bool:
    return tilt_rad < STANDING_TILT_RAD and base_height_m > STANDING_HEIGHT_FRACTION * nominal_base_height_m


def describe(fell: bool, tilt_rad: float, base_height_m: float, nominal_base_height_m: float) -> str:
    """``standing``, ``not upright`` or ``FELL``, with the final tilt and height and the thresholds."""
    if fell:
        word = "FELL"
    elif is_standing(tilt_rad, base_height_m, nominal_base_height_m):
        word = "standing"
    else:
        word = "not upright"
    return (
        f"{word} (final tilt {math.degrees(tilt_rad):.1f}°, base height {base_height_m:.3f} m; standing = tilt < "
        f"{math.degrees(STANDING_TILT_RAD):.0f}° and height > {STANDING_HEIGHT_FRACTION:.0%} of "
        f"{nominal_base_height_m:.3f} m)"
    )
