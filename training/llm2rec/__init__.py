"""LLM2Rec-style training: a truncated LLM encodes item titles, a small SASRec models user histories.

The output is a model bundle (see docs/bundle-format.md) served by the TypeScript server.
"""
