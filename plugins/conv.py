"""The book's chapter-7 layers, channels-first (N, C, H, W): conv2d, max_pool2d and avg_pool2d.

Convolution is the book's im2col followed by a matrix product per image,
``[W | b] @ columns``: the columns carry a last row of ones, so the bias
comes with the product, and its gradient with the weight gradient's. With one
image's columns as a (C*kh*kw + 1, out_h*out_w) matrix, the product comes out
channels-first, with no transpose.

Pooling is separable: the maximum (or sum) over a kh x kw window is the one
over kh rows, then over kw columns. Each pass is a few whole-array numpy
operations on strided views, with no Python loop over positions.

Each layer computes in its input's float dtype (float32 in fw; float64 when
``check_layer`` takes numerical gradients) and reuses its big arrays from one
batch to the next (see ``_Scratch``). An array a training ``forward`` or
``backward`` returns is valid until that method's next call.
"""

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from framework import Layer, hookimpl
from framework.core.initializer import draw

#: Inference takes the images in chunks of about this many bytes of columns
#: plus output (measured on the SimpleConvNet: 2-16 MB alike, below 1 MB slower).
CHUNK_BYTES = 4 << 20
#: Pooling takes the images in chunks whose rows-pass output is about this
#: size (measured in fw train's loop on the SimpleConvNet: chunks of 11
#: images, 380 KB, beat 2, 5 and the whole batch of 100).
POOL_CHUNK_BYTES = 384 << 10


def _pair(key, value, minimum):
    """``value`` (an integer or a pair of integers, each >= ``minimum``) as a pair."""
    pair = tuple(value) if isinstance(value, Sequence) and not isinstance(value, str) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{key} must be an integer or a pair of integers, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{key} must be {'positive' if minimum else 'zero or more'}, got {value!r}")
    return int(pair[0]), int(pair[1])


# The messages below name no layer: the network puts "model.layers[3] (conv2d): " before them.


def _image_shape(input_shape):
    if len(input_shape) != 3:
        raise ValueError(
            f"it takes images shaped (channels, height, width), got input shape {tuple(input_shape)}; "
            "set dataset.flatten: false and put no flatten or dense layer before it"
        )
    return tuple(int(n) for n in input_shape)


def _fit(what, shape, window, stride, padding=(0, 0)):
    """(out_h, out_w): how many windows fit; a ValueError naming the window and the input when none does."""
    c, h, w = shape
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    if window[0] > hp or window[1] > wp:
        padded = f" ({hp}x{wp} with padding {padding[0]}x{padding[1]})" if any(padding) else ""
        raise ValueError(
            f"its {what} {window[0]}x{window[1]} is larger than its input {c}x{h}x{w}{padded}, so it has no output; "
            f"use a smaller {what}, more padding, or fewer pooling layers before it"
        )
    return (hp - window[0]) // stride[0] + 1, (wp - window[1]) // stride[1] + 1


def _float(x):
    """``x`` as an array of a float dtype (float32 unless it is float64 already)."""
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)


class _Scratch:
    """Arrays a layer reuses from batch to batch instead of allocating them each time.

    A fresh array of megabytes costs more than the arithmetic done on it:
    glibc hands out blocks that size with mmap, so every one is paid for again
    in page faults on first touch (measured: max-pool backward 7 ms with fresh
    arrays, 1.5 ms with these). An array is made again only for a batch larger
    than any before, or of another dtype; smaller batches use its first rows.
    """

    def __init__(self):
        self.arrays = {}

    def __call__(self, key, shape, dtype, fill=None):
        a = self.arrays.get(key)
        if a is None or a.dtype != dtype or a.shape[1:] != tuple(shape[1:]) or len(a) < shape[0]:
            a = self.arrays[key] = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
        return a[: shape[0]]


