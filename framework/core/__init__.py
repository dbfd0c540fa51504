"""The network core: Layer (and Activation, a Layer), Network, Loss, Optimizer, Initializer, lr schedules.

Nothing here knows a config, a file or a plugin registry: this is the book's
chapters 3 to 6 in numpy, and everything above builds on it.
"""
