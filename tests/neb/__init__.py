"""Tests of ase_em.neb."""
