"""The example configs, installed as ``framework.configs``: ``fw configs`` lists them, ``fw run NAME`` runs one."""
