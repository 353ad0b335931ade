"""Stable entry point: `python -m wps_app.cleanup` (the command is wps_app.ops.cleanup)."""

import sys

from wps_app.ops.cleanup import main

if __name__ == "__main__":
    sys.exit(main())
