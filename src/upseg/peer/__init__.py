"""The side-by-side benchmark against the peer a user would pick — segmentation_models.pytorch's ``Unet`` in a plain
loop (:mod:`.loop`) — at equal wall-clock on the same cores, the same data and test images, scored by upseg's own
counts: its cells (:mod:`.cells`) and the paired table (:mod:`.table`). ``scripts/benchmark_peer.py`` runs it.
Imports training, planning, data, metrics, analysis, cli and errors; needs the ``[peer]`` extra."""
