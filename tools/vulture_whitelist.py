"""Names vulture cannot see used (`vulture graphspec tools/vulture_whitelist.py`; tests/test_quality.py runs it).

Each is used by a protocol vulture does not follow: an lru_cache key, PyYAML's resolver signature.
"""

mtime_ns  # plugins._scan_file: part of the lru_cache key (a changed file is scanned again)
current_index  # yaml_read: PyYAML calls descend_resolver(current_node, current_index)
current_node
stdio  # cli/lsp.py: `--stdio`, accepted as editors pass it (stdio is the only transport)
strict_roots  # run/sources/listing.py: keyword kept for callers
