"""Tests of ase_em.hops."""
