"""Tests of ase_em.screening."""
