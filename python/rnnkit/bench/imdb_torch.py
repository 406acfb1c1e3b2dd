"""The IMDB model as a plain PyTorch training loop, from rnnkit's (Keras-layout) weights.

``nn.Embedding -> nn.LSTM(bidirectional, batch_first) -> nn.LSTM(bidirectional, batch_first)
-> nn.Linear(2*units, 1)``; the second LSTM's output is ``cat(h_n[0], h_n[1])`` (Keras's
``Bidirectional(LSTM(units))``: the forward direction's last state and the backward
direction's state after reading the whole sequence backwards). Loss ``BCEWithLogitsLoss`` on the
logit (what Keras computes for a sigmoid output), ``torch.optim.Adam(lr=1e-3, eps=1e-7)``
(Keras's defaults; PyTorch adds ``eps`` outside the bias correction, Keras inside -- the
difference is below fp32 noise after a few steps).

Weight mapping per LSTM direction (as :func:`rnnkit.interop.torch.to_torch`): ``weight_ih =
kernel.T``, ``weight_hh = recurrent_kernel.T``, ``bias_ih = bias``, ``bias_hh = 0`` (gate order
``i,f,g,o`` is Keras's ``i,f,c,o``); ``Linear.weight = dense_kernel.T``.
"""
from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

from .imdb import ImdbBatch, ImdbFramework, ImdbSize

__all__ = ["TorchImdb"]


class TorchImdb(ImdbFramework):
    """PyTorch: ``zero_grad; loss = BCEWithLogits(model(x), y); backward; Adam.step``.

    ``predict()`` and ``call()`` both run ``sigmoid(model(x))`` under ``torch.no_grad()``.
    """

    name = "torch"

    def __init__(self, size: ImdbSize, batch: ImdbBatch, weights: List[np.ndarray],
                 num_threads: Optional[int] = None) -> None:
        """Build the module and optimizer; ``weights`` in rnnkit's ``get_weights()`` order."""
        from ..interop.torch import require_torch
        torch = self.torch = require_torch()
        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        nn = torch.nn
        self.size = size
        self.embedding = nn.Embedding(size.vocab, size.embed)
        self.lstm1 = nn.LSTM(size.embed, size.units, batch_first=True, bidirectional=True)
        self.lstm2 = nn.LSTM(2 * size.units, size.units, batch_first=True, bidirectional=True)
        self.dense = nn.Linear(2 * size.units, 1)
        self.module = nn.ModuleList([self.embedding, self.lstm1, self.lstm2, self.dense])
        self._load(weights)
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=1e-3, betas=(0.9, 0.999),
                                          eps=1e-7)
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.x = torch.from_numpy(np.ascontiguousarray(batch.x, dtype=np.int64))
        self.y = torch.from_numpy(np.ascontiguousarray(batch.y, dtype=np.float32))

    def _load(self, weights: List[np.ndarray]) -> None:
        torch = self.torch
        if len(weights) != 15:
            raise ValueError(f"expected the IMDB model's 15 weight arrays; got {len(weights)}")

        def put(param: Any, value: np.ndarray) -> None:
            param.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))

        with torch.no_grad():
            put(self.embedding.weight, weights[0])
            for lstm, first in ((self.lstm1, 1), (self.lstm2, 7)):
                for suffix, k in (("", first), ("_reverse", first + 3)):
                    kernel, rec, bias = weights[k:k + 3]
                    put(getattr(lstm, f"weight_ih_l0{suffix}"), kernel.T)
                    put(getattr(lstm, f"weight_hh_l0{suffix}"), rec.T)
                    put(getattr(lstm, f"bias_ih_l0{suffix}"), bias)
                    put(getattr(lstm, f"bias_hh_l0{suffix}"), np.zeros_like(bias))
            put(self.dense.weight, weights[13].T)
            put(self.dense.bias, weights[14])

    def logits(self, x: Any) -> Any:
        """The model's logit ``(batch, 1)`` for int64 ids ``x``."""
        seq, _ = self.lstm1(self.embedding(x))
        _, (h_n, _) = self.lstm2(seq)
        return self.dense(self.torch.cat([h_n[0], h_n[1]], dim=1))

    def train_step(self) -> float:
        """See :meth:`ImdbFramework.train_step`."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.logits(self.x), self.y)
        loss.backward()
        self.optimizer.step()
        return float(loss.item())

    def gradients(self) -> List[np.ndarray]:
        """See :meth:`ImdbFramework.gradients` (``loss.backward()``; Keras layout, LSTM bias
        gradient = ``bias_ih``'s, which equals ``bias_hh``'s)."""
        self.optimizer.zero_grad(set_to_none=True)
        self.loss_fn(self.logits(self.x), self.y).backward()

        def g(param: Any) -> np.ndarray:
            return param.grad.detach().numpy().astype(np.float64)

        out = [g(self.embedding.weight)]
        for lstm in (self.lstm1, self.lstm2):
            for suffix in ("", "_reverse"):
                out += [g(getattr(lstm, f"weight_ih_l0{suffix}")).T,
                        g(getattr(lstm, f"weight_hh_l0{suffix}")).T,
                        g(getattr(lstm, f"bias_ih_l0{suffix}"))]
        out += [g(self.dense.weight).T, g(self.dense.bias)]
        self.optimizer.zero_grad(set_to_none=True)
        return out

    def predict(self) -> np.ndarray:
        """See :meth:`ImdbFramework.predict`."""
        with self.torch.no_grad():
            return self.torch.sigmoid(self.logits(self.x)).numpy()

    call = predict
