"""An optimizer's state as plain data: tensors for safetensors, the rest for JSON (no pickle)."""

import torch


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
