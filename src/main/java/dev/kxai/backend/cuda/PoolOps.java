package dev.kxai.backend.cuda;

import dev.kxai.KxaiException;
import dev.kxai.graph.Node;
import dev.kxai.graph.Op;
import dev.kxai.graph.Window;

/** Max, average and global average pooling on the device (kernels/conv.cu, kernels/head.cu), NCHW. */
final class PoolOps {
    private final Kernels k;

    PoolOps(Kernels k) {
        this.k = k;
    }

    /** A max pool's output and the argmax its backward scatters through. */
    record Max(DTensor out, DeviceBuffer argmax) {
    }

    private static Window window(Node n, Op.MaxPool mp, int[] x) {
        return Window.of(n.name(), mp.kernel(), mp.strides(), mp.pads(), mp.dilations(), mp.autoPad(), mp.ceilMode(),
                x[2], x[3]);
    }

    private static Window window(Node n, Op.AveragePool ap, int[] x) {
        return Window.of(n.name(), ap.kernel(), ap.strides(), ap.pads(), null, ap.autoPad(), ap.ceilMode(), x[2], x[3]);
    }

    /** The kernels' geometry of a max pool over an input of shape x (NCHW). */
    static int[] maxGeometry(Node n, Op.MaxPool mp, int[] x) {
        return Kernels.geometry(window(n, mp, x));
    }

    Max maxForward(DeviceScope s, Node n, Op.MaxPool mp, DTensor in, int[] outShape) {
        int[] x = in.shape();
        Window w = window(n, mp, x);
        if ((long) x[0] * x[1] * x[2] * x[3] >= Integer.MAX_VALUE) {
            throw new KxaiException("node '" + n.name() + "' (" + n.opType()
                    + "): an input of 2^31 elements or more is not supported on cuda");
        }
        long planes = (long) x[0] * x[1];
        DTensor y = new DTensor(outShape.clone(), s.floats(planes * w.outH() * w.outW()));
        DeviceBuffer arg = s.ints(planes * w.outH() * w.outW());
        k.maxpoolForward(y.buf(), arg, in.buf(), planes, x[2], x[3], Kernels.geometry(w));
        return new Max(y, arg);
    }

    DTensor maxBackward(DeviceScope s, int[] inShape, DeviceBuffer argmax, DTensor gy) {
        DTensor gx = new DTensor(inShape, s.floats(dev.kxai.tensor.Shapes.size(inShape)));
        gx.buf().zero();
        k.maxpoolBackward(gx.buf(), gy.buf(), argmax, gy.size());
        return gx;
    }

    DTensor averageForward(DeviceScope s, Node n, Op.AveragePool ap, DTensor in, int[] outShape) {
        int[] x = in.shape();
        Window w = window(n, ap, x);
        long planes = (long) x[0] * x[1];
        DTensor y = new DTensor(outShape.clone(), s.floats(planes * w.outH() * w.outW()));
        k.avgpoolForward(y.buf(), in.buf(), planes, x[2], x[3], Kernels.geometry(w), ap.countIncludePad());
        return y;
    }

    DTensor averageBackward(DeviceScope s, Node n, Op.AveragePool ap, int[] x, DTensor gy) {
        Window w = window(n, ap, x);
        DTensor gx = new DTensor(x, s.floats(dev.kxai.tensor.Shapes.size(x)));
        gx.buf().zero();
        k.avgpoolBackward(gx.buf(), gy.buf(), (long) x[0] * x[1], x[2], x[3], Kernels.geometry(w), ap.countIncludePad());
        return gx;
    }

    DTensor globalAverageForward(DeviceScope s, DTensor in, int[] outShape) {
        int[] x = in.shape();
        long planes = (long) x[0] * x[1];
        DTensor y = new DTensor(outShape.clone(), s.floats(planes));
        k.globalAvgpoolForward(y.buf(), in.buf(), planes, in.size() / planes);
        return y;
    }

    DTensor globalAverageBackward(DeviceScope s, int[] x, DTensor gy) {
        long planes = (long) x[0] * x[1];
        long size = dev.kxai.tensor.Shapes.size(x);
        DTensor gx = new DTensor(x, s.floats(size));
        k.globalAvgpoolBackward(gx.buf(), gy.buf(), planes, size / planes);
        return gx;
    }
}
