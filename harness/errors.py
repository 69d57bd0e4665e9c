"""Errors the CLI turns into one readable line and exit code 2."""


class HarnessError(Exception):
    """A problem the user can fix (bad config, missing file, bad eval set); exit code 2."""


class ConfigError(HarnessError):
    pass


class EvalSetError(HarnessError):
    pass
