"""lipkit: 1-Lipschitz neural networks (CPL, SLL, AOL, spectral, orthogonal, l_inf-distance, SortNet,
splines, monotonic and private networks), their certificates and their export, from Python.

The layers (lipkit.nn) are torch.nn.Modules twinned with lipkit's C++ modules; checkpoints move both
ways between this package and the `lipkit` CLI; certificates, bounds, attacks and exports run the
C++ library on the same model. Loading this package registers torch.ops.lipkit.*.
"""
import torch  # first: the extension links the LibTorch torch loaded

from . import _C
from . import nn
from . import models
from . import attack
from . import lipschitz
from . import data
from .checkpoint import load, save
from .certify import certify, certified_radius, certificate, default_radii
from .deploy import export

__version__ = "0.1.0"
__all__ = ["nn", "models", "attack", "lipschitz", "data", "load", "save", "certify", "certified_radius", "certificate",
           "default_radii", "export"]


def _check_abi():
    """The extension runs on the LibTorch this torch runs on: same version, same C++ ABI."""
    if not torch.__version__.startswith(_C.torch_version[:4]):
        raise ImportError(f"lipkit was built against LibTorch {_C.torch_version}, this Python runs torch "
                          f"{torch.__version__}: rebuild lipkit against this torch")
    if torch._C._GLIBCXX_USE_CXX11_ABI != _C.cxx11_abi:
        raise ImportError("lipkit and torch disagree on the C++ ABI (_GLIBCXX_USE_CXX11_ABI): rebuild lipkit")


_check_abi()
# As the CLI: LibTorch (and Debian's torch) start with one intra-op thread; lipkit's default is every
# core (LIPKIT_NUM_THREADS or OMP_NUM_THREADS when set), and large tensors stay in the heap.
if torch.get_num_threads() == 1:
    _C.configure_threads()
_C.configure_allocator()
