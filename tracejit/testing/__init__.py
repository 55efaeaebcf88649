"""Testing tools that ship with tracejit: the differential fuzzer (``python -m
tracejit.testing.fuzz``), which runs random valid NumPy programs under NumPy and under
``tracejit.compile`` on a backend and compares values, shapes, dtypes and gradients."""
