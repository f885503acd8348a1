"""Session-wide test environment. Runs at import time, before any test module can import rclpy.

Each pytest session gets its own DDS domain on localhost only, so two test runs (or a test run and a
simulation) on one machine, or on one network, never see each other's topics.
"""

from __future__ import annotations

import os

from humanoid_rl.graph import private_domain_id  # plain data: importing it does not import rclpy

# The PyPI ROS wheels ship Fast DDS; name it so rclpy does not look for another middleware.
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
# A random private domain per session unless the caller chose one.
os.environ.setdefault("ROS_DOMAIN_ID", str(private_domain_id()))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
