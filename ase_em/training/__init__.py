"""Stage 8, training: labelled data -> models.

* :mod:`~ase_em.training.data`: labelled files -> hops + targets, errors naming the row.
* :mod:`~ase_em.training.metrics`: MAE, RMSE, R2, good-conductor classification.
* :mod:`~ase_em.training.ensemble`: K-fold CV ensembles (how the shipped model is made).
* :mod:`~ase_em.training.pretrain`: multi-property pre-training of the backbone.
* :mod:`~ase_em.training.finetune`: fine-tuning a trained model on users' data.
"""
