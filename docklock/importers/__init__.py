"""Importers: other tools' files → DockLock spec documents (pure data, no side effects).

`docklock.importers.compose` converts a docker-compose file. Importers read the files
they are given (and the files those name, confined to their folder) and return data;
writing the result is the CLI's job (docklock/cli/cmd_import.py).
"""
