"""mmseg decode heads, registered in ``mmseg.registry.MODELS`` on import."""
from .arnl_head import *  # noqa: F401,F403
from .nl_head import *  # noqa: F401,F403
from .ns_head import *  # noqa: F401,F403
from .snl_head import *  # noqa: F401,F403
from .ham_head import *  # noqa: F401,F403
from .nltv_head import *  # noqa: F401,F403
