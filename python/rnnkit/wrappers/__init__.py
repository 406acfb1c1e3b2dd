"""scikit-learn estimators around rnnkit models, at Keras 3's paths and signatures
(``keras.wrappers.SKLearnClassifier`` etc.). Needs the ``rnnkit[sklearn]`` extra; importing
this package without scikit-learn raises ImportError naming it."""
from .sklearn_wrapper import SKLearnClassifier, SKLearnRegressor, SKLearnTransformer

__all__ = ["SKLearnClassifier", "SKLearnRegressor", "SKLearnTransformer"]
