"""A small CPU training script with one ordinary code bug per --bug, each at its own place.

The bugs are the everyday ones of PyTorch code: misspelled methods on values read from the config,
wrong argument counts, dtype and device mismatches, autograd misuse (in-place edits, no grad,
backward twice), view/einsum/matmul shape errors, runaway recursion, a failed assertion, and a
checkpoint that does not fit the model (renamed layer, a pickled class torch.load refuses), and
an experiment tracker that is not installed (--bug tracker), a GPU call on a CPU-only build of
torch (--bug cuda).
--warn prints the deprecation warnings a real job shows before its error.
"""

import argparse
import os
import warnings

import torch
import torch.nn.functional as F

from models.mlp import MLP


def build_config(args: argparse.Namespace) -> dict:
    return {"lr": args.lr, "hidden": args.hidden, "warmup": 10, "schedule": "cosine"}


def make_optimizer(model, cfg):
    return torch.optim.SGD(model.parameters(), lr=cfg["lr"].item())


def scheduled_epochs(args):
    return range(args.epochs.bit_count() + args.epochs.bar)


def mix(x, y):
    return 0.5 * x + 0.5 * y


def blend_batches(a, b, weight):
    return mix(a, b, weight)


def normalise_targets(x, y):
    return torch.mm(x, y.double())


def to_device(batch, device):
    return batch.to(device) + torch.ones(batch.shape[-1])


def residual_block(x):
    h = x * 2
    out = h.exp()
    out.add_(1)  # "saves memory"
    return out.sum()


def frozen_head_loss(model, x):
    with torch.no_grad():
        out = model(x)
    return out.pow(2).mean()


def accumulate(model, x):
    loss = model(x).pow(2).mean()
    loss.backward()
    return loss


def flatten_features(x):
    return x.t().view(-1)


def attention_scores(q, k):
    return torch.einsum("bhd,bhe->bde", q, k[:, :, :, None])


def project(x, w):
    return x @ w


def depth_of(node):
    return 1 + depth_of(node)


def check_batch(x, batch):
    assert x.shape[0] == batch, f"expected a batch of {batch}, got {x.shape[0]}"


class Renamed(torch.nn.Module):
    def __init__(self, d_in: int, hidden: int, d_out: int) -> None:
        super().__init__()
        self.encoder = torch.nn.Linear(d_in, hidden)
        self.head = torch.nn.Linear(hidden, d_out)


class RunState:
    def __init__(self, step: int) -> None:
        self.step = step


def resume(model, path):
    state = torch.load(path)
    model.load_state_dict(state["model"])


def init_tracker(project: str):
    import wandb
    return wandb.init(project=project)


def step_fn(args, model, x, step):
    bug = args.bug
    if bug == "tracker":
        init_tracker("mlp-sweep")
    elif bug == "cuda":
        model.cuda()
    elif bug == "attr_cfg":
        make_optimizer(model, build_config(args))
    elif bug == "attr_args":
        list(scheduled_epochs(args))
    elif bug == "argcount":
        blend_batches(x, x, 0.3)
    elif bug == "dtype":
        normalise_targets(x, x.t())
    elif bug == "device":
        to_device(x, torch.device("meta"))
    elif bug == "inplace":
        residual_block(x.requires_grad_()).backward()
    elif bug == "nograd":
        frozen_head_loss(model, x).backward()
    elif bug == "twice":
        loss = accumulate(model, x)
        loss.backward()
    elif bug == "view":
        flatten_features(model(x))
    elif bug == "einsum":
        attention_scores(x.view(x.shape[0], 2, -1), x.view(x.shape[0], 2, -1))
    elif bug == "matmul":
        project(x, torch.randn(args.hidden, 10))
    elif bug == "recursion":
        depth_of({"step": step})
    elif bug == "assert":
        check_batch(x[1:], args.batch)
    elif bug in ("state_dict", "weights_only"):
        path = os.path.join(args.ckpt_dir, "last.pt")
        os.makedirs(args.ckpt_dir, exist_ok=True)
        if bug == "state_dict":
            torch.save({"model": Renamed(64, args.hidden, 10).state_dict()}, path)
        else:
            torch.save({"model": model.state_dict(), "run": RunState(step)}, path)
        resume(model, path)


def main(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    if args.warn:
        warnings.warn("torch.cuda.amp.GradScaler(args...) is deprecated. Please use "
                      "torch.amp.GradScaler('cuda', args...) instead.", FutureWarning)
        warnings.warn("The epoch parameter in `scheduler.step()` was not necessary and is being deprecated.",
                      UserWarning)
    model = MLP(64, args.hidden, 10)
    for step in range(1, args.fail_step + 1):
        x = torch.randn(args.batch, 64)
        loss = F.cross_entropy(model(x), torch.randint(0, 10, (args.batch,)))
        print(f"step {step} loss {loss.item():.4f}", flush=True)
        if step == args.fail_step:
            step_fn(args, model, x, step)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--bug", required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fail-step", type=int, default=3)
    p.add_argument("--ckpt-dir", default="checkpoints")
    p.add_argument("--warn", action="store_true")
    main(p.parse_args())
