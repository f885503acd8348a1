"""Command-line applications behind the `humanoid-rl` subcommands (one module per subcommand)."""

from __future__ import annotations
