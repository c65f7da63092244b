"""Training: a run's pieces built once (`setup.py`), the loop (`loop.py`) over the compiled step
(`step.py`) and the train state (`state.py`, `optimizers.py`), the run directory it keeps
(`checkpoint.py`), the guard that stops a diverging run (`finite_guard.py`), progress lines and
event files (`progress.py`), data parallelism (`parallel.py`), runs built on other runs
(`transfer.py`, `pretrain.py`) and the up-front checks of a run's settings (`validate.py`).
"""
