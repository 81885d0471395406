"""Tests of ase_em.model."""
