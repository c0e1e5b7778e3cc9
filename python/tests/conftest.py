import os
import shutil

import pytest
import torch

import lipkit


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def cli():
    """The lipkit CLI built with this package (ctest sets LIPKIT_CLI)."""
    path = os.environ.get("LIPKIT_CLI") or shutil.which("lipkit")
    if not path:
        pytest.skip("the lipkit CLI is not built (LIPKIT_CLI unset)")
    return path
