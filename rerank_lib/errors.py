"""The project's own error types: each names the file, row, column or key at fault."""


class RerankError(Exception):
    """Base class for errors raised on bad input or configuration, before expensive work starts."""


class ModelLoadError(RerankError):
    """A model folder or Hub id could not be loaded (missing files, corrupted weights)."""


class DataValidationError(RerankError):
    """Input data is malformed: the message names the file, row and column."""


class ConfigError(RerankError):
    """params.yaml or a stage config is invalid: the message names the key and what was expected."""
