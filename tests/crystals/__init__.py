"""Tests of ase_em.crystals."""
