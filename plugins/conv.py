"""The book's chapter-7 layers, channels-first (N, C, H, W): conv2d, max_pool2d and avg_pool2d.

Convolution is im2col and a matrix product, ``[W | b] @ columns``, for a
chunk of images at a time, in a layout that makes im2col cheap. A chunk's
images are copied into a *canvas*: per channel, one flat row in which each
image sits inside its zero border, image after image, rows ``Wq`` apart. Then
the window of the output at flat position ``q`` reads ``q + i*Wq + j`` for
each kernel offset (i, j), so each row of the columns (an offset and a
channel) is one contiguous slice of the canvas, and im2col is one copy for
the whole chunk. The products compute every position of the canvas, some of
them off the image (its border), and the layer keeps the rest: 7% more work
for 28x28 maps with padding 1, 27% for 8x8 maps. With stride s it keeps every
s-th position (s*s the work). Backward is products of the same kind:
``dL/d[W | b]`` from the gradient and the columns, and ``dL/dx`` as the
convolution of the gradient (zero off the outputs) with the flipped kernel,
again over slices. The products for the outputs and for dL/dx go one image
at a time (``_per_image``); the weight gradient's, summed over the batch
anyway, one chunk at a time where that is faster (``PER_CHUNK_ROWS``).

Pooling is separable: the maximum (or sum) over a kh x kw window is the one
over kh rows, then over kw columns, a few images at a time, each pass a few
whole-array numpy operations on strided views.

Both work through the batch a chunk of images at a time on a few threads
(``framework.core.threads``): numpy's OpenBLAS runs on one thread meanwhile, and each
thread multiplies its own chunk, so a core that another program slows only
takes fewer chunks. Each layer computes in its input's float dtype (float32
in fw; float64 when ``check_layer`` takes numerical gradients), reuses its
big arrays from one batch to the next (``framework.core.scratch``), and
gives the same numbers however many threads run. An array a training
``forward`` or ``backward`` returns is valid until that method's next call.
"""

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from framework import Layer, hookimpl
from framework.core import threads
from framework.core.initializer import Initializer, draw
from framework.core.memory import check as check_memory
from framework.core.scratch import Scratch

#: Convolution takes chunks of images whose canvas, columns and product take about
#: this many bytes, so they stay in a core's cache (2 MB here; 0.5 and 4 MB measured slower).
CHUNK_BYTES = 2 << 20
#: The weight gradient is one product per chunk of images when the columns have at least
#: this many rows (kh*kw*C + 1), else one per image (measured in fw train's loop: per chunk
#: 8% faster a step for the DeepConvNet's 145 to 577 rows, 4% slower for the SimpleConvNet's 26).
PER_CHUNK_ROWS = 64
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


def _per_image(flat, n):
    """(n, rows, positions) view of (rows, n * positions): one matrix product per image.

    Each image gets a product of the same shape wherever it lies in a chunk,
    so its numbers never depend on the batch or the chunk it came in, under
    any BLAS kernel (one product over a whole chunk gives columns that differ
    in the last bit with their place in it, with OpenBLAS's Haswell kernel).
    """
    return flat.reshape(len(flat), n, -1).transpose(1, 0, 2)


