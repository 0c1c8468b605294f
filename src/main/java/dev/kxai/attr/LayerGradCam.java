package dev.kxai.attr;

import dev.kxai.Inputs;
import dev.kxai.InvalidInputException;
import dev.kxai.Model;
import dev.kxai.backend.DevicePolicy;
import dev.kxai.tensor.Tensor;
import java.util.Map;
import java.util.Set;

/**
 * Captum's {@code LayerGradCam} (Selvaraju et al. 2017) at a named value: the layer's gradient
 * averaged over its spatial axes (axes 2.. of a [B, C, ...] value) weights its channels, summed
 * over channels ({@code attr_dim_summation}) → [B, 1, ...spatial]; {@code relu_attributions}
 * (default false) keeps the positive part. For a [B, C] value the gradient itself weights it.
 */
public final class LayerGradCam {
    private final Model model;
    private final String layer;
    private final boolean reluAttributions;
    private final boolean attrDimSummation;

    public LayerGradCam(Model model, String layer, boolean reluAttributions, boolean attrDimSummation) {
        this.model = model;
        this.layer = layer;
        this.reluAttributions = reluAttributions;
        this.attrDimSummation = attrDimSummation;
        LayerIntegratedGradients.checkLayer(model, layer, "layer_grad_cam");
    }

    public Attribution attribute(Tensor x, int... targets) {
        dev.kxai.Args.notNull(x, "x");
        dev.kxai.Args.notNull(targets, "targets");
        return attribute(model.inputs(x), targets);
    }

    public Attribution attribute(Inputs in, int... targets) {
        dev.kxai.Args.notNull(in, "in");
        dev.kxai.Args.notNull(targets, "targets");
        model.check(in);
        int[] t = model.targets(targets, in.batch());
        DevicePolicy.Ran<Attribution> ran = model.run("layer grad-cam", r -> {
            Tensor act = r.evaluate(in.values(), Set.of(layer)).get(layer);
            Tensor grad = r.gradients(in.values(), t, Set.of(layer)).get(layer);
            return Attribution.of(Map.of(layer, camOf(act, grad)), null, r.device(), null);
        });
        return ran.value().ranOn(ran.device(), ran.fallbackReason());
    }

    private Tensor camOf(Tensor act, Tensor grad) {
        int[] s = act.shape();
        if (s.length < 2) {
            throw new InvalidInputException("layer_grad_cam: '" + layer + "' has shape " + java.util.Arrays.toString(s)
                    + "; it needs [batch, channels, ...]");
        }
        int batch = s[0];
        int channels = s[1];
        int spatial = act.rowSize() / channels;
        float[] a = act.data();
        float[] g = grad.data();
        int outPer = attrDimSummation ? spatial : channels * spatial;
        float[] out = new float[batch * outPer];
        for (int b = 0; b < batch; b++) {
            for (int c = 0; c < channels; c++) {
                int off = (b * channels + c) * spatial;
                double w = 0;
                for (int i = 0; i < spatial; i++) {
                    w += g[off + i];
                }
                float mean = (float) (w / spatial); // Captum's torch.mean over the spatial axes (the value itself for [B, C])
                for (int i = 0; i < spatial; i++) {
                    float v = mean * a[off + i];
                    if (attrDimSummation) {
                        out[b * outPer + i] += v;
                    } else {
                        out[b * outPer + c * spatial + i] = v;
                    }
                }
            }
        }
        if (reluAttributions) {
            for (int i = 0; i < out.length; i++) {
                out[i] = Math.max(0f, out[i]);
            }
        }
        int[] shape = s.clone();
        if (attrDimSummation) {
            shape[1] = 1;
        }
        return new Tensor(shape, out);
    }
}
