"""ROS 2 adapters: each node translates between messages and the ROS-free logic in ``humanoid_rl.core``."""
