"""fw's built-in plugins, registered like third-party ones. Installed as ``framework.plugins``."""
