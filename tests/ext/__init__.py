"""Tests of ase_em.ext."""
