"""jscgc: Joint Source-Channel-Generation Coding (Wu et al. 2026) from toy to full scale.

The shared core: channels (``jscgc.channels``), the flow-matching objective and Euler sampler
(``jscgc.flow``), the end-to-end systems (``jscgc.system``; the ``System`` protocol and the sampling
settings ``Dial`` in ``jscgc.types``) and the one training loop
(``jscgc.train``).
"""
from jscgc.channels import AWGN, BEC, BSC, RayleighBlockFading, power_normalize
from jscgc.flow import euler_sample, flow_matching_loss
from jscgc.system import JSCGC, CommSystem, MSEReconstruction, Received
from jscgc.types import Dial, Reception, System

__all__ = ["AWGN", "BEC", "BSC", "RayleighBlockFading", "power_normalize", "euler_sample",
           "flow_matching_loss", "JSCGC", "CommSystem", "MSEReconstruction", "Received", "Dial", "Reception", "System"]
__version__ = "0.1.0"
