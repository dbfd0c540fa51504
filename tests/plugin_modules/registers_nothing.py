"""A module named as a plugin that forgot its hook."""


def register_activations(register):  # no @hookimpl
    pass
