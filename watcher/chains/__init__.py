"""Chain adapters: one module per node dialect, raw JSON-RPC in, models out."""
