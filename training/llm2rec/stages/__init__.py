"""The three LLM2Rec training stages, one module each (csft, mntp, simcse), and the loop they share (loop.py)."""
