"""Stable entry point: `gunicorn wps_app.app:application` (the app lives in wps_app.web)."""

from __future__ import annotations

from wps_app.web.app import create_app


def __getattr__(name: str):
    # Built on first access, so importing this module reads no configuration.
    if name == "application":
        app = create_app()
        globals()["application"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
