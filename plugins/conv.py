"""The book's chapter-7 layers: convolution and pooling, channels-first (N, C, H, W).

Convolution is the book's im2col followed by one matrix product, done a few
images at a time (``CHUNK_BYTES``): a chunk's columns stay in the CPU cache
between the copy and the product, and nothing batch-sized is kept for
backward, which rebuilds each chunk's columns from the input. The columns
carry a row of ones, so the bias rides in the matrix product and its gradient
comes out of the weight gradient's product.

Pooling is separable: the maximum (or sum) over a kh x kw window is the one
over kh rows followed by the one over kw columns. Each pass is a handful of
whole-array numpy operations on strided views, with no Python loop over
positions. Max-pooling keeps, per pass, which candidate won (the first of
equal ones), so backward sends each output's gradient to exactly one input.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from framework import Layer, hookimpl

#: Inference goes through the images in chunks of about this many bytes of
#: columns plus output (measured: 2-16 MB all alike, below 1 MB slower).
CHUNK_BYTES = 4 << 20


def _pair(key, value, minimum):
    """``value`` (an int or a pair of ints, each >= ``minimum``) as a pair."""
    pair = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{key} must be an integer or a pair of integers, got {value!r}")
    if min(pair) < minimum:
        what = "positive" if minimum == 1 else "zero or more"
        raise ValueError(f"{key} must be {what}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _image_shape(layer, input_shape):
    if len(input_shape) != 3:
        raise ValueError(
            f"{layer} takes images shaped (channels, height, width), got input shape {tuple(input_shape)}; "
            "set dataset.flatten: false and put no flatten or dense layer before it"
        )
    return tuple(int(n) for n in input_shape)


def _fit(layer, shape, window, stride, padding=(0, 0)):
    """(out_h, out_w), or a ValueError naming the window and the (padded) input shape."""
    c, h, w = shape
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    if window[0] > hp or window[1] > wp:
        padded = f" ({hp}x{wp} with padding {padding[0]}x{padding[1]})" if any(padding) else ""
        raise ValueError(
            f"{layer} window {window[0]}x{window[1]} is larger than its input {c}x{h}x{w}{padded}; "
            "use a smaller window, more padding, or fewer pooling layers before it"
        )
    return (hp - window[0]) // stride[0] + 1, (wp - window[1]) // stride[1] + 1


def _he(fan_in, fan_out, rng):
    return (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32)


class _Scratch:
    """Arrays a layer reuses from step to step instead of allocating them per batch.

    A fresh multi-megabyte array costs more than the arithmetic done on it:
    glibc hands out blocks this size with mmap, so each one is paid for again
    in page faults on first touch. An array grows only when a batch is larger
    than any before; smaller batches use its first rows.
    """

    def __init__(self):
        self.arrays = {}

    def __call__(self, key, shape, dtype=np.float32, fill=None):
        a = self.arrays.get(key)
        if a is None or a.shape[1:] != tuple(shape[1:]) or len(a) < shape[0]:
            a = self.arrays[key] = np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype)
        return a[: shape[0]]


class Conv2D(Layer):
    """``filters`` kernels of ``kernel_size`` over (C, H, W) images: the book's Convolution.

    ``params``: ``W`` of shape (filters, C, kh, kw), as the book and PyTorch
    store it, and ``b`` of shape (filters,).

    The columns hold a last row of ones, so ``[W | b] @ columns`` adds the
    bias within the matrix product, and ``dout @ columns.T`` gives the bias
    gradient beside the weight gradient. With the columns of one image as a
    (C*kh*kw + 1, out_h*out_w) matrix, the product comes out channels-first
    with no transpose. Training keeps the batch's columns for backward;
    inference goes through them a chunk of images at a time, in one
    workspace sized on first use.
    """

    name = "conv2d"

    def __init__(self, filters, kernel_size, stride=1, padding=0, init=None):
        if not isinstance(filters, (int, np.integer)) or isinstance(filters, bool) or filters < 1:
            raise ValueError(f"filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        self.init = init  # fw replaces a config's name with an Initializer before build
        self._scratch = _Scratch()

    def build(self, input_shape, rng):
        c, h, w = self.in_shape = _image_shape("conv2d", input_shape)
        self.out_hw = _fit("conv2d", self.in_shape, self.kernel_size, self.stride, self.padding)
        kh, kw = self.kernel_size
        init = self.init if self.init is not None else _he
        if not callable(init):
            raise ValueError(f"init must be an initializer, got {init!r}")
        W = np.asarray(init(c * kh * kw, self.filters, rng), np.float32)
        self.params["W"] = np.ascontiguousarray(W.T).reshape(self.filters, c, kh, kw)
        self.params["b"] = np.zeros(self.filters, np.float32)
        return (self.filters, *self.out_hw)

    @property
    def _k(self):
        return self.in_shape[0] * self.kernel_size[0] * self.kernel_size[1]

    def _weights(self):
        """[W | b] as one (filters, C*kh*kw + 1) matrix, refreshed from params (the optimizer updates those)."""
        k = self._k
        Wb = self._scratch("Wb", (self.filters, k + 1))
        Wb[:, :k] = self.params["W"].reshape(self.filters, k)
        Wb[:, k] = self.params["b"]
        return Wb

    def _im2col(self, x, key):
        """The columns of images ``x``, (n, C*kh*kw + 1, out_h*out_w), in scratch array ``key``."""
        (c, h, w), (kh, kw), (sh, sw), (ph, pw), (oh, ow) = (
            self.in_shape, self.kernel_size, self.stride, self.padding, self.out_hw
        )
        n, k = len(x), self._k
        cols = self._scratch(key, (n, k + 1, oh * ow), fill=1)  # the last row stays ones: the bias's
        if ph or pw:
            padded = self._scratch(key + "_padded", (n, c, h + 2 * ph, w + 2 * pw), fill=0)
            padded[:, :, ph : ph + h, pw : pw + w] = x  # the border stays zero
            x = padded
        windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # (n, C, oh, ow, kh, kw)
        # the same memory as cols[:, :k], indexed (n, C, kh, kw, oh, ow); raises rather than copy
        np.copyto(np.reshape(cols[:, :k], (n, c, kh, kw, oh, ow), copy=False), windows.transpose(0, 1, 4, 5, 2, 3))
        return cols

    def _col2im(self, dcols, dx):
        """Add each kernel offset's column gradients back onto the input positions they came from."""
        (c, h, w), (kh, kw), (sh, sw), (ph, pw), (oh, ow) = (
            self.in_shape, self.kernel_size, self.stride, self.padding, self.out_hw
        )
        n = len(dx)
        dcols6 = dcols.reshape(n, c, kh, kw, oh, ow)
        target = self._scratch("dpadded", (n, c, h + 2 * ph, w + 2 * pw)) if ph or pw else dx
        target[...] = 0
        for i in range(kh):
            for j in range(kw):
                target[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw] += dcols6[:, :, i, j]
        if ph or pw:
            dx[...] = target[:, :, ph : ph + h, pw : pw + w]

    def forward(self, x, train=False):
        x = np.asarray(x, np.float32)
        if not train:
            return self.forward_into(x, np.empty((len(x), self.filters, *self.out_hw), np.float32))
        self.x = x
        out = self._scratch("out", (len(x), self.filters, *self.out_hw))
        np.matmul(self._weights(), self._im2col(x, "cols"), out=out.reshape(len(x), self.filters, -1))
        return out

    def forward_into(self, x, out):
        Wb = self._weights()
        out3 = out.reshape(len(x), self.filters, -1)
        per_image = 4 * out3.shape[2] * (Wb.shape[1] + self.filters)
        step = max(1, min(len(x), CHUNK_BYTES // per_image))
        for a in range(0, len(x), step):
            np.matmul(Wb, self._im2col(x[a : a + step], "chunk_cols"), out=out3[a : a + step])
        return out

    def backward(self, dout):
        n, f, k = len(self.x), self.filters, self._k
        dout3 = np.ascontiguousarray(dout, np.float32).reshape(n, f, -1)
        cols = self._scratch("cols", (n, k + 1, dout3.shape[2]))  # forward's, still there
        per_image = np.matmul(dout3, cols.transpose(0, 2, 1), out=self._scratch("dWb", (n, f, k + 1)))
        dWb = per_image.sum(axis=0)
        self.grads["W"] = dWb[:, :k].reshape(self.params["W"].shape)
        self.grads["b"] = np.ascontiguousarray(dWb[:, k])
        if not self.input_grad:
            return None
        dcols = np.matmul(self._weights()[:, :k].T, dout3, out=self._scratch("dcols", (n, k, dout3.shape[2])))
        dx = self._scratch("dx", self.x.shape)
        self._col2im(dcols, dx)
        return dx


class _Pool(Layer):
    """Shared by max and average pooling: windows of ``pool_size`` every ``stride`` (default: the window).

    Both work separably, over the rows of each window and then over its
    columns, and keep their training-time arrays in ``_Scratch``.
    """

    def __init__(self, pool_size, stride=None):
        self.pool_size = _pair("pool_size", pool_size, 1)
        self.stride = self.pool_size if stride is None else _pair("stride", stride, 1)
        self._scratch = _Scratch()

    def build(self, input_shape, rng):
        self.in_shape = _image_shape(self.name, input_shape)
        self.out_hw = _fit(self.name, self.in_shape, self.pool_size, self.stride)
        return (self.in_shape[0], *self.out_hw)

    def _shapes(self, n):
        """The shapes of the input, of the row pass's output, and of the output, for ``n`` images."""
        (c, h, w), (oh, ow) = self.in_shape, self.out_hw
        return (n, c, h, w), (n, c, oh, w), (n, c, oh, ow)

    def _views(self, x, axis, count):
        """Per offset in the window along ``axis`` (2: rows, 3: columns), a strided view of ``x``
        holding that offset's candidate for each of the ``count`` output positions."""
        k, s = self.pool_size[axis - 2], self.stride[axis - 2]
        index = [slice(None)] * 4
        views = []
        for d in range(k):
            index[axis] = slice(d, d + s * (count - 1) + 1, s)
            views.append(x[tuple(index)])
        return views

    def _target(self, key, shape, axis, count):
        """A scratch gradient array for a pass's input, and whether each candidate's share may be
        written (not added): when windows do not overlap.

        Windows that neither overlap nor leave gaps cover every input once,
        so the shares fill the array; otherwise it starts at zero (a gap gets
        nothing) and overlapping shares add up.
        """
        k, s = self.pool_size[axis - 2], self.stride[axis - 2]
        dx = self._scratch(key, shape)
        if not (s == k and s * count == shape[axis]):
            dx[...] = 0
        return dx, s >= k

    def forward(self, x, train=False):
        x = np.asarray(x, np.float32)
        if not train:
            return self.forward_into(x, np.empty(self._shapes(len(x))[2], np.float32))
        _, rows_shape, out_shape = self._shapes(len(x))
        self.n = len(x)
        rows = self._pass(x, 2, self._scratch("rows", rows_shape), True)
        return self._pass(rows, 3, self._scratch("out", out_shape), True)

    def forward_into(self, x, out):
        rows = self._pass(x, 2, self._scratch("chunk_rows", self._shapes(len(x))[1]), False)
        return self._pass(rows, 3, out, False)


class MaxPool2D(_Pool):
    """The maximum of each window: the book's Pooling.

    Training keeps, per pass and per candidate after the first, where it beat
    all before it; backward sends each output's gradient to the last such
    winner, so exactly one input of a window (the first maximum) gets it.
    """

    name = "max_pool2d"

    def _pass(self, x, axis, out, train):
        views = self._views(x, axis, out.shape[axis])
        wins = [self._scratch(f"wins{axis}_{d}", out.shape, bool) for d in range(1, len(views))] if train else None
        if train and wins:
            np.greater(views[1], views[0], out=wins[0])
        if len(views) == 1:
            out[...] = views[0]
        else:
            np.maximum(views[0], views[1], out=out)
        for d in range(2, len(views)):
            if train:
                np.greater(views[d], out, out=wins[d - 1])
            np.maximum(out, views[d], out=out)
        return out

    def _route(self, dout, axis, key, shape):
        dx, write = self._target(key, shape, axis, dout.shape[axis])
        views = self._views(dx, axis, dout.shape[axis])
        rest = dout
        for d in range(len(views) - 1, 0, -1):
            win = self._scratch(f"wins{axis}_{d}", dout.shape, bool)  # forward's
            if write:
                share = np.multiply(rest, win, out=views[d])
                if d == 1:
                    np.subtract(rest, share, out=views[0])
                    return dx
            else:
                share = rest * win
                views[d] += share
            rest = rest - share
        if write:
            views[0][...] = rest
        else:
            views[0] += rest
        return dx

    def backward(self, dout):
        x_shape, rows_shape, _ = self._shapes(self.n)
        drows = self._route(np.asarray(dout, np.float32), 3, "drows", rows_shape)
        return self._route(drows, 2, "dx", x_shape)


class AvgPool2D(_Pool):
    """The mean of each window."""

    name = "avg_pool2d"

    def _pass(self, x, axis, out, train):
        views = self._views(x, axis, out.shape[axis])
        out[...] = views[0]
        for v in views[1:]:
            out += v
        if axis == 3:
            out *= np.float32(1 / (self.pool_size[0] * self.pool_size[1]))
        return out

    def _spread(self, dout, axis, key, shape):
        dx, write = self._target(key, shape, axis, dout.shape[axis])
        for view in self._views(dx, axis, dout.shape[axis]):
            if write:
                view[...] = dout
            else:
                view += dout
        return dx

    def backward(self, dout):
        x_shape, rows_shape, _ = self._shapes(self.n)
        d = np.multiply(dout, np.float32(1 / (self.pool_size[0] * self.pool_size[1])), dtype=np.float32)
        return self._spread(self._spread(d, 3, "drows", rows_shape), 2, "dx", x_shape)


@hookimpl
def register_layers(register):
    for cls in (Conv2D, MaxPool2D, AvgPool2D):
        register(cls)
