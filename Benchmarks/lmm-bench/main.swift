print("lmm-bench: not yet")
