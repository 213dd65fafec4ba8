#!/usr/bin/env python3
"""Writes torchvision reference fixtures for the parity tests.

Run with Debian's python3-torch 1.13 and python3-torchvision 0.14:

    /usr/bin/python3 tests/parity/generate_fixtures.py OUT_DIR

For each of resnet18, densenet121, mobilenet_v2 and efficientnet_b0 it writes OUT_DIR/<model>/:
  weights.pth   random-init state_dict (running statistics randomised so eval-mode BatchNorm is
                not the identity); densenet121 is saved in the legacy (pre-1.6) format with
                torchvision's old key names ("norm.1"), as the official file is
  input.npy     a float32 NCHW batch [2, 3, 64, 64]
  labels.npy    int64 labels [2]
  logits.npy    eval-mode logits [2, 1000]
  grad_<key>.npy  gradients of a few parameters after one training-mode forward and backward of
                the mean cross-entropy, with dropout and stochastic depth set to 0 (they draw
                random masks that no other framework can reproduce), computed in float64 (the
                reference) and stored as float32
  meta.json     the gradient keys, PyTorch's own float32 error on each gradient (max |f32 - f64|
                / (1 + max |f64|): how sensitive this random network is), the versions
"""
import json
import os
import re
import sys

import numpy as np
import torch
import torchvision

MODELS = {
    "resnet18": ["conv1.weight", "layer3.1.bn2.weight", "fc.weight", "fc.bias"],
    "densenet121": [
        "features.conv0.weight",
        "features.denseblock3.denselayer7.conv2.weight",
        "classifier.weight",
    ],
    "mobilenet_v2": [
        "features.0.0.weight",
        "features.9.conv.1.0.weight",
        "classifier.1.weight",
    ],
    "efficientnet_b0": [
        "features.0.0.weight",
        "features.4.1.block.2.fc1.weight",
        "features.6.0.block.1.0.weight",
        "classifier.1.weight",
    ],
}


def old_densenet_key(key: str) -> str:
    # The inverse of torchvision's _load_state_dict rename: norm1 -> norm.1 etc.
    return re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key)


def main(out: str) -> None:
    torch.backends.cudnn.deterministic = True
    for i, (name, grad_keys) in enumerate(MODELS.items()):
        torch.manual_seed(1000 + i)
        model = getattr(torchvision.models, name)(weights=None)
        with torch.no_grad():
            for mod in model.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_mean.uniform_(-0.2, 0.2)
                    mod.running_var.uniform_(0.5, 1.5)
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.uniform_(-0.2, 0.2)
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        x = torch.rand(2, 3, 64, 64) * 2 - 1
        labels = torch.tensor([3, 998])
        model.eval()
        with torch.no_grad():
            logits = model(x)
        sd = model.state_dict()
        if name == "densenet121":
            # Like the official file: old key names, and no num_batches_tracked (it predates them).
            sd = {
                old_densenet_key(k): v for k, v in sd.items() if not k.endswith("num_batches_tracked")
            }
            torch.save(sd, os.path.join(folder, "weights.pth"), _use_new_zipfile_serialization=False)
        else:
            torch.save(sd, os.path.join(folder, "weights.pth"))
        for mod in model.modules():
            if isinstance(mod, torch.nn.Dropout):
                mod.p = 0.0
            if type(mod).__name__ == "StochasticDepth":
                mod.p = 0.0
        model.train()
        grads = {}
        for dtype in (torch.float32, torch.float64):
            m = model.to(dtype)
            m.zero_grad()
            loss = torch.nn.functional.cross_entropy(m(x.to(dtype)), labels)
            loss.backward()
            params = dict(m.named_parameters())
            grads[dtype] = {k: params[k].grad.detach().clone() for k in grad_keys}
            if dtype == torch.float32:
                loss32 = loss.item()
        f32_error = {}
        for key in grad_keys:
            ref = grads[torch.float64][key]
            err = (grads[torch.float32][key].double() - ref).abs().max() / (1 + ref.abs().max())
            f32_error[key] = err.item()
            np.save(os.path.join(folder, f"grad_{key}.npy"), ref.float().numpy())
        loss = torch.tensor(loss32)
        np.save(os.path.join(folder, "input.npy"), x.numpy())
        np.save(os.path.join(folder, "labels.npy"), labels.numpy())
        np.save(os.path.join(folder, "logits.npy"), logits.numpy())
        meta = {
            "model": name,
            "grad_keys": grad_keys,
            "torch_f32_grad_error": f32_error,
            "train_loss": loss.item(),
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
        }
        with open(os.path.join(folder, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        print(f"{name}: logits {tuple(logits.shape)}, train loss {loss.item():.4f}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: generate_fixtures.py OUT_DIR")
    main(sys.argv[1])
