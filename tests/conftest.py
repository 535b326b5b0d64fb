import os

import pytest
import torch

# Small, deterministic CPU runs: one thread avoids oversubscription with pytest-xdist-free CI.
torch.set_num_threads(int(os.environ.get("JSCGC_TEST_THREADS", "2")))


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)
