"""Stage 5, adapters to other libraries.

* :mod:`~ase_em.ext.ase`: ``EmCalculator`` and ``predict_neb`` (ASE); :mod:`~ase_em.ext.ase_plugin`
  registers the calculator as ASE's plugin ``ase-em``.
* :mod:`~ase_em.ext.pymatgen`: ``MigrationGraph.with_em_predictor`` (pymatgen-analysis-diffusion).
"""
