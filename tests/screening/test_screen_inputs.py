"""Screen inputs and rows: CIF data blocks, structures without a host, flagged bottlenecks, one log line."""

from __future__ import annotations

import logging
from pathlib import Path

from ase_em.screening.inputs import expand_inputs
from ase_em.screening.report import rank_rows
from ase_em.screening.work import _one_line_per_unit, run_unit

DATA = Path(__file__).resolve().parents[1] / "data"


def test_multi_block_cif_gives_one_unit_per_block(tmp_path, tiny_model_dir):
    path = tmp_path / "export.cif"
    text = (DATA / "LFP_occ10001.cif").read_text() + "\n" + (DATA / "llto_disordered.cif").read_text()
    path.write_text(text)
    sources = expand_inputs([path])
    assert [s.source.rsplit("@", 1)[1] for s in sources] == ["block=LiFePO4", "block=Li0.33La0.56Ti1O3"]
    assert sources[0].sha256 == sources[1].sha256
    assert [s.block for s in sources] == ["LiFePO4", "Li0.33La0.56Ti1O3"]
    assert [s.source for s in expand_inputs([DATA / "LFP_occ10001.cif"])] == [str(DATA / "LFP_occ10001.cif")]
    unit = {"source": sources[0].source, "sha256": sources[0].sha256, "ion": "Li", "path": sources[0].path,
            "atoms": None, "block": sources[0].block}
    row = run_unit(unit, model=str(tiny_model_dir), n_orderings=1)
    assert row["key_value_pairs"]["status"] == "ok"
    assert row["key_value_pairs"]["reduced_formula"] == "LiFePO4" and row["key_value_pairs"]["ordered"]


def test_a_structure_without_host_is_refused_with_its_reason(tiny_model_dir):
    unit = {"source": "gemdat_argyrodite.cif", "sha256": "x", "ion": "Li",
            "path": str(DATA / "gemdat_argyrodite.cif"), "atoms": None}
    kv = run_unit(unit, model=str(tiny_model_dir))["key_value_pairs"]
    assert kv["status"] == "refused"
    assert "only Li atoms (48 sites), no host framework" in kv["reason"]


def test_rows_with_a_flagged_bottleneck_are_marked_and_can_be_left_unranked():
    rows = [
        {"source": "Na3SbS4.cif", "status": "ok", "em_1d": 0.133, "em_1d_flags": "element_not_in_train"},
        {"source": "LiFePO4.cif", "status": "ok", "em_1d": 0.266},
        {"source": "MgO.cif", "status": "refused", "reason": "no Li"},
    ]
    ranked = rank_rows(rows)
    assert [(r["source"], r["rank"], r["flagged"]) for r in ranked] == [
        ("Na3SbS4.cif", 1, "element_not_in_train"), ("LiFePO4.cif", 2, ""), ("MgO.cif", "", "")]
    in_domain = rank_rows(rows, in_domain=True)
    assert [(r["source"], r["rank"]) for r in in_domain] == [
        ("LiFePO4.cif", 1), ("Na3SbS4.cif", ""), ("MgO.cif", "")]
    assert rank_rows(rows, by="em_min", in_domain=True)[0]["rank"] == ""  # no em_min: none ranked


def test_a_unit_logs_one_line_and_its_details_at_debug(caplog):
    work = logging.getLogger("ase_em.crystals.labelling")
    with caplog.at_level(logging.DEBUG, logger="ase_em"):
        with _one_line_per_unit("a.cif", "Li"):
            for k in range(3):
                work.warning("hop %d is blocked", k)
            work.info("hop graph built")
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned == ["a.cif (Li): hop 0 is blocked (3 warnings; ase-em -vv lists them)"]
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert debug == [f"a.cif (Li): hop {k} is blocked" for k in range(3)] + ["a.cif (Li): hop graph built"]
