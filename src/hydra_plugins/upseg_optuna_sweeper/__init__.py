"""upseg's Optuna sweeper for Hydra (``hydra/sweeper=upseg_optuna``, which ``hparams_search=optuna`` selects)."""
