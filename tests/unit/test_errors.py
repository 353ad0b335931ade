"""The core's error hierarchy: one base class; input errors carry their domain field."""

from __future__ import annotations

import pytest

from wps_app.core import errors


def test_input_errors_carry_the_input_they_are_about():
    error = errors.MissingInput("lat is required when no bbox is given", "lat")
    assert isinstance(error, errors.InvalidInput)
    assert (str(error), error.field) == ("lat is required when no bbox is given", "lat")


@pytest.mark.parametrize(
    "kind",
    [errors.WmsUnavailable, errors.WmsTimeout, errors.WmsServiceException,
     errors.WmsBadResponse],
)
def test_every_wms_failure_is_a_wms_error(kind):
    assert issubclass(kind, errors.WmsError)


def test_one_base_class_catches_every_deliberate_error():
    """A binding translates EdgeServiceError once; anything else is a bug."""
    for kind in (errors.InvalidInput, errors.WmsError, errors.OutputError):
        assert issubclass(kind, errors.EdgeServiceError)
    assert not issubclass(errors.EdgeServiceError, (ValueError, OSError))
