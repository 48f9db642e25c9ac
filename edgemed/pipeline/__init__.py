"""``edgemed run``: the stages in order (train → merge → export → bench), skipping what is up to date."""
