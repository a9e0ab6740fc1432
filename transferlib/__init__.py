"""transferlib: transferability estimation, reproduced.

Subpackages: :mod:`transferlib.scores` (the estimators), :mod:`transferlib.evaluation`
(correlations and rankings), :mod:`transferlib.data` (embedded and real datasets, task
constructors), :mod:`transferlib.models` and :mod:`transferlib.training` (source models and
transfer protocols), :mod:`transferlib.experiments` (one module per paper), and
:mod:`transferlib.plotting`. Subpackages are imported on demand so that NumPy-only use of the
scores never imports torch.
"""

__version__ = "0.1.0"
