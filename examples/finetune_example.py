"""Fine-tune the barrier model on 12 hops given as endpoint POSCARs plus a CSV of barriers.

    python examples/finetune_example.py                   # from the shipped model
    python examples/finetune_example.py --from MODEL_DIR  # from another model directory

The same run from the shell:

    ase-em finetune examples/finetune/hops.csv --output finetuned-example --strategy head --epochs 50

The 12 hops (examples/finetune/hops.csv) are em619 TRAIN records written as endpoints
(band site 0 + host -> initial, site 4 + host -> final). The shipped model was trained on
them, so this only shows the mechanics; use your own DFT barriers for a real fine-tune.
See docs/finetune.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import ase_em
from ase_em import EmPredictor, Hop

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> ase_em.EmPredictor:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="base", default=None, help="base model (default: shipped)")
    parser.add_argument("--output", default="finetuned-example", help="model directory to write")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)

    tuned = ase_em.finetune(
        HERE / "finetune" / "hops.csv",
        base=args.base,
        output=args.output,
        strategy="head",  # 12 hops: train the output head only (also the default below 50 hops)
        epochs=args.epochs,
        val_fraction=0.25,  # 9 hops train, 3 validate and early-stop
        threads=args.threads,
        overwrite=True,
    )
    card = tuned.card
    val, base_val = card["metrics"]["validation"], card["metrics"]["base_validation"]
    print(f"wrote {args.output}: {card['split']['scheme']}")
    print(f"validation MAE: base model {base_val['mae']:.3f} eV -> fine-tuned {val['mae']:.3f} eV")
    print(f"see {args.output}/parity.png and {args.output}/log.csv")

    # The fine-tuned directory works wherever a model is accepted.
    lfp = HERE / "LiFePO4"
    hop = Hop.from_endpoints(lfp / "initial.vasp", lfp / "final.vasp")
    before = EmPredictor.from_pretrained(args.base).predict_one(hop)
    after = EmPredictor.from_pretrained(args.output).predict_one(hop)
    print(f"LiFePO4 Li hop: base {before.em:.3f} +/- {before.em_std or 0:.3f} eV, "
          f"fine-tuned {after.em:.3f} +/- {after.em_std or 0:.3f} eV")
    return tuned


if __name__ == "__main__":
    main()
