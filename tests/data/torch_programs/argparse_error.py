"""The launch script passes a misspelt flag: argparse prints usage and exits with code 2."""

import argparse

import torch

parser = argparse.ArgumentParser(prog="train.py")
parser.add_argument("--lr", type=float, default=3e-4)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--epochs", type=int, default=10)
args = parser.parse_args()
print(f"training with lr={args.lr} on torch {torch.__version__}")
