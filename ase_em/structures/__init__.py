"""Structure-level preparation of a crystal before its hops are built.

* :mod:`ase_em.structures.sites`: candidate empty sites of the migrating ion (Voronoi
  nodes of the framework), so that hops through empty sites exist.
* :mod:`ase_em.structures.network`: the hop network (a pymatgen-analysis-diffusion
  ``MigrationGraph``) on the primitive cell, symmetry computed once, hops grouped in
  near-linear time.
"""
