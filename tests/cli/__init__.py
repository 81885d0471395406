"""Tests of ase_em.cli."""
