"""The sandbox's request handlers, one module per part of Open Humans it stands in for.

Each handler is ``view(store, request, **url_args) -> Response`` (see routes.py).
"""