class Conv2D(Layer):
    """``filters`` kernels of ``kernel_size`` slid over (C, H, W) images: the book's Convolution.

    ``params``: ``W`` of shape (filters, C, kh, kw), as the book and PyTorch
    store it, and ``b`` of shape (filters,). ``init`` is the Initializer fw
    resolves from the config (null: He for a ReLU network; He too from Python).
    """

    name = "conv2d"
    thread_safe = True  # its scratch arrays are one per worker thread: classify may share chunks between threads
    weight_names = ("W",)  # weight decay applies to the kernels, not to b

    def __init__(self, filters, kernel_size, stride=1, padding=0, init: Initializer | None = None):
        if not isinstance(filters, (int, np.integer)) or isinstance(filters, bool) or filters < 1:
            raise ValueError(f"filters must be a positive integer, got {filters!r}")
        self.filters = int(filters)
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        self.init = init
        self._scratch = Scratch()

    def build(self, input_shape, rng):
        c, h, w = self.in_shape = _image_shape(input_shape)
        self.out_hw = _fit("kernel", self.in_shape, self.kernel_size, self.stride, self.padding)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        # The canvas's rows and columns per image: the image and one border (shared with the
        # next image), or more when the padding is wider than the kernel reaches.
        self.grid = h + ph + max(0, ph - kh + 1), w + pw + max(0, pw - kw + 1)
        per_image = self.grid[0] * self.grid[1] * 4 * (c * kh * kw + 1 + self.filters + c)
        check_memory(per_image, "its canvas and im2col columns for one example")  # a chunk holds one at least
        self.step = max(1, CHUNK_BYTES // per_image)  # images per chunk
        init = self.init
        if init is None:  # built from Python, not from a config
            from framework.plugins.initializers import He

            init = He()
        # Drawn as a (C*kh*kw, filters) matrix, as for a dense layer of that fan-in.
        self.params["W"] = draw(init, (self.filters, c, *self.kernel_size), rng, out_axis=0)
        self.params["b"] = np.zeros(self.filters, np.float32)
        return (self.filters, *self.out_hw)

    # -- the canvas ---------------------------------------------------------------------------

    def _chunks(self, n):
        return [(a, min(a + self.step, n)) for a in range(0, n, self.step)]

    def _positions(self, flat, n, rows, cols):
        """(n, channels, ...) view of ``flat``'s first ``n`` images, (channels, positions) as on the canvas."""
        gh, gw = self.grid
        return flat[:, : n * gh * gw].reshape(len(flat), n, gh, gw)[:, :, rows, cols].transpose(1, 0, 2, 3)

    def _interior(self, flat, n):
        """Where the images themselves lie on a canvas."""
        (_, h, w), (ph, pw) = self.in_shape, self.padding
        return self._positions(flat, n, slice(ph, ph + h), slice(pw, pw + w))

    def _outputs(self, flat, n):
        """The positions of a product over the canvas that are the layer's outputs."""
        (oh, ow), (sh, sw) = self.out_hw, self.stride
        return self._positions(flat, n, slice(0, sh * (oh - 1) + 1, sh), slice(0, sw * (ow - 1) + 1, sw))

    def _canvas(self, worker, x, dtype):
        """A canvas holding images ``x``: zero borders, written once, then only the images."""
        (c, _, _), (kh, kw), (gh, gw) = self.in_shape, self.kernel_size, self.grid
        canvas = self._scratch(f"canvas{worker}", (c, self.step * gh * gw + (kh - 1) * gw + kw - 1), dtype, fill=0)
        np.copyto(self._interior(canvas, len(x)), x)
        return canvas

    def _im2col(self, worker, key, flat, n, ones):
        """Rows (i, j, channel) of ``flat`` shifted by ``i*Wq + j``, for the positions of ``n`` images.

        With ``ones``, a last row of ones: multiplied by the bias, or giving its gradient.
        """
        (kh, kw), (gh, gw) = self.kernel_size, self.grid
        q, rows = n * gh * gw, kh * kw * len(flat)
        cols = self._scratch(f"{key}{worker}", (rows + ones, self.step * gh * gw), flat.dtype, fill=1)[:, :q]
        size = flat.itemsize
        windows = as_strided(flat, (kh, kw, len(flat), q), (gw * size, size, flat.strides[0], size), writeable=False)
        np.copyto(cols[:rows].reshape(kh, kw, len(flat), q), windows)
        return cols

    # -- the passes ---------------------------------------------------------------------------

    def _weights(self, dtype):
        """[W | b] as one (filters, kh*kw*C + 1) matrix, columns in the order (i, j, channel)."""
        W = self.params["W"]
        Wb = np.empty((self.filters, W[0].size + 1), dtype)  # small; its own per call, as calls may overlap
        np.copyto(Wb[:, :-1].reshape(self.filters, *self.kernel_size, -1), W.transpose(0, 2, 3, 1))
        Wb[:, -1] = self.params["b"]
        return Wb

    def forward(self, x, train=False):
        x = _float(x)
        shape = (len(x), self.filters, *self.out_hw)
        if not train:
            return self.forward_into(x, np.empty(shape, x.dtype))
        self.x = x  # backward builds this batch's columns again
        return self.forward_into(x, self._scratch("out", shape, x.dtype))

    def forward_into(self, x, out):
        """The product for each chunk of images, written into its part of ``out``."""
        Wb, (gh, gw) = self._weights(out.dtype), self.grid
        chunks = self._chunks(len(x))

        def task(worker, i):
            a, b = chunks[i]
            n = b - a
            cols = self._im2col(worker, "cols", self._canvas(worker, x[a:b], out.dtype), n, ones=True)
            y = self._scratch(f"y{worker}", (self.filters, self.step * gh * gw), out.dtype)[:, : n * gh * gw]
            np.matmul(Wb, _per_image(cols, n), out=_per_image(y, n))
            np.copyto(out[a:b], self._outputs(y, n))

        threads.run(task, len(chunks))
        return out

    def backward(self, dout):
        x, f, (kh, kw), (gh, gw) = self.x, self.filters, self.kernel_size, self.grid
        n, dt = len(x), x.dtype
        chunks = self._chunks(n)
        k = self.params["W"][0].size
        # dL/d[W | b] in parts added up in order below: one product per chunk, or per image where
        # the columns are few (one input channel), for then a chunk's product is long and thin.
        per_image = k + 1 < PER_CHUNK_ROWS
        parts = self._scratch("dWb", (n if per_image else len(chunks), k + 1, f), dt)
        if self.input_grad:
            # dL/dx = the gradient (zero off the outputs) convolved with the flipped kernel: a matrix
            # (C, (i, j, filter)), for the gradient's canvas read from `lead` positions before.
            flipped = self.params["W"][:, :, ::-1, ::-1].transpose(1, 2, 3, 0).reshape(self.in_shape[0], -1).astype(dt)
            dx = self._scratch("dx", x.shape, dt)
        lead = (kh - 1) * gw + kw - 1

        def task(worker, i):
            a, b = chunks[i]
            m = b - a
            q = m * gh * gw
            cols = self._im2col(worker, "cols", self._canvas(worker, x[a:b], dt), m, ones=True)
            grad = self._scratch(f"grad{worker}", (f, lead + self.step * gh * gw), dt, fill=0)
            np.copyto(self._outputs(grad[:, lead:], m), dout[a:b])  # elsewhere it stays zero
            # (columns @ gradient.T is twice as fast as gradient @ columns.T for 16 filters)
            if per_image:
                np.matmul(
                    _per_image(cols, m), _per_image(grad[:, lead : lead + q], m).transpose(0, 2, 1), out=parts[a:b]
                )
            else:
                np.matmul(cols, grad[:, lead : lead + q].T, out=parts[i])
            if self.input_grad:
                dcols = self._im2col(worker, "dcols", grad, m, ones=False)
                dflat = self._scratch(f"dflat{worker}", (len(flipped), self.step * gh * gw), dt)[:, :q]
                np.matmul(flipped, _per_image(dcols, m), out=_per_image(dflat, m))
                np.copyto(dx[a:b], self._interior(dflat, m))

        threads.run(task, len(chunks))
        dWb = parts.sum(axis=0).T
        self.grads["W"] = np.ascontiguousarray(dWb[:, :k].reshape(f, kh, kw, -1).transpose(0, 3, 1, 2))
        self.grads["b"] = np.ascontiguousarray(dWb[:, k])
        return dx if self.input_grad else None

    onnx_ops = ("Conv",)

    @classmethod
    def from_onnx(cls, node):
        """A Conv with one group, no dilation and the same padding on opposite sides."""
        from framework.interchange.onnx_steps import batch_shape, compact, pair, windows

        a = node.allow(group=(1,), auto_pad=("NOTSET", "VALID"))
        W, b, shape = node.weight(1), node.weight(2, required=False), node.input_shape
        if W.ndim != 4 or len(shape) != 3 or W.shape[1] != shape[0]:
            raise node.fail(f"its weights have shape {W.shape}, which does not fit its input {batch_shape(shape)}")
        filters, kernel = W.shape[0], (W.shape[2], W.shape[3])
        if tuple(a.get("kernel_shape", kernel)) != kernel:
            raise node.fail(f"kernel_shape {a['kernel_shape']} differs from its weights' {kernel}")
        pads = a.get("pads", [0, 0, 0, 0])
        if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
            raise node.fail(f"pads={pads}: fw's conv2d pads each side alike (top = bottom, left = right)")
        strides = pair(node, "strides", a.get("strides", [1, 1]), 1)
        padding = pair(node, "pads", pads[:2], 0)
        windows(node, kernel, strides, padding)
        if b is not None and b.shape != (filters,):
            raise node.fail(f"its bias has shape {b.shape}, not ({filters},)")
        entry = {"name": cls.name, "filters": int(filters), "kernel_size": compact(kernel)}
        entry |= {"stride": compact(strides)} if strides != (1, 1) else {}
        entry |= {"padding": compact(padding)} if padding != (0, 0) else {}
        return entry, {"W": W, "b": np.zeros(filters, np.float32) if b is None else b}

    def to_onnx(self, graph, x):
        """Conv with the same kernels, strides and zero padding on every side."""
        (ph, pw), W, b = self.padding, self.params["W"], self.params["b"]
        return graph.op(
            "Conv",
            x,
            graph.weight("W", W),
            graph.weight("b", b),
            kernel_shape=list(self.kernel_size),
            strides=list(self.stride),
            pads=[ph, pw, ph, pw],
        )


class _Pool(Layer):
    """What max and average pooling share: windows of ``pool_size`` every ``stride`` (default: the window).

    Both go over the rows of each window, then over its columns, a few images
    at a time (``POOL_CHUNK_BYTES``), so the rows pass's output is still in
    the CPU cache when the columns pass reads it (measured inside fw train's
    loop on the SimpleConvNet: 0.3-0.5 ms a step less each way).
    """

    thread_safe = True  # its scratch arrays are one per worker thread: classify may share chunks between threads

    def __init__(self, pool_size, stride=None):
        self.pool_size = _pair("pool_size", pool_size, 1)
        self.stride = self.pool_size if stride is None else _pair("stride", stride, 1)
        self._scratch = Scratch()

    def build(self, input_shape, rng):
        self.in_shape = _image_shape(input_shape)
        self.out_hw = _fit("pool window", self.in_shape, self.pool_size, self.stride)
        return (self.in_shape[0], *self.out_hw)

    def _shapes(self, n):
        """The shapes of the input, of the rows pass's output and of the output, for ``n`` images."""
        (c, h, w), (oh, ow) = self.in_shape, self.out_hw
        return (n, c, h, w), (n, c, oh, w), (n, c, oh, ow)

    def _chunks(self, n, dtype):
        """``(start, stop)`` of each chunk of images, and a function giving a worker its rows-pass buffer."""
        (c, _, w), (oh, _) = self.in_shape, self.out_hw
        step = max(1, min(n, POOL_CHUNK_BYTES // (c * oh * w * np.dtype(dtype).itemsize)))
        chunks = [(a, min(a + step, n)) for a in range(0, n, step)]
        return chunks, lambda worker, a, b: self._scratch(f"rows{worker}", self._shapes(step)[1], dtype)[: b - a]

    @classmethod
    def from_onnx(cls, node):
        """MaxPool or AveragePool without padding, ceil_mode or dilations."""
        from framework.interchange.onnx_steps import compact, pair, windows

        a = node.allow(ceil_mode=(0,), auto_pad=("NOTSET", "VALID"), storage_order=(0,))
        if "kernel_shape" not in a:
            raise node.fail("has no kernel_shape")
        kernel = pair(node, "kernel_shape", a["kernel_shape"], 1)
        if any(a.get("pads", [])):
            raise node.fail(f"pads={a['pads']}; fw's pooling layers do not pad")
        strides = pair(node, "strides", a.get("strides", [1, 1]), 1)  # ONNX's default stride is 1, fw's the window
        windows(node, kernel, strides, (0, 0))
        stride = {"stride": compact(strides)} if strides != kernel else {}  # fw's default stride is the window
        return {"name": cls.name, "pool_size": compact(kernel)} | stride, {}

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
        self.n = len(x)
        return self._forward(x, self._scratch("out", out_shape, x.dtype), self._wins(len(x)))

    def forward_into(self, x, out):
        return self._forward(x, out, ([], []))

    def _forward(self, x, out, wins):
        chunks, rows = self._chunks(len(x), out.dtype)

        def task(worker, i):
            a, b = chunks[i]
            r = self._pass(x[a:b], 2, rows(worker, a, b), [w[a:b] for w in wins[0]])
            self._pass(r, 3, out[a:b], [w[a:b] for w in wins[1]])

        threads.run(task, len(chunks))
        return out

    def backward(self, dout):
        n = self.n
        dout = _float(dout)
        dx = self._scratch("dx", self._shapes(n)[0], dout.dtype)
        wins = self._wins(n)
        chunks, drows = self._chunks(n, dout.dtype)

        def task(worker, i):
            a, b = chunks[i]
            dr = self._route(dout[a:b], 3, drows(worker, a, b), [w[a:b] for w in wins[1]])
            self._route(dr, 2, dx[a:b], [w[a:b] for w in wins[0]])

        threads.run(task, len(chunks))
        return dx


class MaxPool2D(_Pool):
    """The maximum of each window: the book's Pooling.

    Training keeps, for each candidate after the first, where it beat every
    one before it. Backward sends each output's gradient to the last such
    winner, which is the first maximum: exactly one input per window gets it,
    even when the window ties (as all-zero windows after a ReLU do).
    """

    name = "max_pool2d"
    onnx_ops = ("MaxPool",)

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

    def to_onnx(self, graph, x):
        """MaxPool over the same windows: no padding, and windows that do not fit dropped (ceil_mode 0)."""
        return graph.op("MaxPool", x, kernel_shape=list(self.pool_size), strides=list(self.stride))


class AvgPool2D(_Pool):
    """The mean of each window."""

    name = "avg_pool2d"
    onnx_ops = ("AveragePool",)

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

    def to_onnx(self, graph, x):
        """AveragePool over the same windows: no padding, and windows that do not fit dropped (ceil_mode 0)."""
        return graph.op("AveragePool", x, kernel_shape=list(self.pool_size), strides=list(self.stride))


@hookimpl
def register_layers(register):
    for cls in (Conv2D, MaxPool2D, AvgPool2D):
        register(cls)
