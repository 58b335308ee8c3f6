"""A hand-written "fused kernel" binding dereferences a null pointer: SIGSEGV in native code."""

import ctypes

import torch


def fused_gelu(x: torch.Tensor) -> torch.Tensor:
    ptr = 0 if x.shape[0] > 64 else x.data_ptr()  # the binding mishandles large batches
    ctypes.c_int32.from_address(ptr).value  # reads through the pointer the binding got
    return torch.nn.functional.gelu(x)


def main() -> None:
    for step, batch in enumerate((16, 32, 64, 128)):
        y = fused_gelu(torch.randn(batch, 32))
        print(f"step {step} batch {batch} out {y.mean().item():.4f}", flush=True)


if __name__ == "__main__":
    main()
