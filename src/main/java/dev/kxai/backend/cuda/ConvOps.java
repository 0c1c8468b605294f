package dev.kxai.backend.cuda;

import dev.kxai.exec.ShapeInference;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.graph.Window;

/**
 * 2-D convolution on the device (kernels/conv.cu): the direct forward, the input gradient as
 * col2im(Wᵀ·dY) with one strided-batched GEMM per group, and the forward in double for the
 * first-layer saving. Windows come from {@link ShapeInference#window}, as the plan's shapes do.
 */
final class ConvOps {
    private final Kernels k;
    private final DenseOps dense;

    ConvOps(Kernels k, DenseOps dense) {
        this.k = k;
        this.dense = dense;
    }

    private static Window window(Node n, Op.Conv op, DTensor x, DTensor w) {
        return ShapeInference.window(n, op, x.shape(), w.shape());
    }

    DTensor forward(DeviceScope s, Node n, Op.Conv op, DTensor[] in, int[] outShape) {
        DTensor x = in[0];
        DTensor w = in[1];
        Window win = window(n, op, x, w);
        int m = w.dim(0);
        DTensor y = new DTensor(outShape.clone(), s.floats((long) x.dim(0) * m * win.outH() * win.outW()));
        k.conv2dForward(y.buf(), x.buf(), w.buf(), in.length > 2 ? in[2].buf() : null, x.dim(0), x.dim(1), x.dim(2),
                x.dim(3), m, op.group(), Kernels.geometry(win));
        return y;
    }

    /** The layer's output at x in double (unrounded), of the planned output shape. */
    DTensor forwardF64(DeviceScope s, Node n, Op.Conv op, DTensor x, DTensor w, DTensor bias, int[] outShape) {
        Window win = window(n, op, x, w);
        int m = w.dim(0);
        DTensor y = new DTensor(outShape.clone(), s.doubles(dev.kxai.tensor.Shapes.size(outShape)));
        k.conv2dForwardF64(y.buf(), x.buf(), w.buf(), bias != null ? bias.buf() : null, x.dim(0), x.dim(1), x.dim(2),
                x.dim(3), m, op.group(), Kernels.geometry(win));
        return y;
    }

    /** dX = col2im(Wᵀ·dY): one strided-batched GEMM per group over the images, then a gather. */
    DTensor inputGrad(DeviceScope s, Node n, Op.Conv op, DTensor x, DTensor w, DTensor gy) {
        Window win = window(n, op, x, w);
        int imgs = x.dim(0);
        int c = x.dim(1);
        int m = w.dim(0);
        int groups = op.group();
        int cg = c / groups;
        int mg = m / groups;
        int kk = cg * win.kh() * win.kw();
        int hw = win.outH() * win.outW();
        long colsPerImage = (long) c * win.kh() * win.kw() * hw;
        DeviceBuffer dcols = s.floats(imgs * colsPerImage);
        for (int g = 0; g < groups; g++) {
            dense.gemmBatched(true, false, kk, hw, mg, 1f, w.buf().viewFloats((long) g * mg * kk, (long) mg * kk), kk, 0,
                    gy.buf().viewFloats((long) g * mg * hw, gy.size() - (long) g * mg * hw), hw, (long) m * hw, 0f,
                    dcols.viewFloats((long) g * kk * hw, imgs * colsPerImage - (long) g * kk * hw), hw, colsPerImage, imgs);
        }
        DTensor dx = new DTensor(x.shape(), s.floats(x.size()));
        k.im2colInputGrad(dx.buf(), dcols, imgs, c, x.dim(2), x.dim(3), Kernels.geometry(win));
        return dx;
    }
}
