"""`graphspec lsp`: a language server over the pure stages (spec/ and analysis/).

A thin protocol layer, like cli/: :mod:`.snapshot` runs the same check as `lint` on
one version of an open document and keeps what the other modules need to answer
from it; :mod:`.server` wires them to pygls. It never builds a model, never imports
Keras, a backend or a plugin (plugin layers are read statically, as `lint` reads them).
"""
