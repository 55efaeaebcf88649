"""Transformations of traced programs: automatic differentiation (``autodiff``)."""
