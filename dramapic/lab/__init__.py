"""The lab: training data, mix synthesis, training targets, evaluation and benchmarks (never imported by the
product's analysis path)."""
