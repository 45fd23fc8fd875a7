"""The machinery behind the registered upsamplers, none of it registered itself: transposed convolution as a direct
convolution (:mod:`.direct_conv`, :mod:`.polyphase`, :mod:`.direct_conv_transpose2d`), its geometry
(:mod:`.transpose_geometry`), the resize-convolution base (:mod:`.resize_conv`), CARAFE's reassembly
(:mod:`.reassembly`), the channel projection of the content-aware upsamplers (:mod:`.projection`) and the option
checks (:mod:`.options`). Imports nothing but torch."""
