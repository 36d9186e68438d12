"""The base of every typed config section (kept apart so the dataset catalog can use it without a cycle)."""

from pydantic import BaseModel, ConfigDict


class StageConfig(BaseModel):
    """Base for stage sections: unknown keys are errors, values are not silently coerced across types."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)
