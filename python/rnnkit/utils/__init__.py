"""Keras 3's ``keras.utils`` for rnnkit: data preparation, datasets, progress bar, plotting.

One module per job: :mod:`.sequence_utils` (``pad_sequences``), :mod:`.numerical_utils`
(``to_categorical``, ``normalize``), :mod:`.timeseries` (``timeseries_dataset_from_array``),
:mod:`.py_dataset` (``PyDataset``), :mod:`.progbar` (``Progbar``), :mod:`.plot_model`,
:mod:`.file_utils` (``get_file``, offline), :mod:`.random` (``set_random_seed``).
"""
from .file_utils import get_file
from .numerical_utils import normalize, to_categorical
from .plot_model import model_to_graph, plot_model
from .progbar import Progbar
from .py_dataset import PyDataset
from .random import set_random_seed
from .sequence_utils import pad_sequences
from .timeseries import timeseries_dataset_from_array

__all__ = ["get_file", "normalize", "to_categorical", "plot_model", "model_to_graph", "Progbar",
           "PyDataset", "set_random_seed", "pad_sequences", "timeseries_dataset_from_array"]
