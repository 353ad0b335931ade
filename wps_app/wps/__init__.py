"""The OGC WPS 1.0.0 binding on PyWPS: service, responses, request guard, exceptions."""
