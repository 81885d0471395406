"""Stage 4, crystals: Structure -> hop network -> percolation.

* :mod:`~ase_em.crystals.structure`: any structure input -> one checked pymatgen ``Structure``.
* :mod:`~ase_em.crystals.disorder`: partial occupancies: candidate ion sites, seeded orderings.
* :mod:`~ase_em.crystals.empty_sites`: candidate empty sites of the ion (Voronoi nodes of the framework).
* :mod:`~ase_em.crystals.hop_graph`: the hop network (``HopGraph``, a ``MigrationGraph``) on the
  primitive cell.
* :mod:`~ase_em.crystals.labelling`: barriers on a ``MigrationGraph``: labels and path costs.
* :mod:`~ase_em.crystals.disordered`: the network of a disordered crystal (median over orderings).
* :mod:`~ase_em.crystals.percolation`: 1D/2D/3D percolation barriers of a periodic hop graph.
* :mod:`~ase_em.crystals.analyzer`: ``MigrationBarrierAnalyzer``, the one place that chooses
  ordered or disordered.
"""
