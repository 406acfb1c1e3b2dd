"""rnnkit.wrappers: Keras 3's scikit-learn estimators around rnnkit models -- scikit-learn's
own estimator checks, Pipeline, GridSearchCV (processes) and cross_val_score, nested
``model__*`` parameters, label encoding, 3-D sequence input, pickling."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import rnnkit as rk  # noqa: E402
from rnnkit.layers import LSTM, Dense, Input, Reshape  # noqa: E402
from rnnkit.wrappers import SKLearnClassifier, SKLearnRegressor, SKLearnTransformer  # noqa: E402


def build_lstm(X, y, units=4, loss="categorical_crossentropy", activation="softmax",
               optimizer="adam"):
    """A tiny LSTM for 2-D X (each feature a time step) or 3-D X (samples, steps, features).
    Seeded, so that refits reproduce (scikit-learn's checks compare two fits)."""
    rk.utils.set_random_seed(0)
    shape = X.shape[1:] if X.ndim == 3 else (X.shape[1], 1)
    layers = [Input(X.shape[1:])] + ([] if X.ndim == 3 else [Reshape(shape)])
    n_out = y.shape[1] if y.ndim > 1 else 1
    model = rk.Sequential(layers + [LSTM(units), Dense(n_out, activation=activation)])
    model.compile(loss=loss, optimizer=optimizer)
    return model


FAST = {"epochs": 3, "batch_size": 64}

# Why each check is expected to fail (mostly Keras's own list for its wrappers).
EXPECTED_FAILED_CHECKS = {
    "SKLearnClassifier": {
        "check_classifiers_classes": "a 3-epoch model may not predict every class (Keras)",
        # Keras also xfails check_classifier_data_not_an_array, check_supervised_y_2d,
        # check_fit_idempotent (random initial weights) and
        # check_classifiers_one_label_sample_weights: they pass here (the build function seeds).
        "check_classifiers_train": ("decision_function returns the model's probabilities "
                                    "(Keras); the check wants decision > 0 to mean class 1"),
    },
    "SKLearnRegressor": {},
    "SKLearnTransformer": {},
}


def _estimators():
    return [
        SKLearnClassifier(model=build_lstm, fit_kwargs=FAST),
        SKLearnRegressor(model=build_lstm, model_kwargs={"loss": "mse", "activation": None},
                         fit_kwargs=FAST),
        SKLearnTransformer(model=build_lstm, model_kwargs={"loss": "mse", "activation": None},
                           fit_kwargs=FAST),
    ]


@parametrize_with_checks(_estimators(), expected_failed_checks=lambda est:
                         EXPECTED_FAILED_CHECKS[type(est).__name__])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _sequences(n=48, steps=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, steps, 2)).astype(np.float32)
    y = np.where(X[:, :, 0].sum(axis=1) > 0, "up", "down")
    return X, y


def test_classifier_string_labels_3d_input_and_nested_params():
    X, y = _sequences()
    clf = SKLearnClassifier(build_lstm, model_kwargs={"units": 3}, fit_kwargs={"epochs": 2})
    clf.set_params(model__units=5)
    assert clf.get_params()["model__units"] == 5 and clf.model_kwargs == {"units": 5}
    clf.fit(X, y)
    assert clf.model_.layers[0].units == 5           # the nested parameter reached the build
    assert list(clf.classes_) == ["down", "up"]
    assert set(clf.predict(X)) <= {"down", "up"}
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert 0.0 <= clf.score(X, y) <= 1.0
    assert clf.n_features_in_ == X.shape[1]


def test_integer_labels_and_fit_kwargs_untouched():
    X, _ = _sequences()
    y = np.arange(len(X)) % 3 + 7
    fit_kwargs = {"epochs": 1}
    clf = SKLearnClassifier(build_lstm, fit_kwargs=fit_kwargs).fit(X, y, batch_size=16)
    assert fit_kwargs == {"epochs": 1} and list(clf.classes_) == [7, 8, 9]
    assert set(clf.predict(X)) <= {7, 8, 9}


def test_compiled_model_is_cloned_unless_warm_start():
    X, y = _sequences()
    model = build_lstm(X, np.zeros((1, 2)))
    before = [w.copy() for w in model.get_weights()]
    clf = SKLearnClassifier(model, fit_kwargs={"epochs": 1}).fit(X, y)
    assert clf.model_ is not model
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    warm = SKLearnClassifier(model, warm_start=True, fit_kwargs={"epochs": 1}).fit(X, y)
    assert warm.model_ is model
    warm.fit(X, y)
    assert warm.model_ is model


def test_regressor_and_transformer_on_sequences():
    X, _ = _sequences()
    y = X[:, :, 0].sum(axis=1)
    kw = {"loss": "mse", "activation": None}
    reg = SKLearnRegressor(build_lstm, model_kwargs=kw, fit_kwargs={"epochs": 2}).fit(X, y)
    assert reg.predict(X).shape == (len(X),) and reg.predict(X).dtype == np.float64
    assert np.isfinite(reg.score(X, y))
    emb = SKLearnTransformer(build_lstm, model_kwargs={**kw, "units": 3}, fit_kwargs={"epochs": 1})
    assert emb.fit(X, y).transform(X).shape == (len(X), 1)


def test_clear_errors():
    X, y = _sequences()
    with pytest.raises(TypeError, match="model_kwargs must be a dict"):
        SKLearnClassifier(build_lstm, model_kwargs=3).fit(X, y)
    with pytest.raises(TypeError, match="model must be an rnnkit Model"):
        SKLearnClassifier(lambda X, y: "nope").fit(X, y)
    with pytest.raises(ValueError, match="only binary and multiclass"):
        SKLearnClassifier(build_lstm).fit(X, np.linspace(0, 1, len(X)))

    def uncompiled(X, y):
        return rk.Sequential([Input(X.shape[1:]), LSTM(2), Dense(y.shape[1])])
    with pytest.raises(RuntimeError, match="must be compiled"):
        SKLearnClassifier(uncompiled).fit(X, y)


def test_pickle_and_clone_keep_fit_kwargs():
    X, y = _sequences()
    clf = SKLearnClassifier(build_lstm, fit_kwargs={"epochs": 1}).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert clone(clf).get_params()["fit_kwargs"] == {"epochs": 1}


def test_pipeline_cross_val_score_and_grid_search_in_processes():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 6)).astype(np.float32)
    y = (X[:, :3].sum(axis=1) > 0).astype(int)
    pipe = make_pipeline(StandardScaler(),
                         SKLearnClassifier(build_lstm, fit_kwargs={"epochs": 2}))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))
    grid = GridSearchCV(pipe, {"sklearnclassifier__model__units": [2, 4]}, cv=2, n_jobs=2)
    grid.fit(X, y)
    assert grid.best_params_["sklearnclassifier__model__units"] in (2, 4)
    assert grid.predict(X).shape == (60,)
