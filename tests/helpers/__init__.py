"""Helpers the tests share, imported as ``tests.helpers.<module>``: composing the real configs (:mod:`.configs`),
running the scripts as a user would (:mod:`.scripts`), tiny datasets in published on-disk formats (:mod:`.datasets`)
and inputs for any registered upsampler (:mod:`.upsamplers`)."""
