"""Plain ``nn.Module`` building blocks, usable in any PyTorch model."""
from .non_local_base import NonLocalBase  # noqa: F401
from .non_local import *  # noqa: F401,F403
from .non_local_stage import *  # noqa: F401,F403
from .spectral_non_local import *  # noqa: F401,F403
from .hams import *  # noqa: F401,F403
from .hamburger import *  # noqa: F401,F403
from .nltv_softmax import *  # noqa: F401,F403
