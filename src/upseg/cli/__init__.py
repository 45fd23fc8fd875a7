"""What the thin scripts share, around Hydra: a task run with user errors as one line (:mod:`.task`), config checks
before anything is built (:mod:`.validation`), checks of the command line itself (:mod:`.overrides`), optional extras
named when missing (:mod:`.extras`), run folders that never overwrite (:mod:`.run_folders`) and SLURM checks
(:mod:`.slurm`). Imports models and upsample (their registries, to check options), errors and Hydra; never
training, evaluation or analysis."""
