"""The optimizer every model trains with, and its state as plain data for checkpoints.

AdamW with two parameter groups: the matrices (weights, embeddings) decay by `weight_decay`;
biases and normalisation gains (every parameter of fewer than 2 dimensions) do not, since
pulling a bias or a gain towards 0 is not a simpler model, only a shifted one. The state is
split into tensors (for safetensors) and a JSON-able rest: nothing is pickled.
"""

import torch


def build_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float, betas: tuple[float, float]
) -> torch.optim.AdamW:
    parameters = [p for p in model.parameters() if p.requires_grad]
    matrices = [p for p in parameters if p.dim() >= 2]
    others = [p for p in parameters if p.dim() < 2]
    return torch.optim.AdamW(
        [
            {"params": matrices, "weight_decay": weight_decay},
            {"params": others, "weight_decay": 0.0},
        ],
        lr=lr,
        betas=betas,
    )


def optimizer_to_plain(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """state_dict() split into named tensors ("state.<param>.<key>") and a JSON-able rest."""
    state_dict = optimizer.state_dict()
    tensors, scalars = {}, {}
    for param_id, entries in state_dict["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{param_id}.{key}"] = value
            else:
                scalars[f"{param_id}.{key}"] = value
    groups = [
        {k: list(v) if isinstance(v, tuple) else v for k, v in group.items()}
        for group in state_dict["param_groups"]
    ]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_plain(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], document: dict
) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        _, param_id, key = name.split(".", 2)
        state.setdefault(int(param_id), {})[key] = value
    for name, value in document["scalars"].items():
        param_id, key = name.split(".", 1)
        state.setdefault(int(param_id), {})[key] = value
    groups = [
        {k: tuple(v) if k == "betas" else v for k, v in group.items()}
        for group in document["param_groups"]
    ]
    optimizer.load_state_dict({"state": state, "param_groups": groups})
