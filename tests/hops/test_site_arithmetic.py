import numpy as np
from pymatgen.core import Lattice, Structure

from ase_em.hops.site_arithmetic import site_products


def test_site_products_are_pymatgens_per_site_products_bit_for_bit():
    rng = np.random.default_rng(7)
    lattice = Lattice.from_parameters(9.3, 8.1, 12.7, 77.0, 95.0, 109.0)
    frac = rng.random((3000, 3)) * 3 - 1  # some outside the cell, as supercell sites are
    cart = site_products(frac, lattice.matrix)
    assert cart.shape == (3000, 3)
    assert np.array_equal(cart, np.array([np.dot(f, lattice.matrix) for f in frac]))
    assert np.array_equal(cart, Structure(lattice, ["O"] * 3000, frac).cart_coords)
    back = site_products(cart, lattice.inv_matrix)
    assert np.array_equal(back, np.array([lattice.get_fractional_coords(c) for c in cart]))
    assert np.allclose(back, frac, atol=1e-12)


def test_site_products_takes_one_vector():
    m = np.array([[2.0, 0.0, 0.0], [0.5, 3.0, 0.0], [0.0, 0.0, 4.0]])
    assert np.array_equal(site_products([0.5, 0.5, 0.25], m), [[1.25, 1.5, 1.0]])
