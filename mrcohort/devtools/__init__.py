"""Developer tools that are not part of the pipeline: training the shipped demo segmentation
models on phantoms (:mod:`mrcohort.devtools.train_demo`, behind ``mrcohort train-demo-model``).

Imported lazily (it loads torch and nnU-Net); nothing is re-exported here.
"""

__all__: list[str] = []
