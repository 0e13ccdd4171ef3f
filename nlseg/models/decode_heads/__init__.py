"""mmseg decode heads, registered in ``mmseg.registry.MODELS`` on import."""
