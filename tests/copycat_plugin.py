"""A test plugin that registers an event type a built-in plugin owns."""

from handlers.hookspecs import hookimpl


@hookimpl
def register_event_types(register):
    register("bounce", lambda event: {})
