"""The ``ase-em`` command line: the last stage; nothing in ase_em imports it.

:mod:`ase_em.cli.main` builds the parser and runs a command; :mod:`ase_em.cli._args` holds
the argument types and the usage checks made before torch is imported; one module per
command group holds the handlers (:mod:`~ase_em.cli.predict`, :mod:`~ase_em.cli.training`,
:mod:`~ase_em.cli.network`, :mod:`~ase_em.cli.screen`, :mod:`~ase_em.cli.refine`).
"""