class Conv2D(Layer):
    """``filters`` kernels of ``kernel_size`` slid over (C, H, W) images: the book's Convolution.

    ``params``: ``W`` of shape (filters, C, kh, kw), as the book and PyTorch
    store it, and ``b`` of shape (filters,). ``init`` is the Initializer fw
    resolves from the config (null: He for a ReLU network; He too from Python).
    """

    name = "conv2d"
    weight_names = ("W",)  # weight decay applies to the kernels, not to b

    def __init__(self, filters, kernel_size, stride=1, padding=0, init=None):
        if not isinstance(filters, (int, np.integer)) or isinstance(filters, bool) or filters < 1:
            raise ValueError(f"filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        self.init = init
        self._scratch = _Scratch()

    def build(self, input_shape, rng):
        c, h, w = self.in_shape = _image_shape(input_shape)
        self.out_hw = _fit("kernel", self.in_shape, self.kernel_size, self.stride, self.padding)
        init = self.init
        if init is None:  # built from Python, not from a config
            from framework.plugins.initializers import He

            init = He()
        # Drawn as a (C*kh*kw, filters) matrix, as for a dense layer of that fan-in.
        self.params["W"] = draw(init, (self.filters, c, *self.kernel_size), rng, out_axis=0)
        self.params["b"] = np.zeros(self.filters, np.float32)
        return (self.filters, *self.out_hw)

    def _weights(self, dtype):
        """[W | b] as one (filters, C*kh*kw + 1) matrix, copied from params (which the optimizer updates)."""
        k = self.params["W"][0].size
        Wb = self._scratch("Wb", (self.filters, k + 1), dtype)
        Wb[:, :k] = self.params["W"].reshape(self.filters, k)
        Wb[:, k] = self.params["b"]
        return Wb

    def _im2col(self, x, key):
        """The columns of images ``x``, (n, C*kh*kw + 1, out_h*out_w), in scratch array ``key``."""
        (c, h, w), (kh, kw), (sh, sw), (ph, pw), (oh, ow) = (
            self.in_shape, self.kernel_size, self.stride, self.padding, self.out_hw
        )  # fmt: skip
        n, k = len(x), c * kh * kw
        cols = self._scratch(key, (n, k + 1, oh * ow), x.dtype, fill=1)  # the last row stays ones
        if ph or pw:
            padded = self._scratch(key + "_padded", (n, c, h + 2 * ph, w + 2 * pw), x.dtype, fill=0)
            padded[:, :, ph : ph + h, pw : pw + w] = x  # the border stays zero
            x = padded
        windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # (n, C, oh, ow, kh, kw)
        # cols[:, :k] viewed as (n, C, kh, kw, oh, ow); copy=False raises rather than write into a copy
        np.copyto(np.reshape(cols[:, :k], (n, c, kh, kw, oh, ow), copy=False), windows.transpose(0, 1, 4, 5, 2, 3))
        return cols

    def _col2im(self, dcols, dx):
        """Add each kernel offset's column gradients onto the input positions they were copied from."""
        (c, h, w), (kh, kw), (sh, sw), (ph, pw), (oh, ow) = (
            self.in_shape, self.kernel_size, self.stride, self.padding, self.out_hw
        )  # fmt: skip
        n = len(dx)
        dcols = dcols.reshape(n, c, kh, kw, oh, ow)
        target = self._scratch("dpadded", (n, c, h + 2 * ph, w + 2 * pw), dx.dtype) if ph or pw else dx
        target[...] = 0
        for i in range(kh):
            for j in range(kw):
                target[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] += dcols[:, :, i, j]
        if ph or pw:
            dx[...] = target[:, :, ph : ph + h, pw : pw + w]

    def forward(self, x, train=False):
        x = _float(x)
        shape = (len(x), self.filters, *self.out_hw)
        if not train:
            return self.forward_into(x, np.empty(shape, x.dtype))
        self.x = x  # backward uses this batch's columns, kept in scratch "cols"
        out = self._scratch("out", shape, x.dtype)
        np.matmul(self._weights(x.dtype), self._im2col(x, "cols"), out=out.reshape(len(x), self.filters, -1))
        return out

    def forward_into(self, x, out):
        """Chunks of images through one set of columns, sized on first use: fw run allocates nothing per chunk."""
        if not out.flags.c_contiguous:  # the product writes whole images: give it memory it can
            np.copyto(out, self.forward(x))
            return out
        Wb = self._weights(out.dtype)
        out3 = out.reshape(len(x), self.filters, -1)
        step = max(1, CHUNK_BYTES // (out.itemsize * out3.shape[2] * (Wb.shape[1] + self.filters)))
        for a in range(0, len(x), step):
            np.matmul(Wb, self._im2col(x[a : a + step], "chunk_cols"), out=out3[a : a + step])
        return out

    def backward(self, dout):
        x, f = self.x, self.filters
        n, dt = len(x), x.dtype
        dout = np.ascontiguousarray(dout, dt).reshape(n, f, -1)
        k, p = self.params["W"][0].size, dout.shape[2]
        cols = self._scratch("cols", (n, k + 1, p), dt)  # forward's, for this batch
        # dL/d[W | b]: the sum over images of dout @ cols.T; the ones row gives the bias's
        per_image = np.matmul(dout, cols.transpose(0, 2, 1), out=self._scratch("dWb", (n, f, k + 1), dt))
        dWb = per_image.sum(axis=0)
        self.grads["W"] = dWb[:, :k].reshape(self.params["W"].shape)
        self.grads["b"] = np.ascontiguousarray(dWb[:, k])
        if not self.input_grad:  # the network's first layer: nothing needs dL/dx
            return None
        W = self._weights(dt)[:, :k]
        dcols = np.matmul(W.T, dout, out=self._scratch("dcols", (n, k, p), dt))
        dx = self._scratch("dx", x.shape, dt)
        self._col2im(dcols, dx)
        return dx


class _Pool(Layer):
    """What max and average pooling share: windows of ``pool_size`` every ``stride`` (default: the window).

    Both go over the rows of each window, then over its columns, a few images
    at a time (``POOL_CHUNK_BYTES``), so the rows pass's output is still in
    the CPU cache when the columns pass reads it (measured inside fw train's
    loop on the SimpleConvNet: 0.3-0.5 ms a step less each way).
    """

    def __init__(self, pool_size, stride=None):
        self.pool_size = _pair("pool_size", pool_size, 1)
        self.stride = self.pool_size if stride is None else _pair("stride", stride, 1)
        self._scratch = _Scratch()

    def build(self, input_shape, rng):
        self.in_shape = _image_shape(input_shape)
        self.out_hw = _fit("pool window", self.in_shape, self.pool_size, self.stride)
        return (self.in_shape[0], *self.out_hw)

    def _shapes(self, n):
        """The shapes of the input, of the rows pass's output and of the output, for ``n`` images."""
        (c, h, w), (oh, ow) = self.in_shape, self.out_hw
        return (n, c, h, w), (n, c, oh, w), (n, c, oh, ow)

    def _chunks(self, n, dtype):
        """``(start, stop)`` of each chunk of images, and a rows-pass buffer for one chunk."""
        (c, _, w), (oh, _) = self.in_shape, self.out_hw
        step = max(1, min(n, POOL_CHUNK_BYTES // (c * oh * w * np.dtype(dtype).itemsize)))
        return [(a, min(a + step, n)) for a in range(0, n, step)], self._scratch("rows", self._shapes(step)[1], dtype)

    def _wins(self, n):
        """Max-pooling's record of which candidate won, per pass (none for average pooling)."""
        return [], []

    def _views(self, x, axis, count):
        """For each offset of the window along ``axis`` (2: rows, 3: columns), a strided view
        of ``x`` holding that offset's candidate for each of the ``count`` output positions."""
        k, s = self.pool_size[axis - 2], self.stride[axis - 2]
        index = [slice(None)] * 4
        views = []
        for d in range(k):
            index[axis] = slice(d, d + s * (count - 1) + 1, s)
            views.append(x[tuple(index)])
        return views

    def _grad_views(self, dx, axis, count):
        """The candidates' views of a pass's input gradient ``dx``, and whether shares may be written, not added.

        Windows that neither overlap nor leave gaps cover each input once, so
        writing every candidate's share fills ``dx``. Otherwise it starts at
        zero (a gap gets nothing), and overlapping shares add up.
        """
        k, s = self.pool_size[axis - 2], self.stride[axis - 2]
        if not (s == k and s * count == dx.shape[axis]):
            dx[...] = 0
        return self._views(dx, axis, count), s >= k

    def forward(self, x, train=False):
        x = _float(x)
        out_shape = self._shapes(len(x))[2]
        if not train:
            return self.forward_into(x, np.empty(out_shape, x.dtype))
        self.n = n = len(x)
        out = self._scratch("out", out_shape, x.dtype)
        wins = self._wins(n)
        chunks, rows = self._chunks(n, x.dtype)
        for a, b in chunks:
            r = self._pass(x[a:b], 2, rows[: b - a], [w[a:b] for w in wins[0]])
            self._pass(r, 3, out[a:b], [w[a:b] for w in wins[1]])
        return out

    def forward_into(self, x, out):
        chunks, rows = self._chunks(len(x), out.dtype)
        for a, b in chunks:
            self._pass(self._pass(x[a:b], 2, rows[: b - a], []), 3, out[a:b], [])
        return out

    def backward(self, dout):
        n = self.n
        dout = _float(dout)
        dx = self._scratch("dx", self._shapes(n)[0], dout.dtype)
        wins = self._wins(n)
        chunks, drows = self._chunks(n, dout.dtype)
        for a, b in chunks:
            dr = self._route(dout[a:b], 3, drows[: b - a], [w[a:b] for w in wins[1]])
            self._route(dr, 2, dx[a:b], [w[a:b] for w in wins[0]])
        return dx


class MaxPool2D(_Pool):
    """The maximum of each window: the book's Pooling.

    Training keeps, for each candidate after the first, where it beat every
    one before it. Backward sends each output's gradient to the last such
    winner, which is the first maximum: exactly one input per window gets it,
    even when the window ties (as all-zero windows after a ReLU do).
    """

    name = "max_pool2d"

    def _wins(self, n):
        _, rows_shape, out_shape = self._shapes(n)
        return tuple(
            [self._scratch(f"wins{axis}.{d}", shape, bool) for d in range(1, self.pool_size[axis - 2])]
            for axis, shape in ((2, rows_shape), (3, out_shape))
        )

    def _pass(self, x, axis, out, wins):
        """The maximum along one axis into ``out``; with ``wins`` (training), where each candidate won."""
        views = self._views(x, axis, out.shape[axis])
        if len(views) == 1:
            np.copyto(out, views[0])
            return out
        if wins:
            np.greater(views[1], views[0], out=wins[0])
        np.maximum(views[0], views[1], out=out)
        for d in range(2, len(views)):
            if wins:
                np.greater(views[d], out, out=wins[d - 1])
            np.maximum(out, views[d], out=out)
        return out

    def _route(self, dout, axis, dx, wins):
        """The gradient of one pass's input: each output's share to the candidate that won."""
        views, write = self._grad_views(dx, axis, dout.shape[axis])
        rest = dout  # what the candidates tried so far did not win
        for d in range(len(views) - 1, 0, -1):
            if not write:
                share = rest * wins[d - 1]
                views[d] += share
            elif d > 1:
                share = np.multiply(rest, wins[d - 1], out=views[d])
            else:  # the last two: the first candidate gets the rest
                np.multiply(rest, wins[0], out=views[1])
                np.subtract(rest, views[1], out=views[0])
                return dx
            rest = rest - share
        if write:
            np.copyto(views[0], rest)
        else:
            views[0] += rest
        return dx


class AvgPool2D(_Pool):
    """The mean of each window."""

    name = "avg_pool2d"

    def _pass(self, x, axis, out, wins):
        views = self._views(x, axis, out.shape[axis])
        np.copyto(out, views[0])
        for v in views[1:]:
            out += v
        if axis == 3:
            out *= out.dtype.type(1 / (self.pool_size[0] * self.pool_size[1]))
        return out

    def _route(self, dout, axis, dx, wins):
        """The gradient of one pass's input: each output's gradient to every candidate of its window."""
        if axis == 3:
            dout = dout * dout.dtype.type(1 / (self.pool_size[0] * self.pool_size[1]))
        views, write = self._grad_views(dx, axis, dout.shape[axis])
        for view in views:
            if write:
                np.copyto(view, dout)
            else:
                view += dout
        return dx


@hookimpl
def register_layers(register):
    for cls in (Conv2D, MaxPool2D, AvgPool2D):
        register(cls)
