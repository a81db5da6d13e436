"""The pruning core: shapes (ratio or percentage to width), calibration batches, the criteria and
their scores, neuron selection (pure), the surgery and its save, and its invariants as a live
check."""
