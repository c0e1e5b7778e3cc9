"""The image data sets the CLI trains on (data::load_dataset): fashion-mnist (Debian's
dataset-fashion-mnist), mnist, cifar10, cifar100 from a folder."""
import torch

_ops = torch.ops.lipkit


def load(spec="fashion-mnist", split="test"):
    """(images, labels, num_classes): images float32 in [0, 1], (N, C, H, W); labels int64."""
    return _ops.py_load_dataset(str(spec), str(split))
