"""Shared API pieces every app builds on: domain errors and the one error handler,
strict serializer fields, page parameters, renderers, parsers, request guards,
URL converters, health probes and OpenAPI components.

The bottom layer: it imports no app of the project (the import contract in
``.importlinter`` holds that).
"""
