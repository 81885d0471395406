"""Transport from a hop network: rates, the exact one-carrier diffusion tensor, sigma(T).

Works on plain arrays (:class:`ase_em.transport.network.RateNetwork`); the crystal stage
builds the network from its labelled graph (``MigrationBarrierAnalyzer.conductivity``).
``docs/conductivity.md`` has the method, its assumptions and its limits.
"""

from ase_em.transport.conductivity import ConductivityResult, conductivity, ion_charge
from ase_em.transport.network import RateNetwork, diffusion_tensor, percolation_dimension

__all__ = ["ConductivityResult", "RateNetwork", "conductivity", "diffusion_tensor", "ion_charge",
           "percolation_dimension"]
