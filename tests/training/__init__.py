"""Tests of ase_em.training."""
