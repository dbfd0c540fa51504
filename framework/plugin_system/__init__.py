"""The plugin machinery: the hooks, the registry of names, and the loader of built-in, installed and
config-named plugins (pluggy underneath).
"""
