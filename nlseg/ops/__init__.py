"""Pure tensor math (no mm* imports): attention kernels, affinities, matrix
decompositions, graph operators and solvers."""
from .affinity import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .concat_affinity import *  # noqa: F401,F403
from .matrix_decomposition import *  # noqa: F401,F403
from .graph_operators import *  # noqa: F401,F403
from .grid_graph import *  # noqa: F401,F403
from .knn_graph import *  # noqa: F401,F403
from .low_rank_projection import *  # noqa: F401,F403
from .nltv_softmax import *  # noqa: F401,F403
from .symmetric_kernel import *  # noqa: F401,F403
