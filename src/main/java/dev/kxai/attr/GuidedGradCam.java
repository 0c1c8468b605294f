package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.tensor.Shapes;
import dev.kxai.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Captum's {@code GuidedGradCam}: guided backprop times Grad-CAM at a layer (with
 * {@code relu_attributions}, as Captum calls it) upsampled to the input's spatial size by nearest
 * neighbour (PyTorch's {@code interpolate(mode="nearest")}: source index ⌊i · in / out⌋), the
 * same map for every channel.
 */
public final class GuidedGradCam {
    private final Model model;
    private final String layer;

    public GuidedGradCam(Model model, String layer) {
        LayerIntegratedGradients.checkLayer(model, layer, "guided_grad_cam");
        this.model = model;
        this.layer = layer;
    }

    public Attribution attribute(Inputs in, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        Attribution cam = new LayerGradCam(model, layer, true, true).attribute(in, targets);
        Attribution guided = GuidedBackprop.guided(model).attribute(in, targets);
        Tensor c = cam.attributions();
        Map<String, Tensor> by = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : guided.byInput().entrySet()) {
            Tensor g = e.getValue();
            if (g.rank() != c.rank()) {
                throw new InvalidInputException("guided_grad_cam: input '" + e.getKey() + "' " + Shapes.str(g.shape())
                        + " and layer '" + layer + "' " + Shapes.str(c.shape()) + " need the same number of spatial axes");
            }
            by.put(e.getKey(), times(g, upsampled(c, g.shape())));
        }
        return new Attribution(by.values().iterator().next(), null, guided.device(), guided.fallbackReason(), by);
    }

    /** A [B, 1, ...] map brought to the spatial size of {@code shape} by nearest neighbour. */
    static Tensor upsampled(Tensor cam, int[] shape) {
        int rank = shape.length;
        int[] out = shape.clone();
        out[1] = 1;
        int[] src = cam.shape();
        int per = 1;
        for (int d = 2; d < rank; d++) {
            per *= out[d];
        }
        float[] d = new float[shape[0] * per];
        int[] idx = new int[rank];
        for (int b = 0; b < shape[0]; b++) {
            for (int i = 0; i < per; i++) {
                int rest = i;
                int flat = 0;
                for (int a = rank - 1; a >= 2; a--) {
                    idx[a] = rest % out[a];
                    rest /= out[a];
                }
                for (int a = 2; a < rank; a++) {
                    int s = (int) Math.floor(idx[a] * ((double) src[a] / out[a]));
                    flat = flat * src[a] + Math.min(s, src[a] - 1);
                }
                d[b * per + i] = cam.data()[b * (cam.size() / src[0]) + flat];
            }
        }
        return new Tensor(out, d);
    }

    private static Tensor times(Tensor g, Tensor map) {
        int batch = g.dim(0);
        int channels = g.dim(1);
        int spatial = g.rowSize() / channels;
        float[] o = new float[g.size()];
        for (int b = 0; b < batch; b++) {
            for (int ch = 0; ch < channels; ch++) {
                for (int i = 0; i < spatial; i++) {
                    int e = (b * channels + ch) * spatial + i;
                    o[e] = g.data()[e] * map.data()[b * spatial + i];
                }
            }
        }
        return new Tensor(g.shape(), o);
    }
}
