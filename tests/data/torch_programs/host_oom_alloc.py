"""Host memory runs out: an address-space limit stands in for a small container memory limit."""

import resource

import torch


def build_cache(n_items: int) -> torch.Tensor:
    return torch.empty(n_items, 1024, 1024, dtype=torch.float32)  # n_items MiB x 4


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, hard))
    print("building feature cache", flush=True)
    cache = build_cache(4096)
    print(cache.shape)


if __name__ == "__main__":
    main()
