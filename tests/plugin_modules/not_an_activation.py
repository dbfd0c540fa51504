from framework import hookimpl


class NotAnActivation:
    name = "nope"


@hookimpl
def register_activations(register):
    register(NotAnActivation)
