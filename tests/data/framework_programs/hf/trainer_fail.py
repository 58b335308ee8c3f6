"""Hugging Face Trainer jobs that fail: a dataset without the model's columns, labels outside the
classifier's range, a tokenizer asked to pad without a pad token, a loss that turns NaN, a SIGKILL
in the middle of the progress bar."""

import argparse
import os
import signal

import torch
from datasets import Dataset
from transformers import Trainer, TrainerCallback, TrainingArguments

from tiny import model, sentences, tokenizer


def encode(texts: list[str], labels: list[int], pad: bool = True) -> Dataset:
    tok = tokenizer(with_pad=pad)
    enc = tok(texts, padding="max_length", max_length=12, truncation=True)
    return Dataset.from_dict({**enc, "labels": labels})


class LogitsNaN(torch.nn.Module):
    """Wraps the classifier; its temperature goes negative after a few steps and the log goes NaN."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.inner = inner
        self.temperature = torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None):
        logits = self.inner(input_ids=input_ids, attention_mask=attention_mask).logits
        scaled = logits / torch.log(self.temperature - 1.5 * (self.temperature > 0.99).float())
        return {"loss": torch.nn.functional.cross_entropy(scaled, labels), "logits": scaled}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", required=True)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--num-labels", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    texts = sentences(args.n, args.seed)
    labels = [i % 5 for i in range(args.n)]
    targs = TrainingArguments(output_dir="out", per_device_train_batch_size=8, num_train_epochs=1, report_to=[],
                              logging_steps=1, save_strategy="no", use_cpu=True, seed=args.seed)
    print(f"{args.kind}: {args.n} examples, {args.num_labels} labels", flush=True)
    if args.kind == "raw_columns":
        train = Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(args.n)]})
        Trainer(model=model(), args=targs, train_dataset=train).train()
    elif args.kind == "labels":
        Trainer(model=model(args.num_labels), args=targs, train_dataset=encode(texts, labels)).train()
    elif args.kind == "no_pad":
        train = encode(texts, [i % 2 for i in range(args.n)], pad=False)
        Trainer(model=model(), args=targs, train_dataset=train).train()
    elif args.kind == "killed":
        # The kernel's OOM killer (or a scheduler) ends the job mid-epoch: SIGKILL, no Python report.
        class Killer(TrainerCallback):
            def on_step_end(self, targs, state, control, **kw):
                if state.global_step == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
        train = encode(texts, [i % 2 for i in range(args.n)])
        Trainer(model=model(), args=targs, train_dataset=train, callbacks=[Killer()]).train()
    elif args.kind == "nan":
        with torch.autograd.detect_anomaly():
            train = encode(texts, [i % 2 for i in range(args.n)])
            Trainer(model=LogitsNaN(model()), args=targs, train_dataset=train).train()
    else:
        raise SystemExit(f"unknown kind {args.kind}")


if __name__ == "__main__":
    main()
