"""ASE plugin: registers :class:`ase_em.ext.ase.EmCalculator` as the calculator ``ase-em``.

Declared in pyproject.toml under the entry-point group ``ase.plugins`` (the group that
ASE 3.29's ``ase._4.plugins.PluginCollection.from_entry_points`` reads), so that
``from ase._4.plugins import plugins; plugins.calculators`` lists ``ase-em`` without
importing ase_em. The calculator itself is imported only when the plugin's
``implementation`` is asked for.

ASE imports this module while it builds its plugin collection; import
``ase._4.plugins`` (not this module) to get the registry.
"""

from __future__ import annotations

from ase._4.plugins.plugin import CalculatorPlugin

__ase_plugins__ = {
    CalculatorPlugin(
        name="ase-em",
        citation=(
            "ase-em: ALIGNN migration barriers; data: Devi, Balasubramanian, Butler and "
            "Sai Gautam, migration-barrier dataset (em619)"
        ),
        implementation="ase_em.ext.ase.EmCalculator",
    )
}
