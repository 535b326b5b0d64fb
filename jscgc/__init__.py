"""jscgc: Joint Source-Channel-Generation Coding (Wu et al. 2026) from toy to full scale.

The shared core: channels (``jscgc.channels``), the flow-matching objective and Euler sampler
(``jscgc.flow``), the end-to-end systems (``jscgc.system``) and the one training loop
(``jscgc.train``).
"""
from jscgc.channels import AWGN, BEC, BSC, RayleighBlockFading, power_normalize
from jscgc.flow import euler_sample, flow_matching_loss
from jscgc.system import JSCGC, CommSystem, MSEReconstruction, Received

__all__ = ["AWGN", "BEC", "BSC", "RayleighBlockFading", "power_normalize", "euler_sample",
           "flow_matching_loss", "JSCGC", "CommSystem", "MSEReconstruction", "Received"]
__version__ = "0.1.0"
