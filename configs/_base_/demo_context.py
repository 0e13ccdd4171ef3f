# The long-range demo (docs/demo_diagnosis.md) but its decode head's type and arguments: the
# demo model with the head fields every demo head shares (models/r18-d8_demo.py), the
# synthetic context data, the 450-iteration schedule and nlseg's runtime. Each
# configs/demo/*_synthetic-context-*.py sets its head's type and arguments.
_base_ = [
    './models/r18-d8_demo.py',
    './datasets/synthetic_context.py',
    './schedules/demo_450iter.py',
    './default_runtime.py',
]
