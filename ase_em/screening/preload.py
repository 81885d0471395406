"""Imports of a screening worker, done once in the fork server the local workers are forked from.

Imports only: no torch operation runs here, so the server has no thread pool when it forks
(:func:`ase_em.screening.workers.worker_context`). Each worker then loads its model.
"""

import torch  # noqa: F401

import ase_em.crystals.analyzer  # noqa: F401  (pymatgen, pymatgen-analysis-diffusion, the transport solver)
import ase_em.predictor  # noqa: F401
import ase_em.screening.work  # noqa: F401
