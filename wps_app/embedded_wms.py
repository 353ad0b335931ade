"""Stable entry point: `python -m wps_app.embedded_wms` (the tool is devtools.embedded_wms)."""

import sys

from devtools.embedded_wms import main

if __name__ == "__main__":
    sys.exit(main())
