"""Training callbacks (Keras 3 semantics) and the progress bar.

``History`` and ``ProgbarLogger`` are added by ``fit`` itself (after the user's callbacks, as
Keras); the others are passed in ``callbacks=[...]``. One module per callback family:
:mod:`.core` (base class, History, ProgbarLogger, EarlyStopping, ModelCheckpoint,
LearningRateScheduler), :mod:`.reduce_lr_on_plateau`, :mod:`.csv_logger`,
:mod:`.lambda_callback`, :mod:`.terminate_on_nan`, :mod:`.backup_and_restore`,
:mod:`.remote_monitor`, :mod:`.tensorboard`; :mod:`.monitor` holds the improvement rules.
"""
from ..utils.progbar import Progbar
from .backup_and_restore import BackupAndRestore
from .core import (Callback, CallbackList, EarlyStopping, History, LearningRateScheduler,
                   ModelCheckpoint, ProgbarLogger)
from .csv_logger import CSVLogger
from .lambda_callback import LambdaCallback
from .reduce_lr_on_plateau import ReduceLROnPlateau
from .remote_monitor import RemoteMonitor
from .tensorboard import TensorBoard
from .terminate_on_nan import TerminateOnNaN

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "Progbar", "EarlyStopping",
           "ModelCheckpoint", "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger",
           "LambdaCallback", "TerminateOnNaN", "BackupAndRestore", "RemoteMonitor", "TensorBoard"]
