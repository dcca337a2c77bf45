"""Torch modules that a network spec needs and torch lacks.

Every class here uses only the names ``torch`` and ``math`` in its body, so that
``explorer.core.spec.network.export_source`` can copy its source verbatim into a standalone
``.py`` file that imports nothing but torch and math. Keep it that way.
"""


import torch


class LocalContrastNorm(torch.nn.Module):
    """Local contrast normalisation (lecture, Fergus & Ranzato), per channel:

        h'(x, y) = (h(x, y) - m(N(x, y))) / max(eps, sigma(N(x, y)))

    where m and sigma are the mean and standard deviation over the ``size`` x ``size``
    neighbourhood N(x, y). At the borders only the in-bounds pixels count (the sums are
    divided by the number of in-bounds pixels). ``size`` must be odd; the shape is kept.
    No trainable parameters.
    """

    def __init__(self, size=5, eps=1e-2):
        super().__init__()
        size = int(size)
        if size < 1 or size % 2 == 0:
            raise ValueError(f"LocalContrastNorm size must be a positive odd number, got {size:d}")
        self.size = size
        self.eps = float(eps)

    def forward(self, x):
        pad = self.size // 2
        mean = torch.nn.functional.avg_pool2d(x, self.size, stride=1, padding=pad, count_include_pad=False)
        mean_sq = torch.nn.functional.avg_pool2d(x * x, self.size, stride=1, padding=pad, count_include_pad=False)
        var = torch.clamp(mean_sq - mean * mean, min=0.0)
        # max(eps, sigma) written as sqrt(max(eps^2, var)): the same value, but no infinite gradient of
        # sqrt at var = 0 (a flat patch, common after a ReLU), which would turn the backward pass into NaN
        return (x - mean) / torch.sqrt(torch.clamp(var, min=self.eps * self.eps))

    def extra_repr(self):
        return f"size={self.size:d}, eps={self.eps:g}"


class RBMLayer(torch.nn.Module):
    """An RBM used as a feed-forward layer: x -> p(h = 1 | x) = sigmoid(x W + d).

    Parameters are named like explorer.core.families.rbm.model.RBM: ``W`` (n_in x n_hidden), visible bias
    ``b`` (n_in; used only by the reconstruction p(x | h)) and hidden bias ``d`` (n_hidden).
    """

    def __init__(self, n_in, n_hidden, init_std=0.01):
        super().__init__()
        self.n_in = int(n_in)
        self.n_hidden = int(n_hidden)
        self.W = torch.nn.Parameter(torch.randn(self.n_in, self.n_hidden) * init_std)
        self.b = torch.nn.Parameter(torch.zeros(self.n_in))
        self.d = torch.nn.Parameter(torch.zeros(self.n_hidden))

    def forward(self, x):
        return torch.sigmoid(x @ self.W + self.d)

    def reconstruct(self, h):
        """p(x = 1 | h) = sigmoid(h W' + b)."""
        return torch.sigmoid(h @ self.W.t() + self.b)

    def extra_repr(self):
        return f"n_in={self.n_in:d}, n_hidden={self.n_hidden:d}"


class Reshape(torch.nn.Module):
    """Reshape each example to ``shape`` (the batch dimension is kept)."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x):
        return x.reshape((x.shape[0],) + self.shape)


class SequenceLast(torch.nn.Module):
    """Keep only the last time step of a (N, T, F) sequence: (N, T, F) -> (N, F)."""

    def forward(self, x):
        return x[:, -1]


class Concat(torch.nn.Module):
    """Concatenate the current tensor with the output of an earlier layer along dim 1
    (channels of an image, features of a vector): the FCN skip connection.

    ``source`` is the 1-based index of the earlier layer (0 = the network input); the
    network (:class:`LayerStack`) passes that tensor as ``skip``.
    """

    def __init__(self, source):
        super().__init__()
        self.source = int(source)

    def forward(self, x, skip):
        return torch.cat([x, skip], dim=1)

    def extra_repr(self):
        return f"source={self.source:d}"


class RNNLayer(torch.nn.RNN):
    """A one-layer batch-first Elman RNN that returns the outputs of all steps: (N, T, F) -> (N, T, hidden)."""

    def forward(self, x):
        return super().forward(x)[0]


class LSTMLayer(torch.nn.LSTM):
    """A one-layer batch-first LSTM that returns the outputs s_t of all steps: (N, T, F) -> (N, T, hidden)."""

    def forward(self, x):
        return super().forward(x)[0]


class LayerStack(torch.nn.Module):
    """Runs ``layers`` in order; a :class:`Concat` layer also gets the output of its source layer.

    Parameter names are ``layers.<i>.<name>`` (0-based i), identical in a built and an exported network.
    """

    def __init__(self, layers):
        super().__init__()
        self.layers = torch.nn.ModuleList(layers)
        self.keep = sorted(set(m.source for m in self.layers if isinstance(m, Concat)))

    def forward(self, x):
        saved = {}
        if 0 in self.keep:
            saved[0] = x
        for i, layer in enumerate(self.layers, start=1):
            if isinstance(layer, Concat):
                x = layer(x, saved[layer.source])
            else:
                x = layer(x)
            if i in self.keep:
                saved[i] = x
        return x
