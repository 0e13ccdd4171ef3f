"""Pure tensor math (no mm* imports): the kernels of the non-local family (one file per
kernel in :mod:`nlseg.ops.kernels`, with its dense and efficient path), matrix
decompositions, graph operators and solvers."""
from . import affinity, attention, concat_affinity  # noqa: F401  (the former module names)
from .kernels.common import apply_affinity  # noqa: F401
from .kernels.softmax import *  # noqa: F401,F403
from .kernels.dot_product import *  # noqa: F401,F403
from .kernels.concatenation import *  # noqa: F401,F403
from .kernels.relu_dot import *  # noqa: F401,F403
from .kernels.ns_stage import *  # noqa: F401,F403
from .matrix_decomposition import *  # noqa: F401,F403
from .graph_operators import *  # noqa: F401,F403
from .grid_graph import *  # noqa: F401,F403
from .knn_graph import *  # noqa: F401,F403
from .low_rank_projection import *  # noqa: F401,F403
from .nltv_softmax import *  # noqa: F401,F403
