"""All primitives, by name: ``REGISTRY["add"]``. Importing this package registers every one."""
from . import control, elementwise, reductions, structural  # noqa: F401  (registration side effects)
from . import sorting  # noqa: F401  (registration side effects)
from . import linalg  # noqa: F401  (registration side effects)
from .registry import KINDS, REGISTRY, Primitive

__all__ = ["KINDS", "REGISTRY", "Primitive"]
