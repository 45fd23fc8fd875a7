"""Analysis of runs and layers: sweep comparisons with paired bootstrap intervals (:mod:`.compare` and the modules it
is built from: :mod:`.sweep`, :mod:`.comparison`, :mod:`.bootstrap`, :mod:`.report`, :mod:`.plots`), the cost of a
module (:mod:`.cost`) and the upsampler benchmarks (:mod:`.benchmark`). Imports metrics (the catalogue and result
files), models, upsample and errors; never training or evaluation."""
