"""What a trained run is measured and shown by: test-set NLL (`nll.py`), sample fidelity
(`fidelity.py`), the quality of its codes (`representation.py`), and the figures a run leaves
in its workdir (`figures.py`, `generation.py`).
"""
