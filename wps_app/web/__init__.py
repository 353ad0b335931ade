"""The WSGI application: routes, published outputs, health."""
