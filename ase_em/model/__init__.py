"""Stage 2, model: one Hop -> Em.

* :mod:`~ase_em.model.band`: Hop -> band5 ``Atoms`` (the ion at five positions in the host).
* :mod:`~ase_em.model.graph`: band -> ``BandGraph`` (alignn's pure-PyTorch neighbour list, line graph).
* :mod:`~ase_em.model.model`: ``EmModel`` (alignn's ALIGNN layers, target scaling), ``EmEnsemble``.
* :mod:`~ase_em.model.weights`: shipped model directories: find, verify (sha256), load, save.
* :mod:`~ase_em.model.domain`: the model's domain (TRAIN limits, descriptor distance), flags.
* :mod:`~ase_em.model.uncertainty`: calibration of ``em_std``.
"""
