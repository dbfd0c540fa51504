"""Config and assembly: YAML and overrides into one validated config, and that config into a built network."""

from .loading import load_config

__all__ = ["load_config"]
