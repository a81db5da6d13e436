"""The ``widthprune`` command line: :mod:`.main` builds the parser and runs a sub-command, one
module per sub-command; user errors end in one line and exit status 2."""

from .evaluate import evaluate_config_from
from .main import USER_ERRORS, build_parser, main

__all__ = ["USER_ERRORS", "build_parser", "evaluate_config_from", "main"]
