"""Tensor operations shared by backbones and tuners (no dependency on either)."""
